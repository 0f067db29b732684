"""The engine registry: built-ins declared in one place, a third-party engine loaded end to end."""

import importlib.metadata
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgekit.artifact import hash_directory, read_manifest
from edgekit.errors import ArtifactError
from edgekit.runtime import EdgeModel
from edgekit.runtime.engines import ENGINES, EngineSpec, get_engine, register_engine, registry, unregister_engine


class NumpyBagOfWords:
    """A toy engine from outside edgekit: mean of per-token logit rows stored in ``model.npz``."""

    def __init__(self, model_path: Path, threads: int | None, devices: list[str]):
        self._table = np.load(model_path)["table"]
        self.providers = [f"numpy:{d}" for d in devices]
        self.output_width = None  # makes EdgeModel probe the width at load

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        mask = feed["attention_mask"][..., None].astype(np.float32)
        return (self._table[feed["input_ids"]] * mask).sum(axis=1) / mask.sum(axis=1)


TOY = EngineSpec(
    name="numpy-toy", title="NumPy toy", suffixes=(".npz",), module="numpy", extra=None,
    option="cores", default_option=("any",), factory=NumpyBagOfWords,
)  # fmt: skip


@pytest.fixture
def toy_engine():
    register_engine(TOY)
    yield TOY
    unregister_engine(TOY.name)


def _toy_artifact(tiny_artifact: Path, folder: Path, labels: int = 3) -> Path:
    copy = shutil.copytree(tiny_artifact, folder)
    (copy / "model.onnx").unlink()
    table = np.random.default_rng(0).normal(size=(200, labels)).astype(np.float32)
    np.savez(copy / "model.npz", table=table)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(engine="numpy-toy", precision="fp32", model_file="model.npz", batch_invariant=True)
    manifest["runtime"] = {"threads": None, "engines": {"numpy-toy": {"cores": ["big", "little"]}}}
    manifest["files"] = hash_directory(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_built_in_engines_declare_suffixes_modules_extras_and_options():
    onnx, openvino = get_engine("onnxruntime"), get_engine("openvino")
    assert (onnx.suffixes, onnx.module, onnx.extra) == ((".onnx", ".ort"), "onnxruntime", None)
    assert onnx.option == "providers"
    assert onnx.default_option == ("CPUExecutionProvider",)
    assert (openvino.suffixes, openvino.module, openvino.extra) == ((".xml", ".onnx"), "openvino", "openvino")
    assert (openvino.option, openvino.default_option) == ("devices", ("CPU",))


def test_a_third_party_engine_loads_an_artifact_end_to_end(toy_engine, tiny_artifact, tmp_path):
    folder = _toy_artifact(tiny_artifact, tmp_path / "toy")
    model = EdgeModel.load(folder)
    assert model.settings.engine == "numpy-toy"
    assert model.settings.engine_option == ["big", "little"], "its own option, read from the manifest's runtime"
    assert model.providers == ["numpy:big", "numpy:little"]
    assert model.settings.providers == ["CPUExecutionProvider"], "built-in options keep their defaults"
    texts = ["the film was good", "awful weather today", "turn off the lights please"]
    batch = model.predict_batch(texts)
    assert [p.label_id for p in batch] == [model.predict(t).label_id for t in texts]
    with pytest.raises(ArtifactError, match=r"loads only \.onnx, \.ort files.*engine='numpy-toy'"):
        EdgeModel.load(folder, engine="onnxruntime")


def test_a_third_party_engines_label_count_is_checked_by_probing(toy_engine, tiny_artifact, tmp_path):
    folder = _toy_artifact(tiny_artifact, tmp_path / "toy-wide", labels=5)
    with pytest.raises(ArtifactError, match="lists 3 labels but the model outputs 5 scores"):
        EdgeModel.load(folder)


def test_engines_come_from_the_entry_point_group(monkeypatch):
    class Point:
        name, value = "numpy-toy", "toy_package:SPEC"

        def load(self):
            return lambda: TOY  # a function returning the spec works as well as the spec itself

    def entry_points(group):
        return [Point()] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    try:
        assert get_engine("numpy-toy") is TOY
    finally:
        unregister_engine("numpy-toy")
        registry._entry_points_loaded = False


def test_an_unknown_engine_names_the_installed_ones():
    with pytest.raises(ArtifactError, match=r"Unknown engine 'tflite'.*Supported: onnxruntime \(installed\)"):
        get_engine("tflite")


def test_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_engine(EngineSpec(**{**ENGINES["onnxruntime"].__dict__, "title": "impostor"}))


def test_the_manifest_still_reads(tiny_artifact):
    assert read_manifest(tiny_artifact).engine in ENGINES
