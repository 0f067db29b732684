"""The latency estimator: graph costs checked by hand, the roofline's direction, refusals, and
the bench report for a phone profile (host timings labelled as the host's, estimates as estimates)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from edgekit.errors import EdgekitError, TargetError
from edgekit.estimate.calibrate import HostMeasurement
from edgekit.estimate.device_model import DeviceModel, roofline_ms
from edgekit.estimate.estimate import estimate_latency, target_model
from edgekit.estimate.graph_cost import GraphCostError, as_precision, graph_cost
from edgekit.estimate.host_peak import host_clock, host_model
from edgekit.targets.profiles import CostModel, load_target


def _save(tmp_path: Path, nodes, inputs, output, initializers, name: str = "g.onnx") -> Path:
    graph = helper.make_graph(nodes, "g", inputs, [output], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    save(model, str(path))
    return path


def _matmul_graph(tmp_path: Path, int8: bool) -> Path:
    """x [batch, seq, 8] @ W [8, 4]; W stored as fp32, or as int8 behind a DequantizeLinear."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    if not int8:
        w = numpy_helper.from_array(np.ones((8, 4), np.float32), "w")
        return _save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"])], [x], y, [w], "fp32.onnx")
    inits = [numpy_helper.from_array(np.ones((8, 4), np.int8), "wq"),
             numpy_helper.from_array(np.array(0.1, np.float32), "scale"),
             numpy_helper.from_array(np.array(0, np.int8), "zero")]  # fmt: skip
    nodes = [helper.make_node("DequantizeLinear", ["wq", "scale", "zero"], ["w"]),
             helper.make_node("MatMul", ["x", "w"], ["y"])]  # fmt: skip
    return _save(tmp_path, nodes, [x], y, inits, "int8.onnx")


def test_matmul_flops_by_hand(tmp_path):
    cost = graph_cost(_matmul_graph(tmp_path, int8=False), batch=2, seq_len=3)
    assert cost.flops == 2 * (2 * 3) * 8 * 4  # 2 FLOPs per multiply-add, M = batch x seq rows
    assert cost.flops_by("fp32") == cost.flops and not cost.uncosted


def test_gemm_flops_by_hand(tmp_path):
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.ones((5, 8), np.float32), "w"),
             numpy_helper.from_array(np.ones(5, np.float32), "b")]  # fmt: skip
    node = helper.make_node("Gemm", ["a", "w", "b"], ["y"], transB=1)
    cost = graph_cost(_save(tmp_path, [node], [a], y, inits), batch=4, seq_len=1)
    assert cost.flops == 2 * 4 * 5 * 8


