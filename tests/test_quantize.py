"""Variants on a tiny BERT trained for a few seconds: each quantizer, OpenVINO, the gate, the bundle."""

import numpy as np
import pytest

from edgekit.artifact import expand_bundle, load_manifest
from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.convert.variants import variants
from edgekit.data import read_text_dataset
from edgekit.errors import DataError, RecipeError
from edgekit.runtime import EdgeModel
from edgekit.runtime.engines import ENGINES

# Every built-in variant of the registry this machine can build and run: a new kind is built, gated and loaded
# here without editing this test. Kinds of an extra that is not installed (executorch, coreml) or of an engine
# that cannot run here (Core ML off Apple platforms) have their own tests.
ALL_VARIANTS = [
    name for name, kind in variants().items()
    if kind.__module__.startswith("edgekit.") and kind.installed() and ENGINES[kind.engine].unavailable_reason() is None
]  # fmt: skip


def _recipe(model, out, data, **extra):
    fields = {"model": str(model), "out": str(out), "data": {"path": str(data)}, "bench": {"enabled": False}}
    return build_recipe({**fields, **extra})


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, trained_tiny_dir, sentiment_eval):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    out = tmp_path_factory.mktemp("bundle") / "all"
    recipe = _recipe(trained_tiny_dir, out, sentiment_eval, variants=ALL_VARIANTS,
                     quantization={"calibration": {"samples": 40}})  # fmt: skip
    return convert(recipe)


def test_every_variant_is_built_and_labelled(bundle):
    summary = bundle.summary
    assert summary.built == ALL_VARIANTS
    for name in ALL_VARIANTS:
        folder = bundle.out / summary.locations[name]
        manifest = load_manifest(folder)
        kind = variants()[name]
        assert (manifest.engine, manifest.precision) == (kind.engine, kind.precision)
        assert manifest.batch_invariant is kind.batch_invariant
        if name != "onnx-fp32":
            assert manifest.metrics["gate"]["rows"] == 120
            assert "build" in manifest.metrics
    static = load_manifest(bundle.out / summary.locations["ort-int8-static"]).metrics["build"]
    assert static["format"] == "QDQ" and static["op_types"] == ["MatMul"] and static["calibration_samples"] == 40
    ov_manifest = load_manifest(bundle.out / summary.locations["ov-fp32"])
    assert set(ov_manifest.files) >= {"model.xml", "model.bin", "tokenizer.json"}


def test_variants_agree_with_the_reference_and_run_in_the_runtime(bundle, sentiment_eval):
    data = read_text_dataset(sentiment_eval)
    reference = EdgeModel.load(bundle.out / "onnx-fp32")
    labels = data.label_ids(reference.labels)
    reference_predictions = [p.label_id for p in reference.predict_batch(data.texts)]
    assert np.mean(np.array(reference_predictions) == labels) > 0.9, "the trained tiny model learned the task"
    for variant in bundle.summary.variants:
        model = EdgeModel.load(bundle.out / bundle.summary.locations[variant["name"]])
        predictions = [model.predict(text).label_id for text in data.texts]
        assert np.mean(np.array(predictions) == reference_predictions) > 0.8, variant["name"]
        assert model.logits(["good fun", "the weather today was bad"]).shape == (2, 3)


def test_openvino_fp32_matches_pytorch_strictly(bundle):
    manifest = load_manifest(bundle.out / "ov-fp32")
    assert manifest.parity["passed"] and manifest.parity["max_abs_diff"] <= 1e-4


def test_bundle_loads_its_recommended_variant_and_expands_for_bench(bundle):
    summary = bundle.summary
    assert summary.recommended in summary.built
    assert EdgeModel.load(bundle.out).root == bundle.out / summary.locations[summary.recommended]
    assert len(expand_bundle(bundle.out)) == sum(v["passed"] for v in summary.variants)
    assert (bundle.out / "summary.md").read_text().startswith("# Variants of")
    assert not summary.bench, "bench disabled in this test"
    assert "not benchmarked" in summary.recommended_because


