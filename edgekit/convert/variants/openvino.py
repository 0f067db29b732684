"""OpenVINO IR variants, converted from the exported ONNX: FP32, FP16-compressed and NNCF INT8."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from edgekit.convert.variants.registry import BuildContext, BuildOutput, VariantKind, VariantOptions
from edgekit.errors import DataError


class _OpenVinoIr(VariantKind):
    engine = "openvino"
    compress_to_fp16 = False

    def build(self, ctx: BuildContext, folder: Path, options: VariantOptions) -> BuildOutput:
        from edgekit.export.openvino import onnx_to_openvino

        onnx_to_openvino(ctx.reference_onnx, folder / "model.xml", self.compress_to_fp16)
        return BuildOutput("model.xml", {"converted_from": "onnx", "compress_to_fp16": self.compress_to_fp16})


class OvFp32(_OpenVinoIr):
    name = "ov-fp32"
    precision = "fp32"
    description = "OpenVINO IR, FP32"
    strict_parity = True
    quickstart_roles = ("teacher",)


class OvFp16(_OpenVinoIr):
    name = "ov-fp16"
    precision = "fp16"
    description = "OpenVINO IR, FP16-compressed weights"
    compress_to_fp16 = True


class NncfOptions(VariantOptions):
    accuracy_control: bool = Field(False, description="NNCF quantize_with_accuracy_control")
    max_drop: float = Field(1.0, ge=0, description="accuracy points NNCF may lose under accuracy control")
    validation_samples: int = Field(300, ge=10, description="labelled rows for accuracy control")
    # NNCF's own knobs (nncf.quantize); the calibration subset is quantization.calibration.samples.
    model_type: Literal["task", "default", "transformer"] = Field(
        "task", description="NNCF scheme: the task's (TRANSFORMER for text, default for CNNs), or forced"
    )
    preset: Literal["performance", "mixed"] | None = Field(
        None, description="symmetric (performance) or asymmetric (mixed) activations; None: NNCF's choice"
    )
    fast_bias_correction: bool = Field(True, description="False: the slower, more exact bias correction")
    # Mixed precision: NNCF's ignored_scope (operations of the OpenVINO IR, named after the ONNX nodes).
    ignored_names: list[str] = Field(default_factory=list, description="operation names NNCF keeps in FP32")
    ignored_patterns: list[str] = Field(default_factory=list, description="regexes of operation names kept FP32")
    ignored_types: list[str] = Field(default_factory=list, description="OpenVINO op types kept FP32")


class OvInt8(VariantKind):
    name = "ov-int8"
    engine = "openvino"
    precision = "int8"
    description = "OpenVINO IR, NNCF INT8"
    needs_calibration = True
    quickstart_roles = ("teacher",)
    Options = NncfOptions

    @classmethod
    def build_modules(cls) -> tuple[str, ...]:
        return ("nncf",)

    def recipe_defaults(self, recipe: Any) -> dict[str, Any]:
        section = recipe.openvino
        return {"accuracy_control": section.accuracy_control, "max_drop": section.max_drop,
                "validation_samples": section.validation_samples}  # fmt: skip

    def build(self, ctx: BuildContext, folder: Path, options: NncfOptions) -> BuildOutput:
        from edgekit.export.openvino import onnx_to_openvino
        from edgekit.quantize.calibration import calibration_feeds
        from edgekit.quantize.nncf import nncf_int8
        from edgekit.tasks import get_task

        model_type = get_task(ctx.task).nncf_model_type  # TRANSFORMER for text; None (NNCF's CNN scheme) for images
        if options.model_type != "task":
            model_type = None if options.model_type == "default" else "TRANSFORMER"
        settings: dict[str, Any] = {"tool": "nncf", "model_type": model_type or "default"}
        tuning = {"preset": options.preset, "fast_bias_correction": options.fast_bias_correction}
        settings.update(tuning)
        ignored = {"names": options.ignored_names, "patterns": options.ignored_patterns, "types": options.ignored_types}
        if any(ignored.values()):
            settings["ignored_scope"] = ignored
        settings["calibration_samples"] = len(ctx.feeds())
        validation = None
        if options.accuracy_control:
            labelled = ctx.validation(options.validation_samples)
            if labelled is None:
                raise DataError("ov-int8 with accuracy_control needs labelled data (--data with a label column).")
            texts, labels = labelled
            validation = (calibration_feeds(ctx.reference_dir, texts), labels)
            settings.update(accuracy_control=True, max_drop_points=options.max_drop, validation_rows=len(texts))
        with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
            fp32_xml = Path(scratch) / "fp32.xml"
            onnx_to_openvino(ctx.reference_onnx, fp32_xml, compress_to_fp16=False)
            nncf_int8(fp32_xml, folder / "model.xml", ctx.feeds(), validation, options.max_drop / 100, model_type,
                      **tuning, ignored=ignored)  # fmt: skip
        return BuildOutput("model.xml", settings)
