"""Engine, threads and providers: from the caller, else the defaults recorded in the artifact."""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from edgekit.artifact import read_manifest
from edgekit.errors import ArtifactError, TargetError
from edgekit.outputs import seal
from edgekit.runtime import EdgeModel
from edgekit.runtime.settings import resolve_settings
from edgekit.targets.profiles import load_target, runtime_defaults

CORES = len(os.sched_getaffinity(0))


def _with_runtime(artifact: Path, folder: Path, target: str) -> Path:
    """A copy of ``artifact`` as if it had been converted for ``target`` (resealed)."""
    copy = shutil.copytree(artifact, folder)
    manifest = dataclasses.replace(read_manifest(copy), target=target, runtime=runtime_defaults(load_target(target)))
    seal(copy, manifest)
    return copy


def test_the_manifest_records_the_targets_runtime_defaults(tiny_artifact):
    manifest = read_manifest(tiny_artifact)
    assert manifest.target == "host"
    assert manifest.runtime == runtime_defaults(load_target("host"))
    assert manifest.runtime["threads"] is None, "host: the machine that runs it picks its own core count"
    model = EdgeModel.load(tiny_artifact)
    assert model.settings.threads is None and model.providers == ["CPUExecutionProvider"]


def test_defaults_from_an_artifact_converted_for_a_device(tiny_artifact, tmp_path):
    pi = _with_runtime(tiny_artifact, tmp_path / "pi", "raspberry-pi-5")  # 4 threads on the device
    model = EdgeModel.load(pi)
    assert model.settings.threads == min(4, CORES) and "raspberry-pi-5" in model.settings.source
    if CORES < 4:
        assert any("asks for 4 threads" in note for note in model.settings.notes)
    assert EdgeModel.load(pi, threads=1).settings.threads == 1, "an explicit value wins"


def test_a_named_target_overrides_the_artifacts(tiny_artifact):
    model = EdgeModel.load(tiny_artifact, target="raspberry-pi-5")
    assert model.settings.threads == min(4, CORES) and model.settings.source == "target raspberry-pi-5"
    with pytest.raises(TargetError, match="Unknown target 'no-such-board'"):
        EdgeModel.load(tiny_artifact, target="no-such-board")


def test_an_artifact_without_runtime_defaults_uses_the_engines(tiny_artifact, tmp_path):
    copy = shutil.copytree(tiny_artifact, tmp_path / "old")
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["runtime"]  # written before the field existed
    (copy / "manifest.json").write_text(json.dumps(manifest))
    model = EdgeModel.load(copy)
    assert model.settings.threads is None and "records none" in model.settings.source


def test_openvino_runs_an_onnx_artifact_with_the_same_answers(tiny_artifact):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    texts = ["the movie was good", "bad plot and worse acting, really bad"]
    onnxruntime = EdgeModel.load(tiny_artifact, threads=1)
    openvino = EdgeModel.load(tiny_artifact, threads=1, engine="openvino", target="intel-core-ultra-npu")
    assert openvino.settings.devices == ["NPU", "CPU"], "the profile's devices in order of preference"
    assert openvino.providers == ["OpenVINO:CPU"], "no NPU here: the next one, and it says so"
    assert [p.label for p in openvino.predict_batch(texts)] == [p.label for p in onnxruntime.predict_batch(texts)]


def test_onnxruntime_cannot_be_forced_on_an_openvino_model(tiny_artifact):
    manifest = dataclasses.replace(read_manifest(tiny_artifact), engine="openvino", model_file="model.xml")
    with pytest.raises(ArtifactError, match="engine='openvino'"):
        resolve_settings(manifest, Path("model.xml"), None, None, "onnxruntime")


def test_a_pinned_manifest_refuses_any_other_artifact(tiny_artifact, tmp_path):
    from edgekit.artifact import sha256_file

    pin = sha256_file(tiny_artifact / "manifest.json")
    assert EdgeModel.load(tiny_artifact, manifest_sha256=pin).labels
    copy = shutil.copytree(tiny_artifact, tmp_path / "relabelled")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["labels"] = list(reversed(manifest["labels"]))  # the file hashes still match: only a pin sees it
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert EdgeModel.load(copy).labels == manifest["labels"]
    with pytest.raises(ArtifactError, match="not the pinned"):
        EdgeModel.load(copy, manifest_sha256=pin)


def test_unknown_manifest_fields_are_ignored_for_forward_compatibility(tiny_artifact, tmp_path):
    copy = shutil.copytree(tiny_artifact, tmp_path / "newer")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["added_by_a_later_edgekit"] = {"anything": 1}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert EdgeModel.load(copy).predict("the movie was good").label in manifest["labels"]


def test_a_pin_cannot_be_combined_with_skipping_verification(tiny_artifact):
    from edgekit.artifact import sha256_file

    with pytest.raises(ArtifactError, match="verify=False"):
        EdgeModel.load(tiny_artifact, verify=False, manifest_sha256=sha256_file(tiny_artifact / "manifest.json"))


def test_unknown_tensor_spec_fields_are_ignored_too(tiny_artifact, tmp_path):
    copy = shutil.copytree(tiny_artifact, tmp_path / "newer-inputs")
    manifest = json.loads((copy / "manifest.json").read_text())
    for spec in manifest["inputs"]:
        spec["layout"] = "NC"  # a later edgekit may describe inputs further
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert EdgeModel.load(copy).predict("the movie was good").label in manifest["labels"]


def test_an_unknown_engine_names_the_supported_ones(tiny_artifact):
    with pytest.raises(ArtifactError, match="Unknown engine 'tensorrt'.*Supported"):
        EdgeModel.load(tiny_artifact, engine="tensorrt")
