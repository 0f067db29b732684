"""Hostile inputs to the runtime: one clear InputError / ArtifactError each, never a traceback or a confident label."""

import json
import shutil

import pytest

from edgekit.artifact import hash_directory
from edgekit.errors import ArtifactError, InputError
from edgekit.runtime import EdgeModel


@pytest.fixture(scope="module")
def model(tiny_artifact):
    return EdgeModel.load(tiny_artifact, threads=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.predict("ok \ud800 then"), r"Input 0 has an unpaired surrogate \(U\+D800\) at character 3"),
        (lambda m: m.predict_batch(["fine", "bad \udfff"]), r"Input 1 has an unpaired surrogate"),
        (lambda m: m.predict("\u200b\u200b"), "Input 0 has nothing the model can read"),
        (lambda m: m.predict_batch(["good film", "\x00\x01\x02"]), "Input 1 has nothing the model can read"),
        (lambda m: m.logits(["\u200b"]), "nothing the model can read"),
        (lambda m: m.predict_batch({"a": 1}), "got a dict"),
        (lambda m: m.predict_batch({"good", "bad"}), "got a set"),
        (lambda m: m.predict_batch(b"good film"), "list of texts"),
        (lambda m: m.predict_batch(x for x in [1, 2]), "Input 0 is a int"),
        (lambda m: m.predict_batch(42), "not a int"),
        (lambda m: m.predict(b"good film"), "bytes, not a str; pass text; decode it first"),
    ],
)
def test_hostile_inputs_get_one_clear_error(model, call, message):
    with pytest.raises(InputError, match=message):
        call(model)


def test_a_generator_of_texts_is_fine(model):
    assert len(model.predict_batch(t for t in ["good film", "bad film"])) == 2


def test_a_text_with_some_readable_characters_among_control_ones_is_classified(model):
    assert model.predict("\u200bgood\x00").label in model.labels


def _relabelled(tiny_artifact, folder, labels, outputs_shape=None):
    copy = shutil.copytree(tiny_artifact, folder)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["labels"] = labels
    if outputs_shape is not None:
        manifest["outputs"][0]["shape"] = outputs_shape
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize("labels", [["a", "b", "c", "d"], ["a", "b"]])
def test_a_label_count_other_than_the_models_outputs_is_refused_at_load(tiny_artifact, tmp_path, labels):
    # A symbolic output width in the manifest: only the engine's own output shape can tell.
    copy = _relabelled(tiny_artifact, tmp_path / "relabelled", labels, outputs_shape=["batch", "labels"])
    with pytest.raises(ArtifactError, match=f"lists {len(labels)} labels but the model outputs 3 scores"):
        EdgeModel.load(copy)


def test_a_recorded_batch_invariant_must_be_a_bool(tiny_artifact, tmp_path):
    copy = shutil.copytree(tiny_artifact, tmp_path / "flag")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["batch_invariant"] = "false"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="batch_invariant must be true, false or absent"):
        EdgeModel.load(copy)


@pytest.mark.parametrize(
    ("recorded", "engine", "precision", "expected"),
    [(None, "onnxruntime", "int8", False), (None, "onnxruntime", "fp32", True), (None, "openvino", "int8", True),
     (True, "onnxruntime", "int8", True), (False, "onnxruntime", "fp32", False)],
)  # fmt: skip
def test_batch_invariance_defaults(tiny_artifact, recorded, engine, precision, expected):
    import dataclasses

    from edgekit.artifact import read_manifest
    from edgekit.runtime.settings import default_batch_invariant

    manifest = dataclasses.replace(read_manifest(tiny_artifact), engine=engine, precision=precision,
                                   batch_invariant=recorded)  # fmt: skip
    assert default_batch_invariant(manifest)[0] is expected


def test_an_unknown_task_is_refused_clearly(tiny_artifact, tmp_path):
    copy = shutil.copytree(tiny_artifact, tmp_path / "task")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["task"] = "image-segmentation"
    manifest["files"] = hash_directory(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="task 'image-segmentation' is not one this edgekit runtime can run"):
        EdgeModel.load(copy)
