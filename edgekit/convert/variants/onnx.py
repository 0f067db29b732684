"""ONNX variants run by ONNX Runtime: the FP32 reference, dynamic and static INT8, FP16."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from edgekit.convert.variants.registry import REFERENCE, BuildContext, BuildOutput, VariantKind, VariantOptions
from edgekit.errors import RecipeError


class OnnxFp32(VariantKind):
    """The exported graph itself: every other variant is built from it and gated against it."""

    name = REFERENCE
    engine = "onnxruntime"
    precision = "fp32"
    description = "ONNX export, FP32 (the reference)"
    strict_parity = True
    quickstart_roles = ("teacher", "student")


class IntegerOptions(VariantOptions):
    per_channel: bool | None = Field(None, description="None: the target profile's choice")
    reduce_range: bool | None = Field(None, description="None: the target profile's choice")


class DynamicOptions(IntegerOptions):
    # Offline transformer fusion, then QAttention (edgekit.quantize.fusion); measured per ISA class.
    fuse: bool | None = Field(None, description="fuse attention/layer norm/GELU before quantizing; "
                              "None: the measured choice for the target's ISA")  # fmt: skip


def _integer_defaults(recipe: Any) -> dict[str, Any]:
    section = recipe.quantization
    return {"per_channel": section.per_channel, "reduce_range": section.reduce_range}


class OrtInt8Dynamic(VariantKind):
    name = "ort-int8-dynamic"
    engine = "onnxruntime"
    precision = "int8"
    description = "ORT dynamic INT8"
    # Activation scales are computed at run time over the whole (padded) batch, so a row's
    # score moved by up to 0.17 with its batch-mates: the runtime runs it row by row.
    batch_invariant = False
    quickstart_roles = ("teacher", "student")
    Options = DynamicOptions

    def recipe_defaults(self, recipe: Any) -> dict[str, Any]:
        return _integer_defaults(recipe)

    def build(self, ctx: BuildContext, folder: Path, options: DynamicOptions) -> BuildOutput:
        from edgekit.quantize.fusion import dynamic_int8
        from edgekit.targets.preflight import fusion_default

        per_channel, reduce_range = ctx.per_channel(options.per_channel), ctx.reduce_range(options.reduce_range)
        choice = fusion_default(ctx.target.arch, ctx.target.isa_features, ctx.task)
        fuse = choice.fuse if options.fuse is None else options.fuse
        fusion = dynamic_int8(ctx.reference_dir, folder / "model.onnx", per_channel, reduce_range, fuse,
                              required=options.fuse is True)  # fmt: skip
        why = {"fuse_choice": choice.reason} if options.fuse is None else {}
        return BuildOutput("model.onnx", {"per_channel": per_channel, "reduce_range": reduce_range, **fusion, **why})


class AutoFp32Options(VariantOptions):
    max_nodes: int = Field(ge=1, description="at most this many quantized nodes kept in FP32, the most damaging")
    samples: int = Field(32, ge=1, description="calibration inputs the logit error is measured on")
    seed: int = Field(0, ge=0, description="draws the scored calibration inputs")
    rounds: int = Field(1, ge=1, le=64, description="greedy rounds: re-score after each round's picks")


class LeadingFp32Options(VariantOptions):
    target_sqnr_db: float = Field(gt=0, le=100, description="logit SQNR against FP32 the INT8 graph must reach")
    samples: int = Field(32, ge=1, description="calibration inputs the SQNR is measured on")
    seed: int = Field(0, ge=0, description="draws the scored calibration inputs")


class QatOptions(VariantOptions):
    epochs: float = Field(8.0, gt=0, le=100, description="passes over the calibration inputs")
    learning_rate: float = Field(1e-5, gt=0, le=0.1)
    batch_size: int = Field(16, ge=1, le=256)
    flip: bool = Field(True, description="also fine-tune on each input mirrored left-right")
    max_samples: int = Field(256, ge=1, le=4096, description="calibration inputs used at most (bounds memory)")
    seed: int = Field(0, ge=0)


class StaticOptions(IntegerOptions):
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    # The recipe's task sets the default (recipe_defaults): MatMul for transformers, every operator for CNNs.
    op_types: list[str] = Field(default_factory=lambda: ["MatMul"], min_length=1)
    # Sensitive layers kept in FP32 and activation range choices (edgekit.quantize.ort.StaticTuning).
    exclude_nodes: list[str] = Field(default_factory=list, description="ONNX node names kept in FP32")
    exclude_depthwise: bool = Field(False, description="keep depthwise convolutions in FP32")
    exclude_first_conv: bool = Field(False, description="keep the stem convolution in FP32")
    exclude_last_matmul: bool = Field(False, description="keep the classifier (last Gemm/MatMul) in FP32")
    symmetric_activations: bool = Field(False, description="activation ranges symmetric around zero")
    percentile: float = Field(99.999, gt=90, le=100, description="kept by calibration_method percentile")
    exclude_leading_convs: int = Field(0, ge=0, description="keep every node before the (N+1)-th Conv in FP32")
    # Sensitivity-guided mixed precision (edgekit.quantize.sensitivity).
    auto_fp32: AutoFp32Options | None = Field(None, description="keep the nodes whose FP32 most improves the logits")
    leading_fp32: LeadingFp32Options | None = Field(
        None, description="keep the fewest leading convolutions in FP32 that reach a logit SQNR target"
    )
    bias_correction: bool = Field(
        False, description="shift each INT8 convolution's bias so its mean output matches FP32 on the calibration data"
    )
    # Quantization-aware fine-tuning of the PyTorch model first (edgekit.quantize.qat): image classifiers.
    qat: QatOptions | None = Field(None, description="fine-tune the weights under simulated INT8 to match FP32")

    @model_validator(mode="after")
    def _one_way_to_choose_fp32_layers(self) -> StaticOptions:
        from edgekit.quantize.ort import fp32_choice_conflict

        conflict = fp32_choice_conflict(self.exclude_leading_convs, self.auto_fp32 is not None,
                                        self.leading_fp32 is not None)  # fmt: skip
        if conflict:
            raise ValueError(conflict)
        return self


class OrtInt8Static(VariantKind):
    name = "ort-int8-static"
    engine = "onnxruntime"
    precision = "int8"
    description = "ORT static INT8 (QDQ)"
    needs_calibration = True
    quickstart_roles = ("teacher",)
    Options = StaticOptions

    def recipe_defaults(self, recipe: Any) -> dict[str, Any]:
        section = recipe.quantization
        from edgekit.tasks import get_task  # the operator set suits the model family: measured per task

        op_types = section.static_op_types or list(get_task(recipe.task).static_op_types)
        return {**_integer_defaults(recipe), "calibration_method": section.calibration.method,
                "op_types": op_types}  # fmt: skip

    def build(self, ctx: BuildContext, folder: Path, options: StaticOptions) -> BuildOutput:
        from edgekit.quantize.ort import StaticTuning, quantize_static_int8
        from edgekit.quantize.prefix_search import LeadingFp32
        from edgekit.quantize.sensitivity import AutoFp32

        per_channel, reduce_range = ctx.per_channel(options.per_channel), ctx.reduce_range(options.reduce_range)
        signed = ctx.target.arch != "x86_64"  # u8 activations suit x86's VNNI/AVX2 kernels, s8 ARM's
        auto = AutoFp32(**options.auto_fp32.model_dump()) if options.auto_fp32 else None
        leading = LeadingFp32(**options.leading_fp32.model_dump()) if options.leading_fp32 else None
        tuning = StaticTuning(tuple(options.exclude_nodes), options.exclude_depthwise, options.exclude_first_conv,
                              options.exclude_last_matmul, options.symmetric_activations,
                              options.percentile, exclude_leading_convs=options.exclude_leading_convs,
                              auto_fp32=auto, leading_fp32=leading)  # fmt: skip
        with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
            source, qat = ctx.reference_onnx, None
            if options.qat is not None:
                source = Path(scratch) / "qat-fp32.onnx"
                qat = _fine_tune_for_int8(ctx, options, tuning, per_channel, reduce_range, signed, source)
            chosen = quantize_static_int8(source, folder / "model.onnx", ctx.feeds(), options.calibration_method,
                                          options.op_types, per_channel, reduce_range, signed_activations=signed,
                                          tuning=tuning)  # fmt: skip
        settings = {
            "format": "QDQ",
            "calibration_method": options.calibration_method,
            "calibration_samples": len(ctx.feeds()),
            "op_types": options.op_types,
            "per_channel": per_channel,
            "reduce_range": reduce_range,
            "activations": "int8" if signed else "uint8",
            **{k: v for k, v in options.model_dump().items() if k.startswith(("exclude_", "symmetric_"))},
        }
        if options.calibration_method == "percentile":
            settings["percentile"] = options.percentile
        if chosen:  # what the search kept in FP32 (auto_fp32: nodes and gains; leading_fp32: prefix and SQNRs)
            settings["leading_fp32" if leading else "auto_fp32"] = chosen
        if qat is not None:
            settings["qat"] = qat
        if options.bias_correction:
            from edgekit.quantize.bias_correction import correct_conv_biases

            settings["bias_correction"] = correct_conv_biases(ctx.reference_onnx, folder / "model.onnx", ctx.feeds())
        return BuildOutput("model.onnx", settings)


def _fine_tune_for_int8(ctx: BuildContext, options: StaticOptions, tuning: Any, per_channel: bool,
                        reduce_range: bool, signed: bool, target: Path) -> dict[str, Any]:  # fmt: skip
    """Quantization-aware fine-tuning of the source model; writes the fine-tuned FP32 graph to ``target``."""
    from edgekit.quantize.ort import excluded_nodes, prepare_for_quantization
    from edgekit.quantize.qat import QatSettings, quantization_aware_finetune
    from edgekit.quantize.qdq_simulation import QuantScheme

    if ctx.task != "image-classification" or ctx.source is None:
        raise RecipeError(
            "The `qat` option of ort-int8-static fine-tunes the PyTorch model of an image classifier, and this "
            f"build has {'none' if ctx.source is None else 'a ' + ctx.task + ' model'}. Convert from the "
            "PyTorch module or checkpoint (not an ONNX file), or drop `qat`."
        )
    assert options.qat is not None
    prepared = target.with_name("prepared.onnx")
    prepare_for_quantization(ctx.reference_onnx, prepared)
    scheme = QuantScheme(per_channel, reduce_range, signed, options.symmetric_activations)
    fp32_nodes = set(excluded_nodes(prepared, tuning))
    settings = QatSettings(**options.qat.model_dump())
    return quantization_aware_finetune(ctx.source.model, prepared, target, ctx.feeds(), fp32_nodes, scheme, settings)


class Fp16Options(VariantOptions):
    keep_io_types: bool = Field(True, description="keep float32 inputs and outputs (apps feed and read fp32)")


class OnnxFp16(VariantKind):
    name = "onnx-fp16"
    engine = "onnxruntime"
    precision = "fp16"
    description = "ONNX FP16 (GPU/NPU providers)"
    Options = Fp16Options

    def build(self, ctx: BuildContext, folder: Path, options: Fp16Options) -> BuildOutput:
        from edgekit.quantize.ort import convert_fp16

        convert_fp16(ctx.reference_onnx, folder / "model.onnx", keep_io_types=options.keep_io_types)
        return BuildOutput("model.onnx", {"keep_io_types": options.keep_io_types})
