"""Sensitivity-guided mixed precision for ``ort-int8-static`` (``auto_fp32``): the node whose INT8
damages the logits most is the one kept in FP32, it really reads FP32 inputs in the built graph,
the choice is deterministic for a seed, and bad option values are refused with clear errors.

The graph is built here with ``onnx.helper``: conv_a → conv_b → conv_c → pool → head, where conv_b
has one huge weight on an input channel that is always zero. With per-tensor weights that outlier
sets conv_b's weight scale, so INT8 rounds its other weights to 0 or ±scale, while the activations
stay normal: conv_b is by construction the node whose quantization hurts the logits most.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from onnx_graphs import conv_node, write_outlier_cnn

SIDE = 8


@pytest.fixture(scope="module")
def outlier_cnn(tmp_path_factory) -> Path:
    return write_outlier_cnn(tmp_path_factory.mktemp("outlier-cnn") / "model.onnx", SIDE)


def _feeds(count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"pixel_values": rng.uniform(0, 1, (1, 3, SIDE, SIDE)).astype(np.float32)} for _ in range(count)]


def _build(source: Path, target: Path, auto, feeds=None) -> dict:
    from edgekit.quantize.ort import StaticTuning, quantize_static_int8
    from edgekit.tasks.image_classification import STATIC_OP_TYPES

    feeds = _feeds(12) if feeds is None else feeds
    return quantize_static_int8(source, target, feeds, "minmax", list(STATIC_OP_TYPES), False, False, False,
                                tuning=StaticTuning(auto_fp32=auto))  # fmt: skip


def _reads_fp32(path: Path, node_name: str) -> bool:
    """Whether ``node_name`` computes in FP32 when ONNX Runtime runs it: its weight a float initializer and
    no input dequantized (a float Conv between DequantizeLinear and QuantizeLinear is re-quantized by ORT)."""
    import onnx

    graph = onnx.load(str(path)).graph
    node = next(n for n in graph.node if n.name == node_name)
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    return node.input[1] in floats and not set(node.input) & dequantized


def _runtime_integer_convs(path: Path, tmp_path: Path) -> int:
    """QLinearConv nodes in the graph ONNX Runtime actually runs (full optimisation, as the runtime loads it)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / f"{path.stem}.optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return sum(n.op_type == "QLinearConv" for n in onnx.load(options.optimized_model_filepath).graph.node)


def test_the_most_damaging_node_is_kept_fp32_and_really_reads_fp32(tmp_path, outlier_cnn):
    from edgekit.quantize.sensitivity import AutoFp32, model_logits, sqnr_db

    record = _build(outlier_cnn, tmp_path / "auto.onnx", AutoFp32(max_nodes=1, samples=8))
    assert [c["node"] for c in record["chosen"]] == ["conv_b"]
    assert record["chosen"][0]["gain_db"] > max(n["gain_db"] for n in record["next_best"]) + 3
    assert record["samples"] == 8 and record["candidates"] >= 4
    assert _reads_fp32(tmp_path / "auto.onnx", "conv_b")
    assert not _reads_fp32(tmp_path / "auto.onnx", "conv_a") and not _reads_fp32(tmp_path / "auto.onnx", "conv_c")
    plain = tmp_path / "plain.onnx"
    assert _build(outlier_cnn, plain, None) == {}  # without the option: every node INT8, nothing recorded
    assert not _reads_fp32(plain, "conv_b")
    assert record["fp32_inputs_rewired"] == 1
    # ORT runs conv_b in FP32 (without the rewiring its WeightBiasQuantization pass would re-quantize it); conv_a,
    # whose output conv_b now reads unrounded, loses its output quantizer and runs a float kernel too; conv_c stays.
    assert (_runtime_integer_convs(plain, tmp_path), _runtime_integer_convs(tmp_path / "auto.onnx", tmp_path)) == (3, 1)
    feeds = _feeds(6, seed=9)  # inputs the search never saw
    reference = model_logits(outlier_cnn, feeds)
    fixed, all_int8 = (
        sqnr_db(reference, model_logits(tmp_path / "auto.onnx", feeds)),
        sqnr_db(reference, model_logits(plain, feeds)),
    )
    assert fixed > all_int8 + 3  # the measured gain carries over to new inputs
    assert record["result_sqnr_db"] > record["all_int8_sqnr_db"]