def test_gate_rejects_a_broken_variant_and_fp32_is_still_written(
    tmp_path, trained_tiny_dir, sentiment_eval, monkeypatch
):
    """A 'quantizer' that writes an unrelated model must be rejected, moved aside, never recommended."""
    from conftest import build_tiny_classifier

    import edgekit.convert.variants as variants
    from edgekit.convert.recipe import ExportSpec
    from edgekit.convert.sources import load_text_classifier
    from edgekit.export import export_onnx

    impostor = load_text_classifier(str(build_tiny_classifier(tmp_path / "impostor", seed=7)))

    def broken_quantizer(ctx, folder, options):
        export_onnx(impostor, folder, ExportSpec())
        return variants.BuildOutput("model.onnx", {"broken": True})

    monkeypatch.setattr(variants.get_variant("ort-int8-dynamic"), "build", broken_quantizer)
    out = tmp_path / "out"
    result = convert(_recipe(trained_tiny_dir, out, sentiment_eval, variants=["onnx-fp32", "ort-int8-dynamic"]))
    summary = result.summary
    row = next(v for v in summary.variants if v["name"] == "ort-int8-dynamic")
    assert not row["passed"] and row["gate"]["drop_points"] > 1.0
    assert summary.locations["ort-int8-dynamic"] == "rejected/ort-int8-dynamic"
    assert (out / "rejected" / "ort-int8-dynamic" / "manifest.json").is_file()
    assert not (out / "ort-int8-dynamic").exists()
    assert summary.recommended == "onnx-fp32"
    assert EdgeModel.load(out).manifest.precision == "fp32"
    assert "REJECTED" in (out / "summary.md").read_text()


def test_second_convert_reuses_the_bundle(tmp_path, trained_tiny_dir, sentiment_eval):
    recipe = _recipe(trained_tiny_dir, tmp_path / "b", sentiment_eval, variants=["onnx-fp32", "ort-int8-dynamic"])
    first = convert(recipe)
    again = convert(recipe)
    assert not first.reused and again.reused
    assert again.summary.recommended == first.summary.recommended


def test_gate_on_unlabelled_data_uses_agreement(tmp_path, trained_tiny_dir, sentiment_eval):
    texts = read_text_dataset(sentiment_eval).texts
    unlabelled = tmp_path / "u.tsv"
    unlabelled.write_text("text\n" + "".join(f"{t}\n" for t in texts))
    result = convert(_recipe(trained_tiny_dir, tmp_path / "u", unlabelled, variants=["onnx-fp32", "ort-int8-dynamic"]))
    gate = next(v for v in result.summary.variants if v["name"] == "ort-int8-dynamic")["gate"]
    assert gate["basis"] == "agreement" and gate["accuracy"] is None
    assert gate["drop_points"] == pytest.approx((1 - gate["agreement"]) * 100)
    assert "reference_under_change" not in result.summary.gate  # text has no unnoticed change to measure


def test_bad_quantization_inputs_give_clear_errors(tmp_path, trained_tiny_dir, sentiment_eval, tiny_artifact):
    from edgekit.quantize.calibration import calibration_feeds

    with pytest.raises(DataError, match="calibration set is empty"):
        calibration_feeds(tiny_artifact, [])
    with pytest.raises(RecipeError, match="unknown variant"):
        build_recipe({"model": "m", "variants": ["ov-int4"]})
    with pytest.raises(RecipeError, match="gated against the FP32 reference on real data"):
        convert(build_recipe({"model": str(trained_tiny_dir), "out": str(tmp_path / "x"),
                              "variants": ["onnx-fp32", "ort-int8-dynamic"]}))  # fmt: skip
    wrong_task = tmp_path / "topics.tsv"
    wrong_task.write_text("text\tlabel\nstocks fell\tBusiness\nthe match ended\tSports\n")
    with pytest.raises(DataError, match="'Business'.*not one of the model's labels"):
        convert(_recipe(trained_tiny_dir, tmp_path / "y", wrong_task, variants=["onnx-fp32", "ort-int8-static"]))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_nncf_accuracy_control_path(tmp_path, trained_tiny_dir, sentiment_eval):
    pytest.importorskip("nncf")
    recipe = _recipe(trained_tiny_dir, tmp_path / "ac", sentiment_eval, variants=["onnx-fp32", "ov-int8"],
                     openvino={"accuracy_control": True, "max_drop": 1.0, "validation_samples": 40},
                     quantization={"calibration": {"samples": 30}})  # fmt: skip
    summary = convert(recipe).summary
    built = load_manifest(tmp_path / "ac" / summary.locations["ov-int8"]).metrics["build"]
    assert built["accuracy_control"] is True and built["validation_rows"] == 40
    assert next(v for v in summary.variants if v["name"] == "ov-int8")["gate"]["rows"] == 120
