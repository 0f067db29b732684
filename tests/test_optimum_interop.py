"""Other tools open an edgekit text artifact as it is: Optimum's ORTModel and transformers' AutoTokenizer.

The HF files (config.json, tokenizer side files) are listed and hashed in the manifest like the
model, so the runtime's integrity check covers them and a changed one is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_LABELS, TINY_TEXTS

from edgekit.artifact import load_manifest
from edgekit.convert.hf_files import HF_FILES
from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.errors import ArtifactError
from edgekit.runtime import EdgeModel

optimum_ort = pytest.importorskip("optimum.onnxruntime")
TEXTS = [text for text, _ in TINY_TEXTS]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, tiny_model_dir, tiny_data) -> Path:
    out = tmp_path_factory.mktemp("interop") / "b"
    recipe = build_recipe({"model": str(tiny_model_dir), "out": str(out), "data": {"path": str(tiny_data)},
                           "bench": {"enabled": False}, "variants": ["onnx-fp32", "ort-int8-dynamic"]})  # fmt: skip
    return convert(recipe).out


def _variant(bundle: Path, name: str) -> Path:
    summary = json.loads((bundle / "summary.json").read_text())
    return bundle / summary["locations"][name]


def _optimum_logits(folder: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = optimum_ort.ORTModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        encoded = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        return model(**encoded).logits.numpy()


@pytest.mark.parametrize("variant", ["onnx-fp32", "ort-int8-dynamic"])
def test_optimum_loads_the_artifact_and_agrees_with_edgekit(bundle, variant):
    folder = _variant(bundle, variant)
    manifest = load_manifest(folder)  # verifies every hash, the HF files included
    for name in (*HF_FILES, "tokenizer.json", "model.onnx"):
        assert name in manifest.files, f"{name} must be listed and hashed"
    ours = np.array([p.scores for p in EdgeModel.load(folder).predict_batch(TEXTS)])
    theirs = _optimum_logits(folder, TEXTS)
    probabilities = np.exp(theirs - theirs.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    # Same graph, same session library: the same answer within the fp32 parity tolerance.
    np.testing.assert_allclose(probabilities, ours, atol=1e-4)
    config = json.loads((folder / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(TINY_LABELS))] == TINY_LABELS
    assert config["label2id"] == {name: i for i, name in enumerate(TINY_LABELS)}


def test_hf_files_carry_no_build_machine_path(bundle, tiny_model_dir):
    folder = _variant(bundle, "onnx-fp32")
    for name in HF_FILES:
        text = (folder / name).read_text()
        assert str(tiny_model_dir) not in text and str(tiny_model_dir.parent) not in text, name
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    assert settings["model_max_length"] == load_manifest(folder).tokenizer["max_length"]


def test_a_changed_config_is_refused_by_the_runtime(bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(_variant(bundle, "onnx-fp32"), copy)
    config = json.loads((copy / "config.json").read_text())
    config["id2label"] = {"0": "evil"}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="config.json does not match its sha256"):
        EdgeModel.load(copy)


def test_an_unlisted_extra_file_is_never_opened(bundle, tmp_path):
    """A stray file dropped into the folder is not in `files`: the runtime neither reads nor trusts it."""
    copy = tmp_path / "copy"
    shutil.copytree(_variant(bundle, "onnx-fp32"), copy)
    (copy / "vocab.txt").write_text("[PAD]\n")  # what an HF save would add; not part of the artifact
    model = EdgeModel.load(copy)
    assert model.predict(TEXTS[0]).label in TINY_LABELS
