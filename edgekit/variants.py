"""The variants ``convert`` can build, each from the packaged FP32 ONNX reference.

A variant is a pass in the Olive sense: a name, the engine and precision it produces,
whether it needs calibration data, and a build function that writes the model file(s)
into an empty folder. The pipeline packages, gates and benchmarks every variant the same
way. This module is import-light; builders import their libraries when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.quantize.calibration import Feed, calibration_feeds
from edgekit.recipe import OpenVinoSpec, QuantizationSpec
from edgekit.targets import TargetProfile

REFERENCE = "onnx-fp32"


@dataclass
class BuildContext:
    reference_dir: Path  # the packaged onnx-fp32 artifact
    quantization: QuantizationSpec
    openvino: OpenVinoSpec
    target: TargetProfile
    calibration_texts: list[str]
    validation: tuple[list[str], list[int]] | None = None  # texts and label ids, for accuracy control
    _feeds: list[Feed] | None = field(default=None, repr=False)

    @property
    def reference_onnx(self) -> Path:
        return self.reference_dir / "model.onnx"

    def feeds(self) -> list[Feed]:
        if self._feeds is None:
            self._feeds = calibration_feeds(self.reference_dir, self.calibration_texts)
        return self._feeds

    @property
    def per_channel(self) -> bool:
        chosen = self.quantization.per_channel
        return self.target.precision.quantization.per_channel if chosen is None else chosen

    @property
    def reduce_range(self) -> bool:
        chosen = self.quantization.reduce_range
        return self.target.precision.quantization.reduce_range if chosen is None else chosen


@dataclass(frozen=True)
class BuildOutput:
    model_file: str
    settings: dict[str, Any]  # what was chosen, recorded in the manifest


@dataclass(frozen=True)
class VariantKind:
    name: str
    engine: str
    precision: str
    description: str
    needs_calibration: bool
    strict_parity: bool  # fp32 variants must match PyTorch within parity.atol
    build: Callable[[BuildContext, Path], BuildOutput] | None  # None: the reference itself


def _ort_dynamic(ctx: BuildContext, folder: Path) -> BuildOutput:
    from edgekit.quantize.ort import quantize_dynamic_int8

    quantize_dynamic_int8(ctx.reference_onnx, folder / "model.onnx", ctx.per_channel, ctx.reduce_range)
    return BuildOutput("model.onnx", {"per_channel": ctx.per_channel, "reduce_range": ctx.reduce_range})


def _ort_static(ctx: BuildContext, folder: Path) -> BuildOutput:
    from edgekit.quantize.ort import quantize_static_int8

    spec = ctx.quantization
    signed = ctx.target.arch != "x86_64"
    quantize_static_int8(
        ctx.reference_onnx,
        folder / "model.onnx",
        ctx.feeds(),
        spec.calibration.method,
        spec.static_op_types,
        ctx.per_channel,
        ctx.reduce_range,
        signed_activations=signed,
    )
    settings = {
        "format": "QDQ",
        "calibration_method": spec.calibration.method,
        "calibration_samples": len(ctx.feeds()),
        "op_types": spec.static_op_types,
        "per_channel": ctx.per_channel,
        "reduce_range": ctx.reduce_range,
        "activations": "int8" if signed else "uint8",
    }
    return BuildOutput("model.onnx", settings)


def _onnx_fp16(ctx: BuildContext, folder: Path) -> BuildOutput:
    from edgekit.quantize.ort import convert_fp16

    convert_fp16(ctx.reference_onnx, folder / "model.onnx")
    return BuildOutput("model.onnx", {"keep_io_types": True})


def _ov(compress_to_fp16: bool) -> Callable[[BuildContext, Path], BuildOutput]:
    def build(ctx: BuildContext, folder: Path) -> BuildOutput:
        from edgekit.export.openvino import onnx_to_openvino

        onnx_to_openvino(ctx.reference_onnx, folder / "model.xml", compress_to_fp16)
        return BuildOutput("model.xml", {"converted_from": "onnx", "compress_to_fp16": compress_to_fp16})

    return build


def _ov_int8(ctx: BuildContext, folder: Path) -> BuildOutput:
    import tempfile

    from edgekit.export.openvino import onnx_to_openvino
    from edgekit.quantize.nncf import nncf_int8

    settings: dict[str, Any] = {"tool": "nncf", "model_type": "TRANSFORMER", "calibration_samples": len(ctx.feeds())}
    validation = None
    if ctx.openvino.accuracy_control:
        if ctx.validation is None:
            from edgekit.errors import DataError

            raise DataError("openvino.accuracy_control needs labelled data (--data with a label column).")
        texts, labels = ctx.validation
        validation = (calibration_feeds(ctx.reference_dir, texts), labels)
        settings.update(accuracy_control=True, max_drop_points=ctx.openvino.max_drop, validation_rows=len(texts))
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        fp32_xml = Path(scratch) / "fp32.xml"
        onnx_to_openvino(ctx.reference_onnx, fp32_xml, compress_to_fp16=False)
        nncf_int8(fp32_xml, folder / "model.xml", ctx.feeds(), validation, ctx.openvino.max_drop / 100)
    return BuildOutput("model.xml", settings)


VARIANTS: dict[str, VariantKind] = {
    kind.name: kind
    for kind in (
        VariantKind(REFERENCE, "onnxruntime", "fp32", "ONNX export, FP32 (the reference)", False, True, None),
        VariantKind("ort-int8-dynamic", "onnxruntime", "int8", "ORT dynamic INT8", False, False, _ort_dynamic),
        VariantKind("ort-int8-static", "onnxruntime", "int8", "ORT static INT8 (QDQ)", True, False, _ort_static),
        VariantKind("onnx-fp16", "onnxruntime", "fp16", "ONNX FP16 (GPU/NPU providers)", False, False, _onnx_fp16),
        VariantKind("ov-fp32", "openvino", "fp32", "OpenVINO IR, FP32", False, True, _ov(False)),
        VariantKind("ov-fp16", "openvino", "fp16", "OpenVINO IR, FP16-compressed weights", False, False, _ov(True)),
        VariantKind("ov-int8", "openvino", "int8", "OpenVINO IR, NNCF INT8", True, False, _ov_int8),
    )
}