def test_the_choice_is_deterministic_for_a_seed(tmp_path, outlier_cnn):
    from edgekit.quantize.sensitivity import AutoFp32, scoring_feeds

    auto = AutoFp32(max_nodes=2, samples=5, seed=3, rounds=2)
    first, second = _build(outlier_cnn, tmp_path / "a.onnx", auto), _build(outlier_cnn, tmp_path / "b.onnx", auto)
    assert first == second
    assert first["chosen"][0]["node"] == "conv_b" and 1 <= len(first["rounds"]) <= 2  # round 2 re-scored the rest
    digest = [hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() for f in ("a.onnx", "b.onnx")]
    assert digest[0] == digest[1]
    feeds = _feeds(12)
    assert scoring_feeds(feeds, auto)[0] == first["scored_inputs"]
    assert scoring_feeds(feeds, AutoFp32(max_nodes=2, samples=5, seed=4))[0] != first["scored_inputs"]
    assert scoring_feeds(feeds, AutoFp32(max_nodes=2, samples=50))[0] == list(range(12))  # fewer inputs: all


def test_bad_auto_fp32_values_are_refused(tmp_path, outlier_cnn):
    from pydantic import ValidationError

    from edgekit.convert.variants.onnx import StaticOptions
    from edgekit.errors import ExportError
    from edgekit.quantize.sensitivity import AutoFp32

    for bad in ({"max_nodes": 0}, {"max_nodes": 2, "samples": 0}, {"max_nodes": 2, "seed": -1},
                {"max_nodes": 2, "rounds": 0},
                {"max_nodes": 2, "nodes": 3}, {"samples": 8}):  # fmt: skip
        with pytest.raises(ValidationError):
            StaticOptions(auto_fp32=bad)
    assert StaticOptions(auto_fp32={"max_nodes": 3}).auto_fp32.samples == 32
    whole = tmp_path / "whole.onnx"
    with pytest.raises(ExportError, match=r"max_nodes is 99 but only \d+ nodes are quantized"):
        _build(outlier_cnn, whole, AutoFp32(max_nodes=99))
    assert not whole.exists()
    with pytest.raises(ExportError, match="calibration set is empty"):
        _build(outlier_cnn, whole, AutoFp32(max_nodes=1), feeds=[])


def test_convert_records_the_choice_in_a_sealed_artifact(tmp_path):
    """Through ``convert``: the chosen nodes and their gains in ``metrics.build``, every file listed and
    hashed (the runtime verifies them on load), batch invariance still measured for the mixed graph."""
    import json

    from image_helpers import tiny_cnn_recipe, two_class_images
    from PIL import Image

    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.runtime import EdgeModel

    variants = ["onnx-fp32", {"name": "ort-int8-static", "auto_fp32": {"max_nodes": 2, "samples": 4}}]
    recipe = tiny_cnn_recipe(tmp_path / "out", two_class_images(tmp_path / "data"), variants)
    summary = convert(build_recipe(recipe)).summary
    folder = tmp_path / "out" / summary.locations["ort-int8-static"]
    manifest = json.loads((folder / "manifest.json").read_text())
    record = manifest["metrics"]["build"]["auto_fp32"]
    assert record["candidates"] >= 5 and len(record["chosen"]) <= 2 and record["samples"] == 4
    assert all(c["gain_db"] > 0 for c in record["chosen"]) and len(record["scored_inputs"]) == 4
    assert record["result_sqnr_db"] is not None and record["all_int8_sqnr_db"] is not None
    conv_chosen = [c["node"] for c in record["chosen"] if c["op_type"] == "Conv"]
    assert all(_reads_fp32(folder / "model.onnx", name) for name in conv_chosen)
    assert "model.onnx" in manifest["files"]
    assert "batch_invariant" in manifest
    model = EdgeModel.load(folder)  # verifies every listed file's sha256
    images = [Image.open(p) for p in sorted((tmp_path / "data" / "dark").glob("*.png"))[:3]]
    single = np.asarray([model.logits([image])[0] for image in images])
    assert np.allclose(np.asarray(model.logits(images)), single, atol=1e-5)


