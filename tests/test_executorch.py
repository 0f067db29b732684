"""ExecuTorch .pte variants (XNNPACK, FP32 and INT8) on a tiny BERT: build, load, predict, refuse tampering."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("executorch", reason="the executorch extra is not installed (pip install 'edgekit[executorch]')")

from edgekit.artifact import load_manifest  # noqa: E402
from edgekit.convert.pipeline import convert  # noqa: E402
from edgekit.convert.recipe import build_recipe  # noqa: E402
from edgekit.data import read_text_dataset  # noqa: E402
from edgekit.errors import ArtifactError  # noqa: E402
from edgekit.runtime import EdgeModel  # noqa: E402
from edgekit.runtime.invariance import batch_consistency  # noqa: E402

KINDS = ["executorch-fp32", "executorch-int8"]
LONG = " ".join(["i really love this movie, very good fun"] * 40)  # far beyond the 64 tokens exported


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, trained_tiny_dir, sentiment_eval):
    out = tmp_path_factory.mktemp("et") / "bundle"
    variants = ["onnx-fp32", {"name": "executorch-fp32", "max_batch": 4}, "executorch-int8"]
    recipe = build_recipe({"model": str(trained_tiny_dir), "out": str(out), "data": {"path": str(sentiment_eval)},
                           "bench": {"enabled": False}, "variants": variants,
                           "quantization": {"calibration": {"samples": 40}}})  # fmt: skip
    return convert(recipe)


def _folder(bundle, name):
    return bundle.out / bundle.summary.locations[name]


def test_both_kinds_are_built_listed_and_pass_the_gate(bundle):
    for name in KINDS:
        row = next(v for v in bundle.summary.variants if v["name"] == name)
        assert row["passed"], (name, row)
        manifest = load_manifest(_folder(bundle, name))
        assert (manifest.engine, manifest.model_file) == ("executorch", "model.pte")
        assert "model.pte" in manifest.files and len(manifest.files["model.pte"]) == 64  # hashed
        assert manifest.metrics["build"]["delegate"] == "XnnpackBackend"
        assert manifest.metrics["build"]["xnnpack_partitions"] >= 1
    assert load_manifest(_folder(bundle, "executorch-fp32")).metrics["build"]["max_batch"] == 4
    assert load_manifest(_folder(bundle, "executorch-int8")).metrics["build"]["mode"] == "dynamic"


def test_fp32_matches_pytorch_strictly(bundle, trained_tiny_dir):
    import torch
    import transformers

    manifest = load_manifest(_folder(bundle, "executorch-fp32"))
    assert manifest.parity["passed"] and manifest.parity["max_abs_diff"] <= 1e-4
    model = EdgeModel.load(_folder(bundle, "executorch-fp32"))
    torch_model = transformers.AutoModelForSequenceClassification.from_pretrained(trained_tiny_dir).eval()
    texts = ["good fun", "the weather today was bad", "i hate it"]
    feed = model.tokenize(texts)
    with torch.no_grad():
        expected = torch_model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
    np.testing.assert_allclose(model.logits(texts), expected, atol=1e-4)


def test_predict_and_predict_batch_agree_with_the_onnx_reference(bundle, sentiment_eval):
    texts = read_text_dataset(sentiment_eval).texts[:40]
    reference = [p.label_id for p in EdgeModel.load(bundle.out / "onnx-fp32").predict_batch(texts)]
    for name, wanted in (("executorch-fp32", 1.0), ("executorch-int8", 0.9)):
        model = EdgeModel.load(_folder(bundle, name))
        assert model.providers == ["ExecuTorch:XnnpackBackend"]
        single = [model.predict(text).label_id for text in texts]
        batched = [p.label_id for p in model.predict_batch(texts)]
        assert single == batched, name
        assert np.mean(np.array(single) == reference) >= wanted, name


def test_feeds_beyond_the_programs_batch_are_split(bundle):
    # The fp32 program takes at most 4 rows; the runtime asks for 32 per call.
    model = EdgeModel.load(_folder(bundle, "executorch-fp32"), max_batch_rows=32)
    texts = [f"this film was {w}" for w in ("great", "bad", "fun", "boring", "ok", "awful", "good", "very bad", "fun")]
    np.testing.assert_allclose(model.logits(texts), np.concatenate([model.logits([t]) for t in texts]), atol=1e-5)


def test_input_longer_than_the_export_is_truncated_not_refused(bundle):
    reference = EdgeModel.load(bundle.out / "onnx-fp32")
    for name in KINDS:
        model = EdgeModel.load(_folder(bundle, name))
        assert model.tokenize([LONG])["input_ids"].shape[1] == model.manifest.tokenizer["max_length"]
        assert model.predict(LONG).label == reference.predict(LONG).label
    fp32 = EdgeModel.load(_folder(bundle, "executorch-fp32"))
    np.testing.assert_allclose(fp32.logits([LONG, "ok"]), reference.logits([LONG, "ok"]), atol=1e-4)


def test_engine_refuses_a_feed_longer_than_the_program(bundle):
    model = EdgeModel.load(_folder(bundle, "executorch-fp32"))
    too_long = np.ones((1, model.manifest.tokenizer["max_length"] + 1), dtype=np.int64)
    with pytest.raises(ArtifactError, match="longer than"):
        model._engine.run({name: too_long for name in model.tokenize(["ok"])})


def test_batch_consistency_is_what_the_manifest_declares(bundle, sentiment_eval):
    texts = read_text_dataset(sentiment_eval).texts[:24]
    for name in KINDS:
        model = EdgeModel.load(_folder(bundle, name))
        measured = batch_consistency(model, texts, batch_sizes=(8,))
        assert model.manifest.batch_invariant is True and model.settings.batch_invariant
        assert measured["label_flips"] == 0 and measured["max_abs_score_diff"] <= 1e-5, (name, measured)


def test_a_tampered_pte_is_refused(bundle, tmp_path):
    for name in KINDS:
        copy = tmp_path / name
        shutil.copytree(_folder(bundle, name), copy)
        data = bytearray((copy / "model.pte").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (copy / "model.pte").write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match="sha256"):
            EdgeModel.load(copy)


@pytest.mark.parametrize("garbage", [b"", b"not a flatbuffer at all" * 10, b"ET12" + bytes(200)])
def test_a_malformed_pte_is_an_artifact_error(bundle, tmp_path, garbage):
    # verify=False skips the hashes, so the bytes reach the ExecuTorch loader itself.
    copy = tmp_path / "bad"
    shutil.copytree(_folder(bundle, "executorch-fp32"), copy)
    (copy / "model.pte").write_bytes(garbage)
    with pytest.raises(ArtifactError, match="ExecuTorch could not load"):
        EdgeModel.load(copy, verify=False)
