"""Transformer fusion before dynamic INT8 (``ort-int8-dynamic`` with ``fuse``): the graph, the gate,
batch behaviour, the option and the per-ISA default (edgekit/quantize/fusion.py, targets/preflight.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TEXTS

from edgekit.artifact import load_manifest
from edgekit.errors import ExportError, RecipeError
from edgekit.targets.profiles import load_target

FUSED_INT8_OPS = {"QAttention", "QEmbedLayerNormalization", "LayerNormalization", "BiasGelu"}


@pytest.fixture(scope="module")
def fused_bundle(tmp_path_factory, trained_tiny_dir, sentiment_eval) -> Path:
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    out = tmp_path_factory.mktemp("fusion") / "out"
    recipe = build_recipe({"model": str(trained_tiny_dir), "out": str(out), "data": {"path": str(sentiment_eval)},
                           "variants": ["onnx-fp32", {"name": "ort-int8-dynamic", "fuse": True}],
                           "bench": {"enabled": False}})  # fmt: skip
    return convert(recipe).out


def _ops(model_file: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(model_file)).graph.node}


def test_fused_variant_builds_passes_gate_and_records_fusion(fused_bundle):
    summary = json.loads((fused_bundle / "summary.json").read_text())
    int8 = next(v for v in summary["variants"] if v["name"] == "ort-int8-dynamic")
    assert int8["gate"]["passed"], int8["gate"]
    assert int8["gate"]["agreement"] >= 0.9
    folder = fused_bundle / summary["locations"]["ort-int8-dynamic"]
    manifest = load_manifest(folder)  # verifies every listed file's sha256
    build = manifest.metrics["build"]
    assert build["fused"] is True and build["fused_ops"]["QAttention"] == 2  # one per layer of the tiny BERT
    assert "fuse_choice" not in build, "an explicit fuse: true is not a default choice"
    ops = _ops(folder / "model.onnx")
    assert ops >= FUSED_INT8_OPS and "Softmax" not in ops, sorted(ops)
    assert "SkipLayerNormalization" not in ops, "ORT's CPU SkipLayerNormalization kernel is the slow one"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [], "no scratch left behind"
    assert set(manifest.files) == {p.name for p in folder.iterdir() if p.name != "manifest.json"}


def test_fused_fp32_graph_is_batch_invariant(fused_bundle, tmp_path):
    """The fused Attention masks padding: a padded batch gives every row its batch-1 logits."""
    import onnxruntime as ort

    from edgekit.quantize.calibration import calibration_feeds
    from edgekit.quantize.fusion import attention_shape, fuse_transformer
    from edgekit.runtime.preprocess import TextPreprocessor

    reference = fused_bundle / "onnx-fp32"
    counts = fuse_transformer(reference / "model.onnx", tmp_path / "fused.onnx", *attention_shape(reference))
    assert counts.get("Attention") == 2 and counts.get("EmbedLayerNormalization") == 1, counts
    session = ort.InferenceSession(str(tmp_path / "fused.onnx"), providers=["CPUExecutionProvider"])
    texts = [text for text, _ in TINY_TEXTS]
    single = np.concatenate([session.run(None, feed)[0] for feed in calibration_feeds(reference, texts)])
    batch = TextPreprocessor.for_artifact(reference, load_manifest(reference))(texts)
    assert (batch["attention_mask"] == 0).any(), "the batch must hold padding for this test to mean anything"
    np.testing.assert_allclose(session.run(None, batch)[0], single, atol=1e-5)


def test_fused_int8_declares_row_by_row_and_the_runtime_keeps_rows_independent(fused_bundle):
    """Dynamic activation scales span the whole batch, fused or not: the artifact says batch_invariant
    false, so the runtime runs rows one by one and a row's answer never depends on its batch-mates."""
    from edgekit.runtime import EdgeModel
    from edgekit.runtime.invariance import batch_consistency

    folder = fused_bundle / "ort-int8-dynamic"
    assert load_manifest(folder).batch_invariant is False
    report = batch_consistency(EdgeModel.load(folder), [t for t, _ in TINY_TEXTS], batch_sizes=(3, 8))
    assert report["max_abs_score_diff"] == 0.0 and report["label_flips"] == 0


def test_fuse_option_is_validated():
    from edgekit.convert.recipe import build_recipe
    from edgekit.convert.variants import get_variant

    options = get_variant("ort-int8-dynamic").Options
    assert options().fuse is None and options(fuse=False).fuse is False
    for bad in ({"fuse": "sometimes"}, {"fusion": True}):
        with pytest.raises(ValueError):
            options(**bad)
    with pytest.raises(RecipeError, match="fusion: Extra inputs are not permitted"):
        build_recipe({"model": "m", "out": "o", "variants": [{"name": "ort-int8-dynamic", "fusion": True}]})