def test_nncf_ignored_scope_keeps_those_operations_fp32(tmp_path, outlier_cnn):
    pytest.importorskip("nncf")
    import openvino as ov
    from pydantic import ValidationError

    from edgekit.convert.variants.openvino import NncfOptions
    from edgekit.errors import ExportError
    from edgekit.export.openvino import onnx_to_openvino
    from edgekit.quantize.nncf import nncf_int8

    fp32 = tmp_path / "fp32.xml"
    onnx_to_openvino(outlier_cnn, fp32, compress_to_fp16=False)
    quantized = tmp_path / "int8.xml"
    nncf_int8(fp32, quantized, _feeds(8), None, 0.01, None, ignored={"patterns": ["conv_b/.*"]})
    ops = [op for op in ov.Core().read_model(str(quantized)).get_ops() if op.get_type_name() == "Convolution"]
    convs = {op.get_friendly_name(): {i.get_source_output().get_node().get_type_name() for i in op.inputs()}
             for op in ops}  # fmt: skip
    assert "FakeQuantize" not in convs["conv_b/WithoutBiases"]  # FP32: no quantizer on its input
    assert "FakeQuantize" in convs["conv_a/WithoutBiases"] and "FakeQuantize" in convs["conv_c/WithoutBiases"]
    with pytest.raises(ExportError, match="NNCF quantization failed"):  # matches nothing: refused, not ignored
        nncf_int8(fp32, tmp_path / "bad.xml", _feeds(4), None, 0.01, None, ignored={"names": ["no_such_op"]})
    with pytest.raises(ValidationError):
        NncfOptions(ignored_names="conv_b")  # a list, not a string
    assert NncfOptions().ignored_patterns == []


def test_two_fp32_nodes_reading_one_tensor_share_its_fp32_copy(tmp_path):
    """conv_b and conv_c both read conv_a's output: keeping both FP32 makes one FP32 copy, a valid graph."""
    import onnx
    from onnx import TensorProto, helper

    from edgekit.quantize.ort import StaticTuning, _QdqSettings, _quantize_qdq
    from edgekit.quantize.sensitivity import model_logits, read_fp32_inputs, with_node_in_fp32
    from edgekit.tasks.image_classification import STATIC_OP_TYPES

    rng = np.random.default_rng(5)
    nodes, inits = [], []
    for name, source, shape in (("conv_a", "pixel_values", (4, 3, 3, 3)), ("conv_b", "conv_a.r", (4, 4, 3, 3)),
                                ("conv_c", "conv_a.r", (4, 4, 1, 1))):  # fmt: skip
        more_nodes, more_inits = conv_node(name, source, rng.normal(0, 0.4, shape).astype(np.float32),
                                       np.full(4, 0.1, np.float32))  # fmt: skip
        nodes, inits = nodes + more_nodes, inits + more_inits
    nodes += [helper.make_node("Add", ["conv_b.r", "conv_c.r"], ["sum"], name="add"),
              helper.make_node("GlobalAveragePool", ["sum"], ["pooled"], name="pool"),
              helper.make_node("Flatten", ["pooled"], ["logits"], name="flatten")]  # fmt: skip
    graph = helper.make_graph(nodes, "branch", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                              ["batch", 3, SIDE, SIDE])], [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                              ["batch", 4])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    source, quantized = tmp_path / "branch.onnx", tmp_path / "branch-int8.onnx"
    onnx.save(model, str(source))
    feeds = _feeds(6)
    qdq = _QdqSettings(feeds, "minmax", list(STATIC_OP_TYPES), True, False, False, StaticTuning())
    _quantize_qdq(source, quantized, ["conv_b", "conv_c"], qdq)
    assert read_fp32_inputs(source, quantized, ["conv_b", "conv_c"]) == 2
    rewired = onnx.load(str(quantized))
    onnx.checker.check_model(rewired)  # unique names, topological order
    assert sum(n.op_type == "Clip" for n in rewired.graph.node) == 1
    assert _reads_fp32(quantized, "conv_b") and _reads_fp32(quantized, "conv_c")
    assert np.isfinite(model_logits(quantized, feeds)).all()
    # A later greedy round: conv_b already FP32, conv_c scored on top of it reuses the same FP32 copy.
    _quantize_qdq(source, quantized, ["conv_b"], qdq)
    read_fp32_inputs(source, quantized, ["conv_b"])
    base = onnx.load(str(quantized))
    conv_c = next(n for n in base.graph.node if n.name == "conv_c")
    weights = {i.name: i for i in onnx.load(str(source)).graph.initializer}
    assert np.isfinite(model_logits(with_node_in_fp32(base, conv_c, weights), feeds)).all()
