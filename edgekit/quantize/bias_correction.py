"""Empirical bias correction for the INT8 convolutions of an ONNX Runtime QDQ model.

Rounding weights to INT8 and activations to UINT8 shifts each convolution's mean output per
channel, and later layers carry and amplify the shift. For every quantized convolution, in graph
order, this measures the mean output per channel of the INT8 model (with the corrections made so
far) and of the FP32 model on the calibration inputs, and moves the INT32 bias by the difference
(Nagel et al., "Data-Free Quantization", 2019, empirical bias correction; NNCF's BiasCorrection does
the same for its own graphs, but NNCF's quantizer kept fewer ImageNet labels than ORT's here:
docs/images.md). No new operator and no runtime cost: only bias values change.

Written here because ONNX Runtime's quantizer has no such pass. Memory stays bounded: per-channel
sums are accumulated input by input, never a whole activation set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import ExportError
from edgekit.quantize.calibration import Feed


@dataclass(frozen=True)
class _QuantizedConv:
    node: str  # the Conv's node name, the same in the FP32 and the QDQ graph
    output: str  # its output in the QDQ graph
    bias: str  # the INT32 bias initializer
    bias_scale: str  # its DequantizeLinear scale (input scale x weight scale, per channel)


def correct_conv_biases(fp32_model: Path, qdq_model: Path, feeds: list[Feed]) -> dict[str, object]:
    """Rewrite ``qdq_model`` in place with corrected INT32 conv biases; returns what the manifest records."""
    import onnx
    from onnx import numpy_helper

    if not feeds:
        raise ExportError("Bias correction needs calibration inputs; the calibration set is empty.")
    fp32 = onnx.load(str(fp32_model))
    model = onnx.load(str(qdq_model))
    fp32_outputs = {node.name: node.output[0] for node in fp32.graph.node if node.op_type == "Conv"}
    convs = [c for c in _quantized_convs(model) if c.node in fp32_outputs]
    if not convs:
        return {"convs": 0}
    reference = _channel_means(fp32, [fp32_outputs[c.node] for c in convs], feeds)
    initializers = {init.name: init for init in model.graph.initializer}
    shifts = []
    for conv, target_mean in zip(convs, reference, strict=True):
        (current,) = _channel_means(model, [conv.output], feeds)
        bias = numpy_helper.to_array(initializers[conv.bias]).astype(np.int64)
        scale = numpy_helper.to_array(initializers[conv.bias_scale]).astype(np.float64)
        step = np.round((current - target_mean) / scale)
        corrected = np.clip(bias - step, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
        initializers[conv.bias].CopyFrom(numpy_helper.from_array(corrected, conv.bias))
        shifts.append(float(np.mean(np.abs(current - target_mean))))
    onnx.save(model, str(qdq_model))
    return {"convs": len(convs), "mean_abs_shift": round(float(np.mean(shifts)), 6),
            "calibration_samples": len(feeds)}  # fmt: skip


def _quantized_convs(model) -> list[_QuantizedConv]:
    """Convs whose weight and INT32 bias both come through DequantizeLinear (FP32 ones are left alone)."""
    producer = {output: node for node in model.graph.node for output in node.output}
    found = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3:
            continue
        weight, bias = producer.get(node.input[1]), producer.get(node.input[2])
        if all(p is not None and p.op_type == "DequantizeLinear" for p in (weight, bias)):
            found.append(_QuantizedConv(node.name, node.output[0], bias.input[0], bias.input[1]))
    return found


def _channel_means(model, outputs: list[str], feeds: list[Feed]) -> list[np.ndarray]:
    """Mean of each named NCHW tensor over inputs and positions, per channel."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {value.name for value in probe.graph.output}
    for name in outputs:
        if name not in present:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Basic level only: no QDQ-to-integer-kernel fusion, so the probed outputs are the Conv outputs.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ExportError(f"Bias correction could not load the model: {exc}") from exc
    sums = [np.zeros(0, dtype=np.float64) for _ in outputs]
    counts = [0] * len(outputs)
    for feed in feeds:
        for index, value in enumerate(session.run(outputs, feed)):
            if value.ndim != 4:
                raise ExportError(f"Bias correction expects NCHW convolution outputs; {outputs[index]} is "
                                  f"{value.ndim}-D. Leave bias_correction off for this model.")  # fmt: skip
            channel_sums = value.sum(axis=(0, 2, 3), dtype=np.float64)
            sums[index] = channel_sums if sums[index].size == 0 else sums[index] + channel_sums
            counts[index] += value.shape[0] * value.shape[2] * value.shape[3]
    return [total / count for total, count in zip(sums, counts, strict=True)]
