import json

import pytest

from edgekit.artifact import (
    MANIFEST_NAME,
    Manifest,
    TensorSpec,
    load_manifest,
    read_manifest,
)
from edgekit.errors import ArtifactError
from edgekit.outputs import atomic_directory, seal


def _manifest() -> Manifest:
    spec = TensorSpec("input_ids", "int64", ["batch", "sequence"])
    return Manifest(
        task="text-classification",
        labels=["a", "b"],
        engine="onnxruntime",
        precision="fp32",
        model_file="model.onnx",
        inputs=[spec],
        outputs=[TensorSpec("logits", "float32", ["batch", 2])],
        tokenizer={"file": "tokenizer.json", "max_length": 8, "pad_id": 0, "pad_token": "[PAD]"},
        source={"kind": "test"},
        recipe_hash="0" * 64,
        edgekit_version="test",
    )


def _make(directory, payload=b"weights"):
    with atomic_directory(directory) as staging:
        (staging / "model.onnx").write_bytes(payload)
        (staging / "tokenizer.json").write_text("{}")
        seal(staging, _manifest())


def test_round_trip_and_hashes(tmp_path):
    _make(tmp_path / "art")
    manifest = load_manifest(tmp_path / "art")
    assert set(manifest.files) == {"model.onnx", "tokenizer.json"}
    assert manifest.inputs[0].shape == ["batch", "sequence"]
    assert manifest.labels == ["a", "b"]
    assert (tmp_path / "art").stat().st_mode & 0o755 == 0o755, "readable like a normal folder"


def test_tampered_file_is_refused(tmp_path):
    _make(tmp_path / "art")
    (tmp_path / "art" / "model.onnx").write_bytes(b"swapped")
    with pytest.raises(ArtifactError, match="model.onnx does not match its sha256"):
        load_manifest(tmp_path / "art")
    (tmp_path / "art" / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="tokenizer.json is missing"):
        load_manifest(tmp_path / "art")


def test_failure_inside_atomic_directory_keeps_the_previous_artifact(tmp_path):
    _make(tmp_path / "art", b"version 1")
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "art") as staging:
        (staging / "model.onnx").write_bytes(b"half written")
        raise RuntimeError("export crashed")
    assert (tmp_path / "art" / "model.onnx").read_bytes() == b"version 1"
    load_manifest(tmp_path / "art")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"], "no temp folders left behind"


def test_success_replaces_the_previous_artifact(tmp_path):
    _make(tmp_path / "art", b"version 1")
    _make(tmp_path / "art", b"version 2")
    assert (tmp_path / "art" / "model.onnx").read_bytes() == b"version 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_not_an_artifact_and_wrong_version(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        read_manifest(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="not an edgekit artifact"):
        read_manifest(tmp_path / "empty")
    _make(tmp_path / "art")
    path = tmp_path / "art" / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="format version 99"):
        read_manifest(tmp_path / "art")
    path.write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_manifest(tmp_path / "art")
