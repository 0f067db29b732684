"""ExecuTorch ``.pte`` variants with the XNNPACK delegate (Android, iOS): FP32 and PT2E INT8.

Built from the PyTorch source model (not from the ONNX reference): ``torch.export`` with
dynamic batch and sequence axes, ``to_edge_transform_and_lower`` with ``XnnpackPartitioner``.
Helpers live in ``edgekit/export/executorch.py``; executorch is imported only inside ``build``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from edgekit.artifact import read_manifest
from edgekit.convert.variants.registry import BuildContext, BuildOutput, VariantKind, VariantOptions
from edgekit.errors import RecipeError

# Rows x tokens ExecuTorch's memory plan is sized for (it plans for the largest accepted shape);
# the same bound as the runtime's default max_batch_tokens, so a default predict_batch chunk fits.
_PLANNED_TOKENS = 4096
_MAX_ROWS = 32


class ExecutorchOptions(VariantOptions):
    max_batch: int | None = Field(
        None, ge=1, le=1024, description="largest batch the program accepts; None: 4096 tokens / max_length, at most 32"
    )


def _plan(ctx: BuildContext, options: ExecutorchOptions) -> Any:
    from edgekit.export.executorch import ExportPlan, positional_order

    if ctx.source is None:
        raise RecipeError(
            "ExecuTorch variants are exported from the PyTorch model, and this build has none. "
            "Convert from a Hugging Face checkpoint (a folder or hub id)."
        )
    reference = read_manifest(ctx.reference_dir)
    if not reference.tokenizer:
        raise RecipeError("ExecuTorch variants support text models only (the reference has no tokenizer).")
    max_length = int(reference.tokenizer["max_length"])
    max_batch = options.max_batch or max(1, min(_MAX_ROWS, _PLANNED_TOKENS // max_length))
    return ExportPlan(positional_order([spec.name for spec in reference.inputs]), max_length, max_batch)


def _settings(plan: Any, lowered: dict[str, Any]) -> dict[str, Any]:
    return {"delegate": "XnnpackBackend", "inputs": plan.input_names, "max_batch": plan.max_batch,
            "max_length": plan.max_length, **lowered}  # fmt: skip


class ExecutorchFp32(VariantKind):
    name = "executorch-fp32"
    needs_source_model = True
    engine = "executorch"
    precision = "fp32"
    description = "ExecuTorch .pte, XNNPACK, FP32 (Android/iOS)"
    strict_parity = True
    Options = ExecutorchOptions

    @classmethod
    def build_modules(cls) -> tuple[str, ...]:
        return ("executorch", "torch")

    def build(self, ctx: BuildContext, folder: Path, options: ExecutorchOptions) -> BuildOutput:
        from edgekit.export.executorch import lower_to_pte, wrap

        plan = _plan(ctx, options)
        lowered = lower_to_pte(wrap(ctx.source.model, plan), plan, folder / "model.pte")
        return BuildOutput("model.pte", _settings(plan, lowered))


class ExecutorchInt8Options(ExecutorchOptions):
    # dynamic: XNNPACK quantizes activations per row at run time (qd8), so a row's answer does
    # not depend on its batch (measured: 0.0 difference alone vs padded batch) and no
    # calibration data is needed; static: fixed scales from calibration on the user's data.
    mode: Literal["dynamic", "static"] = "dynamic"
    per_channel: bool = True


class ExecutorchInt8(VariantKind):
    name = "executorch-int8"
    needs_source_model = True
    engine = "executorch"
    precision = "int8"
    description = "ExecuTorch .pte, XNNPACK, PT2E INT8 (Android/iOS)"
    needs_calibration = True  # static mode calibrates; dynamic uses one feed to trace the observers
    # Both modes measured batch-invariant: static scales are fixed, dynamic ones are per row.
    batch_invariant = True
    Options = ExecutorchInt8Options

    @classmethod
    def build_modules(cls) -> tuple[str, ...]:
        return ("executorch", "torch", "torchao")

    def build(self, ctx: BuildContext, folder: Path, options: ExecutorchInt8Options) -> BuildOutput:
        from edgekit.export.executorch import lower_to_pte, quantize_pt2e, wrap

        plan = _plan(ctx, options)
        feeds = ctx.feeds()
        if not feeds:
            raise RecipeError("executorch-int8 needs calibration texts; give the recipe a data file.")
        quantized = quantize_pt2e(wrap(ctx.source.model, plan), plan, feeds, dynamic=options.mode == "dynamic",
                                  per_channel=options.per_channel)  # fmt: skip
        lowered = lower_to_pte(quantized, plan, folder / "model.pte")
        calibrated = len(feeds) if options.mode == "static" else 0
        settings = {"mode": options.mode, "per_channel": options.per_channel, "calibration_samples": calibrated}
        return BuildOutput("model.pte", {**settings, **_settings(plan, lowered)})
