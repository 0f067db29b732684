"""ONNX Runtime quantizers: dynamic INT8, static QDQ INT8 with calibration, and FP16.

Defaults come from measurements on MiniLM/SST-2 (docs/stack-findings.md and benchmarks/README.md):
per-channel weights keep agreement with FP32 at 0.95+ where per-tensor gives 0.90;
``reduce_range`` alone costs several points, so it is only used with per-channel, and only
where the ISA has no VNNI-style instructions.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Literal

from edgekit.errors import ExportError
from edgekit.quantize.calibration import Feed, FeedReader

CalibrationMethod = Literal["minmax", "entropy", "percentile"]


def _quiet_quantizer_logs() -> None:
    # The quantizer logs a generic "consider pre-processing" warning on every call.
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))


def quantize_dynamic_int8(source: Path, target: Path, per_channel: bool, reduce_range: bool) -> None:
    """Weights to INT8 offline; activations quantized on the fly at run time. Needs no data."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _quiet_quantizer_logs()
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
        )
    except Exception as exc:  # the quantizer raises bare Exceptions and ValueErrors
        raise ExportError(f"ONNX Runtime dynamic quantization failed: {exc}") from exc


def quantize_static_int8(
    source: Path,
    target: Path,
    feeds: list[Feed],
    method: CalibrationMethod,
    op_types: list[str],
    per_channel: bool,
    reduce_range: bool,
    signed_activations: bool,
) -> None:
    """QDQ static INT8: activation ranges calibrated on real inputs.

    Pre-processing runs without symbolic shape inference, which fails on these graphs
    ("Incomplete symbolic shape inference"); ONNX shape inference and graph clean-up still run.
    """
    from onnxruntime.quantization import CalibrationMethod as OrtMethod
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    _quiet_quantizer_logs()
    methods = {"minmax": OrtMethod.MinMax, "entropy": OrtMethod.Entropy, "percentile": OrtMethod.Percentile}
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(target),
                FeedReader(feeds),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=op_types,
                per_channel=per_channel,
                reduce_range=reduce_range,
                # U8 activations suit x86 (u8*s8 instructions); Arm prefers S8S8 in QDQ.
                activation_type=QuantType.QInt8 if signed_activations else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                extra_options={"CalibTensorRangeSymmetric": False, "CalibPercentile": 99.999},
            )
        except Exception as exc:
            raise ExportError(f"ONNX Runtime static quantization failed: {exc}") from exc


def convert_fp16(source: Path, target: Path, keep_io_types: bool = True) -> None:
    """FP16 weights and arithmetic, inputs and outputs kept in their original types.

    For GPU and NPU execution providers; ONNX Runtime's CPU provider runs many FP16 ops
    through casts, so it is usually slower there (the pre-flight says so).
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=keep_io_types)
        onnx.save(model, str(target))
    except Exception as exc:
        raise ExportError(f"FP16 conversion failed: {exc}") from exc
