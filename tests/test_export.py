"""ONNX export on a tiny BERT: dynamic axes, parity on several lengths and batch sizes, the gate."""

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.errors import ParityError, SourceError
from edgekit.runtime import EdgeModel


def test_artifact_contents_and_manifest(tiny_artifact, tiny_model_dir):
    manifest = json.loads((tiny_artifact / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["task"] == "text-classification"
    assert manifest["labels"] == ["negative", "neutral", "positive"]
    assert manifest["engine"] == "onnxruntime" and manifest["precision"] == "fp32"
    assert {i["name"] for i in manifest["inputs"]} == {"input_ids", "attention_mask", "token_type_ids"}
    for spec in manifest["inputs"]:
        assert spec["dtype"] == "int64"
        assert all(isinstance(d, str) for d in spec["shape"]), "batch and sequence axes are dynamic"
    assert manifest["outputs"][0]["dtype"] == "float32"
    # config.json and the tokenizer configs: so Optimum / transformers.js open the folder (docs/artifact-format.md)
    hf_files = {"config.json", "tokenizer_config.json", "special_tokens_map.json"}
    assert set(manifest["files"]) == {"model.onnx", "tokenizer.json"} | hf_files
    assert len(manifest["recipe_hash"]) == 64
    assert manifest["source"]["kind"] == "hf-dir"
    assert manifest["source"]["weights_sha256"]
    assert manifest["tokenizer"]["max_length"] == 64
    parity = manifest["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4
    assert parity["batch_sizes"] == [1, 4] and parity["tokenizer_mismatches"] == 0
    assert parity["token_lengths"][0] < parity["token_lengths"][1]


def test_second_convert_reuses_and_force_rebuilds(tiny_artifact, tiny_model_dir, tiny_data):
    recipe = build_recipe({"model": str(tiny_model_dir), "out": str(tiny_artifact), "data": {"path": str(tiny_data)}})
    assert convert(recipe).reused
    assert not convert(recipe, force=True).reused
    changed = recipe.model_copy(update={"parity": recipe.parity.model_copy(update={"atol": 5e-4})})
    assert not convert(changed).reused, "a different recipe must not reuse the old artifact"


def test_data_edited_in_place_is_not_reused(tmp_path, tiny_model_dir, tiny_data):
    data = tmp_path / "dev.tsv"
    data.write_text(tiny_data.read_text())
    recipe = build_recipe({"model": str(tiny_model_dir), "out": str(tmp_path / "art"), "data": {"path": str(data)}})
    assert not convert(recipe).reused and convert(recipe).reused
    data.write_text(data.read_text() + "a brand new sentence\tneutral\n")
    assert not convert(recipe).reused, "same path, new content: rebuild"


def test_dynamo_exporter_matches_pytorch(tmp_path, tiny_model_dir, tiny_data):
    recipe = build_recipe(
        {"model": str(tiny_model_dir), "out": str(tmp_path / "dyn"), "data": {"path": str(tiny_data)},
         "export": {"exporter": "dynamo"}}
    )  # fmt: skip
    result = convert(recipe)
    assert result.manifest.exporter.startswith("dynamo")
    assert result.manifest.parity["passed"]
    model = EdgeModel.load(result.artifact_dir)
    for batch in (["ok"], ["a short one", "a much longer sentence about the weather today and tomorrow"]):
        assert model.logits(batch).shape == (len(batch), 3)


def test_parity_gate_rejects_a_wrong_graph_and_keeps_the_old_artifact(tmp_path, tiny_model_dir, tiny_data, monkeypatch):
    """Export a *different* model than the one parity compares against: the gate must fail."""
    from conftest import build_tiny_classifier

    import edgekit.convert.packaging as packaging
    import edgekit.export as export_module
    from edgekit.convert.sources import load_text_classifier

    out = tmp_path / "art"
    recipe = build_recipe({"model": str(tiny_model_dir), "out": str(out), "data": {"path": str(tiny_data)}})
    convert(recipe)
    before = (out / "model.onnx").read_bytes()

    impostor = load_text_classifier(str(build_tiny_classifier(tmp_path / "impostor", seed=1)))
    real_export = export_module.export_onnx
    monkeypatch.setattr(packaging, "export_onnx", lambda source, workdir, spec: real_export(impostor, workdir, spec))
    with pytest.raises(ParityError, match="does not match PyTorch"):
        convert(recipe, force=True)
    assert (out / "model.onnx").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "impostor"], "no temp folder left"


def test_tight_tolerance_is_enforced(tmp_path, tiny_model_dir, tiny_data):
    recipe = build_recipe(
        {"model": str(tiny_model_dir), "out": str(tmp_path / "t"), "data": {"path": str(tiny_data)},
         "parity": {"atol": 1e-12}}
    )  # fmt: skip
    with pytest.raises(ParityError):
        convert(recipe)
    assert not (tmp_path / "t").exists()


def test_source_errors(tmp_path, tiny_model_dir):
    from edgekit.convert.sources import load_text_classifier, resolve_reference

    with pytest.raises(SourceError, match="does not exist"):
        resolve_reference(str(tmp_path / "missing"))
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(SourceError, match="no config.json"):
        resolve_reference(str(tmp_path / "not-a-model"))
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(SourceError, match="ONNX file"):
        resolve_reference(str(tmp_path / "m.onnx"))
    with pytest.raises(SourceError, match="hub id"):
        load_text_classifier("some-org/not-downloaded-model")  # HF_HUB_OFFLINE=1 in tests
    assert resolve_reference("org/name")[1] == {"kind": "hub", "id": "org/name"}


def test_base_model_without_head_is_refused(tmp_path):
    import transformers

    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    transformers.BertModel(config).save_pretrained(tmp_path / "base")
    from conftest import _write_vocab

    from edgekit.convert.sources import load_text_classifier

    _write_vocab(tmp_path / "base" / "vocab.txt")  # a complete checkpoint apart from its head

    with pytest.raises(SourceError, match="without a sequence-classification head"):
        load_text_classifier(str(tmp_path / "base"))


def test_hub_id_loads_through_the_hub_cache(tmp_path, tiny_model_dir):
    """The real hub code path, offline: a hub id resolved from a populated HF cache."""
    import os
    import shutil

    cache = Path(os.environ["HF_HOME"]) / "hub"  # conftest points HF_HOME at a private folder
    snapshot = cache / "models--edgekit-test--tiny-bert" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (cache / "models--edgekit-test--tiny-bert" / "refs").mkdir()
    (cache / "models--edgekit-test--tiny-bert" / "refs" / "main").write_text("0" * 40)
    recipe = build_recipe({"model": "edgekit-test/tiny-bert", "out": str(tmp_path / "art")})
    result = convert(recipe)
    assert result.manifest.source["kind"] == "hub"
    assert result.manifest.source["id"] == "edgekit-test/tiny-bert"
    assert np.isfinite(EdgeModel.load(result.artifact_dir).logits(["ok"])).all()
