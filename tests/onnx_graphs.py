"""ONNX graphs built node by node for the INT8 tests: small, deterministic, with known sensitive layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def conv_node(name: str, source: str, weight: np.ndarray, bias: np.ndarray, relu: bool = True) -> tuple[list, list]:
    from onnx import helper, numpy_helper

    pad = weight.shape[-1] // 2
    nodes = [helper.make_node("Conv", [source, f"{name}.w", f"{name}.b"], [f"{name}.y"], name=name,
                              pads=[pad] * 4)]  # fmt: skip
    if relu:
        nodes.append(helper.make_node("Relu", [f"{name}.y"], [f"{name}.r"], name=f"{name}_relu"))
    return nodes, [numpy_helper.from_array(weight, f"{name}.w"), numpy_helper.from_array(bias, f"{name}.b")]


def write_outlier_cnn(path: Path, side: int) -> Path:
    """conv_a → conv_b → conv_c → pool → head at ``side`` px, where conv_b has one huge weight on an input channel
    that is always zero: with per-tensor weights that outlier sets conv_b's weight scale, so INT8 rounds its
    other weights to 0 or ±scale while the activations stay normal. conv_b is by construction the node (and
    conv_a + conv_b the shortest prefix) whose FP32 most improves the logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w_a = rng.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float32)
    b_a = np.full(4, 0.1, np.float32)
    w_a[0], b_a[0] = 0.0, 0.0  # conv_a's channel 0 is always 0 after its ReLU
    w_b = rng.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32)
    w_b[:, 0] = 0.0
    w_b[0, 0, 1, 1] = 60.0  # reads the dead channel: no effect in FP32, but it sets the per-tensor weight scale
    w_c = rng.normal(0, 0.4, (4, 4, 1, 1)).astype(np.float32)
    nodes, inits = [], []
    for name, source, weight in (("conv_a", "pixel_values", w_a), ("conv_b", "conv_a.r", w_b),
                                 ("conv_c", "conv_b.r", w_c)):  # fmt: skip
        bias = b_a if name == "conv_a" else np.full(weight.shape[0], 0.05, np.float32)
        more_nodes, more_inits = conv_node(name, source, weight, bias)
        nodes, inits = nodes + more_nodes, inits + more_inits
    nodes += [helper.make_node("GlobalAveragePool", ["conv_c.r"], ["pooled"], name="pool"),
              helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
              helper.make_node("Gemm", ["flat", "head.w", "head.b"], ["logits"], name="head", transB=1)]  # fmt: skip
    inits += [numpy_helper.from_array(rng.normal(0, 1, (5, 4)).astype(np.float32), "head.w"),
              numpy_helper.from_array(np.zeros(5, np.float32), "head.b")]  # fmt: skip
    graph = helper.make_graph(nodes, "outlier", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                              ["batch", 3, side, side])], [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                              ["batch", 5])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
