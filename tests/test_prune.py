"""Structured pruning (edgekit/train/prune): importance, shapes, reload, export, bad specs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from conftest import build_tiny_classifier, synthetic_sentiment, write_tsv
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.convert.recipe import PruneSpec, build_recipe
from edgekit.errors import RecipeError
from edgekit.train.prune import keep_count, prune_model
from edgekit.train.prune.importance import measure_importance
from edgekit.train.prune.structure import check_prunable


def _tiny(tmp_path, layers: int = 2, heads: int = 4):
    """A tiny BERT with more heads than the shared fixture (2 is too few to see a ranking)."""
    folder = build_tiny_classifier(tmp_path / "base", layers=layers)
    config = transformers.AutoConfig.from_pretrained(folder)
    config.num_attention_heads, config.intermediate_size = heads, 48
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    return model, transformers.AutoTokenizer.from_pretrained(folder)


def _texts(n: int = 48) -> list[str]:
    return [text for text, _ in synthetic_sentiment(n, seed=3)]


def _batches(tokenizer, texts: list[str], logits: np.ndarray):
    encoded = dict(tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt"))
    return [(encoded, torch.tensor(logits, dtype=torch.float32))]


def test_pruned_shapes_and_reload_from_disk_give_the_same_logits(tmp_path):
    model, tokenizer = _tiny(tmp_path, layers=3, heads=4)
    texts = _texts()
    logits = np.random.default_rng(0).normal(size=(len(texts), 3)).astype(np.float32)
    record = prune_model(model, tokenizer, PruneSpec(heads=0.5, ffn=0.25, samples=32), texts, logits, 32)
    for layer in model.bert.encoder.layer:
        assert layer.attention.self.num_attention_heads == 2 and layer.attention.self.query.out_features == 16
        assert layer.attention.output.dense.in_features == 16
        assert layer.intermediate.dense.out_features == 12 and layer.output.dense.in_features == 12
    assert record["heads_per_layer"] == "2 of 4" and record["ffn_width"] == "12 of 48" and record["samples"] == 32
    assert len(record["head_importance"]) == 3 and all(len(kept) == 2 for kept in record["kept_heads"].values())
    model.save_pretrained(tmp_path / "pruned")
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "pruned").eval()
    assert reloaded.config.intermediate_size == 12 and len(reloaded.config.pruned_heads[0]) == 2
    encoded = tokenizer(texts[:5], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**encoded).logits, model(**encoded).logits)


def test_importance_finds_a_dead_head_and_a_dead_neuron(tmp_path):
    model, tokenizer = _tiny(tmp_path, layers=2, heads=4)
    size = model.config.hidden_size // 4
    with torch.no_grad():
        own = model.bert.encoder.layer[1].attention.self
        own.value.weight[2 * size : 3 * size] = 0  # head 2 of layer 1 adds nothing: its values are zero
        own.value.bias[2 * size : 3 * size] = 0
        ffn = model.bert.encoder.layer[0].intermediate.dense
        ffn.weight[7] = 0  # neuron 7 of layer 0 is GELU(0) = 0 for every token
        ffn.bias[7] = 0
    texts = _texts()
    logits = np.random.default_rng(1).normal(size=(len(texts), 3)).astype(np.float32)
    scores = measure_importance(model, _batches(tokenizer, texts, logits), soft_targets=True)
    assert scores.heads.shape == (2, 4) and scores.ffn.shape == (2, 48) and scores.samples == len(texts)
    assert int(np.argmin(scores.heads[1])) == 2 and scores.heads[1, 2] < 1e-9 < scores.heads[1].max()
    assert int(np.argmin(scores.ffn[0])) == 7 and scores.ffn[0, 7] < 1e-9 < scores.ffn[0].max()
    assert all(p.requires_grad for p in model.parameters()), "scoring leaves the parameters trainable"
    record = prune_model(model, tokenizer, PruneSpec(heads=0.75, ffn=0.5), texts, logits, 32)
    assert 2 not in record["kept_heads"]["1"], "the dead head is the one removed"


def test_importance_with_labels_instead_of_teacher_logits(tmp_path):
    model, tokenizer = _tiny(tmp_path)
    texts = _texts(20)
    labels = [i % 3 for i in range(len(texts))]
    record = prune_model(model, tokenizer, PruneSpec(heads=0.5, ffn=0.5, samples=8), texts, labels, 32)
    assert record["scored_against"] == "labels (cross-entropy)" and record["samples"] == 8


@settings(max_examples=60, deadline=None)
@given(fraction=st.floats(min_value=1e-6, max_value=1.0), total=st.integers(min_value=1, max_value=4096))
def test_keep_count_is_at_least_one_and_at_most_all(fraction, total):
    kept = keep_count(fraction, total)
    assert 1 <= kept <= total
    assert abs(kept - fraction * total) <= max(0.5, 1 - fraction * total) + 1e-9


@settings(max_examples=5, deadline=None)
@given(heads=st.sampled_from([0.01, 0.3, 0.5, 0.76, 1.0]), ffn=st.floats(min_value=0.001, max_value=1.0))
def test_every_layer_keeps_the_same_counts(tmp_path_factory, heads, ffn):
    model, tokenizer = _tiny(tmp_path_factory.mktemp("p"), layers=3, heads=4)
    texts = _texts(8)
    logits = np.zeros((len(texts), 3), dtype=np.float32)
    prune_model(model, tokenizer, PruneSpec(heads=heads, ffn=ffn, samples=8), texts, logits, 16)
    layers = model.bert.encoder.layer
    assert {layer.attention.self.num_attention_heads for layer in layers} == {keep_count(heads, 4)}
    assert {layer.intermediate.dense.out_features for layer in layers} == {keep_count(ffn, 48)}
    assert model.config.intermediate_size == keep_count(ffn, 48)


def test_bad_prune_specs_are_clear_recipe_errors():
    for bad in ({"heads": 0}, {"ffn": 0}, {"heads": 1.5}, {"ffn": -0.5}, {"samples": 0}, {"head": 0.5}):
        with pytest.raises(RecipeError, match="prune"):
            build_recipe({"model": "m", "distill": {"data": {"path": "t.tsv"}, "prune": bad}})
    with pytest.raises(RecipeError, match="in \\(0, 1\\]"):
        keep_count(0.0, 12)


def test_unsupported_family_and_pruned_twice_are_refused():
    config = transformers.DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    with pytest.raises(RecipeError, match="does not support a DistilBertForSequenceClassification.*distill.student"):
        check_prunable(transformers.DistilBertForSequenceClassification(config))
    bert = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=16, pruned_heads={0: [1]})  # fmt: skip
    with pytest.raises(RecipeError, match="already has pruned heads"):
        check_prunable(transformers.BertForSequenceClassification(bert))


@pytest.mark.filterwarnings("ignore")
def test_convert_with_pruning_exports_passes_parity_and_quantizes(tmp_path, trained_tiny_dir, sentiment_eval):
    from edgekit.artifact import load_manifest, read_summary
    from edgekit.convert.pipeline import convert

    train = write_tsv(tmp_path / "train.tsv", synthetic_sentiment(200, seed=5))
    recipe = build_recipe({
        "model": str(trained_tiny_dir), "out": str(tmp_path / "out"), "data": {"path": str(sentiment_eval)},
        "variants": ["onnx-fp32", "ort-int8-dynamic"], "bench": {"enabled": False},
        "distill": {"student_layers": 2, "data": {"path": str(train)}, "max_steps": 10, "batch_size": 16,
                    "max_length": 32, "prune": {"heads": 0.5, "ffn": 0.5, "samples": 64}},
    })  # fmt: skip
    result = convert(recipe)
    student = tmp_path / ".edgekit-work" / "out" / "distill" / "student"
    config = json.loads((student / "config.json").read_text())
    assert config["intermediate_size"] == 32 and all(len(h) == 1 for h in config["pruned_heads"].values())
    record = json.loads((student / "distillation.json").read_text())
    assert record["pruning"]["heads_per_layer"] == "1 of 2" and record["pruning"]["samples"] == 64
    summary = read_summary(result.out)
    for kind in ("onnx-fp32", "ort-int8-dynamic"):
        manifest = load_manifest(result.out / summary["locations"][kind])
        assert manifest.metrics["distillation"]["pruning"]["ffn_width"] == "32 of 64"
        assert "gate" in manifest.metrics or kind == "onnx-fp32"
    reference = load_manifest(result.out / summary["locations"]["onnx-fp32"])
    assert reference.parity is not None and reference.parity["max_abs_diff"] < 1e-4


def test_cli_distill_prune_flags(tmp_path, trained_tiny_dir, sentiment_eval):
    from typer.testing import CliRunner

    from edgekit.cli import app

    train = write_tsv(tmp_path / "train.tsv", synthetic_sentiment(64, seed=8))
    recipe = tmp_path / "recipe.yaml"
    distill = {"student_layers": 2, "data": {"path": str(train)}, "max_steps": 4, "batch_size": 16,
               "max_length": 32, "prune": {"samples": 16}}  # fmt: skip
    recipe.write_text(json.dumps({"model": str(trained_tiny_dir), "out": str(tmp_path / "out"),
                                  "data": {"path": str(sentiment_eval)}, "distill": distill}))  # fmt: skip
    runner = CliRunner()
    bad = runner.invoke(app, ["distill", str(recipe), "--prune-heads", "0"])
    assert bad.exit_code == 2 and "--prune-heads/--prune-ffn is invalid" in bad.output and "heads" in bad.output
    good = runner.invoke(app, ["distill", str(recipe), "--prune-ffn", "0.25"])
    assert good.exit_code == 0, good.output
    record = json.loads((tmp_path / ".edgekit-work" / "out" / "distill" / "student" / "distillation.json").read_text())
    assert record["pruning"]["ffn_width"] == "16 of 64" and record["pruning"]["heads_per_layer"] == "2 of 2"
    assert record["pruning"]["samples"] == 16, "the recipe's other prune fields are kept"