def _matmul_only_reference(folder: Path, config: str | None = None) -> Path:
    """A reference folder whose graph has no attention at all (one MatMul)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir()
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "model.onnx"))
    if config is not None:
        (folder / "config.json").write_text(config)
    return folder


def test_no_attention_is_an_error_when_asked_and_a_recorded_skip_by_default(tmp_path):
    from edgekit.quantize.fusion import dynamic_int8

    reference = _matmul_only_reference(tmp_path / "ref", json.dumps({"model_type": "bert"}))
    with pytest.raises(ExportError, match="no BERT-style attention"):
        dynamic_int8(reference, tmp_path / "a.onnx", True, False, fuse=True, required=True)
    settings = dynamic_int8(reference, tmp_path / "b.onnx", True, False, fuse=True, required=False)
    assert settings["fused"] is False and "no BERT-style attention" in settings["fusion_skipped"]
    assert "MatMulInteger" in _ops(tmp_path / "b.onnx")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fusion-")]


def test_default_fusion_only_for_checked_families(tmp_path):
    from edgekit.quantize.fusion import dynamic_int8

    reference = _matmul_only_reference(tmp_path / "ref", json.dumps({"model_type": "mpnet"}))
    settings = dynamic_int8(reference, tmp_path / "m.onnx", True, False, fuse=True, required=False)
    assert settings["fused"] is False and "not mpnet" in settings["fusion_skipped"]


@pytest.mark.parametrize("config", ["{not json", "[1, 2]", json.dumps({"num_attention_heads": -3}),
                                    json.dumps({"hidden_size": "384"})])  # fmt: skip
def test_hostile_config_is_a_clear_error(tmp_path, config):
    from edgekit.quantize.fusion import attention_shape

    with pytest.raises(ExportError, match="config.json"):
        attention_shape(_matmul_only_reference(tmp_path / "ref", config))


def test_fusion_default_per_isa_class():
    from edgekit.targets.preflight import _FUSION_MEASURED, fusion_default, isa_class

    assert isa_class("x86_64", ["avx2", "avx512f", "avx512_vnni", "amx_int8"]) == "x86-amx"
    assert isa_class("x86_64", ["avx2", "avx512_vnni"]) == "x86-vnni"
    assert isa_class("x86_64", ["avx2", "fma"]) == "x86-avx2"
    assert isa_class("aarch64", ["dotprod"]) == "aarch64"
    vnni = fusion_default("x86_64", ["avx2", "avx512_vnni"])  # VNNI without AMX: not measured
    assert vnni.fuse is False and not vnni.measured and "measure" in vnni.reason
    assert fusion_default("aarch64", ["dotprod", "i8mm"]).fuse is False
    image = fusion_default("x86_64", ["avx2", "amx_int8"], task="image-classification")
    assert image.fuse is False and "convolutional" in image.reason
    for cls, (fuse, _) in _FUSION_MEASURED.items():  # measured classes follow their measurement
        features = {"x86-amx": ["avx2", "avx512_vnni", "amx_int8"], "x86-vnni": ["avx2", "avx512_vnni"],
                    "x86-avx2": ["avx2"]}[cls]  # fmt: skip
        choice = fusion_default("x86_64", features)
        assert choice.measured and choice.fuse is fuse


def test_default_build_records_its_choice(fused_bundle, tmp_path):
    """fuse unset: the target's ISA class decides, and the manifest's build settings say why."""
    from edgekit.convert.variants import BuildContext, get_variant
    from edgekit.targets.preflight import fusion_default

    avx2_box = load_target("x86-avx2-box")
    assert "avx2" in avx2_box.isa_features and not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(avx2_box.isa_features)
    amx_box = avx2_box.model_copy(update={"isa_features": ["avx2", "avx512f", "avx512_vnni", "amx_int8"]})
    for name, profile in (("avx2", avx2_box), ("amx", amx_box)):
        kind = get_variant("ort-int8-dynamic")
        folder = tmp_path / name
        folder.mkdir()
        build = kind.build(BuildContext(fused_bundle / "onnx-fp32", profile, []), folder, kind.Options()).settings
        expected = fusion_default("x86_64", profile.isa_features)
        assert build["fuse_choice"] == expected.reason and build["fused"] is expected.fuse
        assert ("QAttention" in _ops(folder / "model.onnx")) is expected.fuse


def test_runtime_keeps_ort_from_refusing_the_slow_skip_layer_norm(fused_bundle, tmp_path):
    """ORT would fuse Add + LayerNormalization back into SkipLayerNormalization at load; the runtime's
    CPU session turns that fusion off (and only on the CPU provider)."""
    import onnx
    import onnxruntime as ort

    from edgekit.runtime.engines.onnxruntime_engine import disabled_fusions

    model = fused_bundle / "ort-int8-dynamic" / "model.onnx"

    def loaded_ops(disabled: list[str]) -> set[str]:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(tmp_path / f"optimized-{len(disabled)}.onnx")
        ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled)
        return {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}

    assert "SkipLayerNormalization" in loaded_ops([]), "ORT no longer re-fuses: the switch is not needed"
    ops = loaded_ops(disabled_fusions(["CPUExecutionProvider"]))
    assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops, sorted(ops)
    assert disabled_fusions([]) == disabled_fusions(["CPUExecutionProvider"]) == ["SkipLayerNormFusion"]
    assert disabled_fusions(["CUDAExecutionProvider", "CPUExecutionProvider"]) == []
