"""ONNX Runtime Mobile variants: the graph in ORT format (``model.ort``), FP32 and dynamic INT8,
with the required-operators config an app team feeds to a reduced ONNX Runtime build.

The manifest's ``mobile`` field says which mobile execution providers the target wants (NNAPI,
Core ML, XNNPACK) with their options; the desktop ``onnxruntime`` wheel has none of NNAPI or
XNNPACK (nor Core ML off macOS), so here these artifacts run, and are gated and timed, on the CPU EP.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from edgekit.convert.variants.onnx import IntegerOptions, _integer_defaults
from edgekit.convert.variants.registry import BuildContext, BuildOutput, VariantKind, VariantOptions
from edgekit.targets.profiles import TargetProfile

# ONNX Runtime provider name -> (name the mobile APIs register it under, its options). Options are
# chosen to keep the gated numerics: no fp16 relaxation for NNAPI; Core ML as an ML program on all
# compute units, taking dynamic shapes (a text model's inputs are dynamic, so "static only" takes nothing).
_COREML = {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL", "RequireStaticInputShapes": "0"}
MOBILE_PROVIDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "NnapiExecutionProvider": ("NNAPI", {"flags": ["NNAPI_FLAG_CPU_DISABLED"]}),
    "CoreMLExecutionProvider": ("CoreML", {**_COREML, "EnableOnSubgraphs": "0"}),
    "XnnpackExecutionProvider": ("XNNPACK", {"intra_op_num_threads": None}),  # None: the target's threads
}
COMPILING = {"NNAPI", "CoreML"}  # EPs that take a subgraph whole: ORT advises the Runtime optimisation style
CPU_CAVEAT = (
    "the desktop onnxruntime wheel has no NNAPI/XNNPACK provider (and Core ML only on macOS); "
    "figures measured here are CPU EP figures"
)


def mobile_providers(target: TargetProfile) -> list[dict[str, Any]]:
    """The mobile EPs the target's ONNX Runtime entry lists, in its order, with their options."""
    chosen: list[dict[str, Any]] = []
    for choice in (c for c in target.engines if c.engine == "onnxruntime"):
        for provider in choice.providers or []:
            if provider in MOBILE_PROVIDERS and all(p["provider"] != provider for p in chosen):
                name, options = MOBILE_PROVIDERS[provider]
                options = {k: str(target.threads) if v is None else v for k, v in options.items()}
                entry: dict[str, Any] = {"name": name, "provider": provider, "options": options}
                if name == "XNNPACK":  # XNNPACK has its own thread pool: ORT's must not spin beside it
                    entry["session_options"] = {"intra_op_num_threads": 1, "session.intra_op.allow_spinning": "0"}
                chosen.append(entry)
    return chosen


class MobileOptions(VariantOptions):
    optimization_style: Literal["fixed", "runtime"] | None = Field(
        None, description="None: runtime when the target wants NNAPI or Core ML, else fixed"
    )


class MobileIntegerOptions(IntegerOptions, MobileOptions):
    pass


class _OrtMobile(VariantKind):
    engine = "onnxruntime"
    Options: Any = MobileOptions

    def _convert(self, ctx: BuildContext, folder: Path, onnx_file: Path, options: Any,
                 settings: dict[str, Any]) -> BuildOutput:  # fmt: skip
        from edgekit.export.ort_format import onnx_to_ort, reduced_build_command

        providers = mobile_providers(ctx.target)
        style = options.optimization_style or ("runtime" if COMPILING & {p["name"] for p in providers} else "fixed")
        platform = "arm" if ctx.target.arch != "x86_64" else "amd64"
        files = onnx_to_ort(onnx_file, folder, style, platform)
        apple = any(p["name"] == "CoreML" for p in providers) or ctx.target.name.startswith(("iphone", "ipad"))
        mobile = {
            "format": "ort",
            "required_operators": files["config"],
            "optimization_style": style,
            "execution_providers": providers,
            "reduced_build": reduced_build_command("ios" if apple else "android"),
        }
        if style == "runtime":  # saved optimisations replay only with this session option (trusted models)
            mobile["session_options"] = {"session.enable_saved_runtime_optimizations": "1"}
        settings = {**settings, "format": "ort", "optimization_style": style, "target_platform": platform,
                    "execution_providers": [p["name"] for p in providers]}  # fmt: skip
        return BuildOutput(files["model"], settings, {"mobile": mobile, "notes": [CPU_CAVEAT]})


class OrtMobileFp32(_OrtMobile):
    name = "ort-mobile-fp32"
    precision = "fp32"
    description = "ONNX Runtime Mobile (.ort), FP32, with its reduced-build operator config"

    def build(self, ctx: BuildContext, folder: Path, options: MobileOptions) -> BuildOutput:
        return self._convert(ctx, folder, ctx.reference_onnx, options, {"converted_from": "onnx"})


class OrtMobileInt8(_OrtMobile):
    name = "ort-mobile-int8"
    precision = "int8"
    description = "ONNX Runtime Mobile (.ort), dynamic INT8"
    # Dynamic activation scales span the padded batch (as ort-int8-dynamic): run row by row.
    batch_invariant = False
    Options = MobileIntegerOptions

    def recipe_defaults(self, recipe: Any) -> dict[str, Any]:
        return _integer_defaults(recipe)

    def build(self, ctx: BuildContext, folder: Path, options: MobileIntegerOptions) -> BuildOutput:
        from edgekit.quantize.ort import quantize_dynamic_int8

        per_channel, reduce_range = ctx.per_channel(options.per_channel), ctx.reduce_range(options.reduce_range)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".ort-int8-") as scratch:
            quantized = Path(scratch) / "model.onnx"  # an intermediate: never in the artifact
            quantize_dynamic_int8(ctx.reference_onnx, quantized, per_channel, reduce_range)
            settings = {"quantization": "dynamic", "per_channel": per_channel, "reduce_range": reduce_range}
            return self._convert(ctx, folder, quantized, options, settings)
