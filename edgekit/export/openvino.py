"""OpenVINO IR from the exported ONNX graph (``ov.convert_model``), FP32 or FP16 weights.

Converting from the ONNX file rather than from the PyTorch module: in this stack
``ov.convert_model(nn.Module)`` produced a broken IR (renamed inputs, failing shape
inference), while conversion from ONNX matched PyTorch to ~6e-6 (docs/stack-findings.md).
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ExportError


def onnx_to_openvino(onnx_path: Path, target_xml: Path, compress_to_fp16: bool) -> None:
    try:
        import openvino as ov
    except ImportError:
        raise ExportError("OpenVINO variants need the openvino package: pip install 'edgekit[openvino]'.") from None
    try:
        model = ov.convert_model(str(onnx_path))
        # save_model compresses weights to FP16 unless told otherwise: be explicit both ways.
        ov.save_model(model, str(target_xml), compress_to_fp16=compress_to_fp16)
    except Exception as exc:
        raise ExportError(f"OpenVINO could not convert {onnx_path}: {exc}") from exc
