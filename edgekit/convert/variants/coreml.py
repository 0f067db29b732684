"""Core ML ``.mlpackage`` for iOS targets, converted from the PyTorch source (FP16, or INT8 weights).

It cannot run on Linux: the engine's ``unavailable_reason`` says so, ``convert`` builds and seals
it but skips its gate, never recommends it and leaves it out of the benchmark. Parity is checked
on a Mac (docs/mobile.md), never claimed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edgekit.convert.variants.registry import BuildContext, BuildOutput, VariantKind, VariantOptions
from edgekit.errors import RecipeError

MODEL_PACKAGE = "model.mlpackage"


class CoremlOptions(VariantOptions):
    precision: Literal["fp16", "int8"] = Field("fp16", description="int8: weight-only INT8 (coremltools.optimize)")


class CoremlVariant(VariantKind):
    name = "coreml"
    needs_source_model = True
    engine = "coreml"
    precision = "fp16"
    description = "Core ML ML program (.mlpackage), FP16 (int8 weights optional); runs on Apple devices only"
    Options = CoremlOptions

    @classmethod
    def build_modules(cls) -> tuple[str, ...]:
        return ("torch",)

    def build(self, ctx: BuildContext, folder: Path, options: CoremlOptions) -> BuildOutput:
        from edgekit.artifact import read_manifest
        from edgekit.export.coreml import CoremlPlan, export_coreml

        if ctx.source is None:
            raise RecipeError("The coreml variant converts from the PyTorch model; this build has none loaded.")
        reference = read_manifest(ctx.reference_dir)
        plan = CoremlPlan([spec.name for spec in reference.inputs], reference.tokenizer["max_length"],
                          options.precision)  # fmt: skip
        settings = export_coreml(ctx.source.model, plan, folder / MODEL_PACKAGE)
        # What an iOS app needs besides the common fields: Core ML's own input type and shape range.
        keys = ("minimum_deployment_target", "input_dtype", "batch", "sequence")
        mobile = {"format": "mlpackage", **{key: settings[key] for key in keys}}
        return BuildOutput(MODEL_PACKAGE, settings, {"mobile": mobile})