def test_conv_flops_by_hand(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((16, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    cost = graph_cost(_save(tmp_path, [node], [x], y, [w]), batch=2, seq_len=1)
    assert cost.flops == 2 * (2 * 16 * 8 * 8) * (3 * 3 * 3)  # per output element: Cin x kh x kw MACs
    assert cost.weight_bytes == 16 * 3 * 3 * 3 * 4


def test_int8_weights_move_fewer_bytes_than_fp32(tmp_path):
    fp32 = graph_cost(_matmul_graph(tmp_path, int8=False), 1, 16)
    int8 = graph_cost(_matmul_graph(tmp_path, int8=True), 1, 16)
    matmul8 = next(op for op in int8.ops if op.op_type == "MatMul")
    matmul32 = next(op for op in fp32.ops if op.op_type == "MatMul")
    assert matmul8.precision == "int8" and matmul32.precision == "fp32"
    assert matmul8.weight_bytes == 8 * 4 * 1 and matmul32.weight_bytes == 8 * 4 * 4
    assert int8.flops_by("int8") == fp32.flops_by("fp32")  # same math, other precision
    converted = as_precision(fp32, "int8", "costed from the fp32 reference")
    assert converted.flops_by("int8") == fp32.flops and converted.weight_bytes == fp32.weight_bytes / 4
    assert "costed from the fp32 reference" in converted.notes


@pytest.mark.parametrize("content", [b"", b"not a protobuf \x00\xff" * 10, b"\x08\x07" + b"\xff" * 64])
def test_hostile_graph_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(GraphCostError, match="model.onnx"):
        graph_cost(path, 1, 16)


def test_more_peak_means_less_time(tmp_path):
    cost = graph_cost(_matmul_graph(tmp_path, int8=False), 1, 128)
    times = [roofline_ms(cost, DeviceModel("d", {"fp32": peak}, None), 0.5) for peak in (10.0, 100.0, 1000.0)]
    assert times[0] > times[1] > times[2] > 0
    slow_memory = roofline_ms(cost, DeviceModel("d", {"fp32": 1e6}, 1e-6), 0.5)
    assert slow_memory > times[2]  # memory-bound when bandwidth is tiny


def _measurement(threads: int = 2) -> HostMeasurement:
    model = host_model(threads, {"avx2", "fma"}, host_clock_or_default())
    return HostMeasurement({16: 2.0, 32: 3.0, 64: 5.0}, model, "this host (test figures), not the device")


def host_clock_or_default():
    from edgekit.estimate.host_peak import Clock

    return host_clock() or Clock(2.0, "test")


def test_estimate_is_monotonic_in_the_target_peak(tiny_artifact):
    profile = load_target("raspberry-pi-5")
    values = []
    for scale in (1.0, 2.0, 4.0):
        cost = CostModel(peak_gflops={k: v * scale for k, v in profile.cost_model.peak_gflops.items()},
                         memory_bandwidth_gbs=None, clock_ghz=2.4)  # fmt: skip
        faster = profile.model_copy(update={"cost_model": cost})
        values.append(estimate_latency(tiny_artifact, faster, _measurement(), 64).value_ms)
    assert values[0] > values[1] > values[2] > 0
    estimate = estimate_latency(tiny_artifact, profile, _measurement(), 64)
    assert estimate.low_ms < estimate.value_ms < estimate.high_ms
    assert estimate.label == "estimated" and any("calibrated on this host" in a for a in estimate.assumptions)


def test_profile_without_cost_figures_is_refused_by_name(tiny_artifact):
    profile = load_target("x86-avx2-box")  # nothing sourced for the class: cost_model {}
    with pytest.raises(TargetError, match=r"cost_model\.peak_gflops"):
        target_model(profile)
    fp32_only = load_target("raspberry-pi-5").model_copy(update={"cost_model": CostModel(peak_gflops={"int8": 1.0})})
    with pytest.raises(TargetError, match=r"cost_model\.peak_gflops\.fp32"):
        estimate_latency(tiny_artifact, fp32_only, _measurement(), 16)


def test_host_clock_from_cpuinfo(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2600.000\n")
    clock = host_clock(tmp_path)
    assert clock is not None and clock.ghz == pytest.approx(2.6) and "cpuinfo" in clock.source
    (tmp_path / "proc" / "cpuinfo").write_text("cpu MHz : garbage\n")
    assert host_clock(tmp_path) is None


def test_phone_bench_labels_host_timings_and_estimates(tiny_artifact, tmp_path):
    from edgekit.bench.html import render_html
    from edgekit.bench.report import markdown
    from edgekit.bench.session import benchmark_artifacts

    document = benchmark_artifacts([tiny_artifact], target="iphone-15-pro", runs=10, warmup=1)
    json.dumps(document)  # the results file stays plain JSON
    label = document["target"]["host_label"]
    assert label.startswith("this host (") and "not the device" in label
    entry = document["estimated"]["variants"][0]
    assert "error" not in entry, entry.get("error")
    assert all(e["label"] == "estimated" and e["low_ms"] <= e["value_ms"] <= e["high_ms"] for e in entry["estimates"])
    report = markdown(document)
    assert "| this host p50 ms |" in report and "| p50 ms |" not in report
    assert "iphone-15-pro estimated ms" in report and "not measured" in report
    page = render_html(document)
    assert "this host p50 ms" in page and "Estimated on iphone-15-pro" in page


def test_engines_that_cannot_run_here_are_skipped_with_their_reason(monkeypatch, tiny_artifact):
    from dataclasses import replace

    import edgekit.runtime.engines as engines
    from edgekit.bench.session import _unavailable

    real = engines.get_engine("onnxruntime")
    monkeypatch.setattr(engines, "get_engine", lambda name: replace(real, unavailable_reason=lambda: "needs macOS"))
    assert _unavailable({tiny_artifact: "onnxruntime"}) == {tiny_artifact: "needs macOS"}
    with pytest.raises(EdgekitError, match="needs macOS"):
        from edgekit.bench.session import benchmark_artifacts

        benchmark_artifacts([tiny_artifact], target="iphone-15-pro", runs=10, warmup=1)


def test_core_ml_is_estimated_only_for_targets_with_core_ml():
    from edgekit.estimate.for_bench import _target_cannot_run
    from edgekit.targets.profiles import load_target

    assert _target_cannot_run(load_target("iphone-15-pro"), "coreml") is None  # CoreMLExecutionProvider listed
    reason = _target_cannot_run(load_target("raspberry-pi-5"), "coreml")
    assert reason and "raspberry-pi-5 has no Core ML" in reason
    assert _target_cannot_run(load_target("raspberry-pi-5"), "onnxruntime") is None
