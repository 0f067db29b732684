"""ONNX Runtime quantizers: dynamic INT8, static QDQ INT8 with calibration, and FP16.

Defaults come from measurements on MiniLM/SST-2 (docs/stack-findings.md and benchmarks/README.md):
per-channel weights keep agreement with FP32 at 0.95+ where per-tensor gives 0.90;
``reduce_range`` alone costs several points, so it is only used with per-channel, and only
where the ISA has no VNNI-style instructions.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgekit.errors import ExportError
from edgekit.quantize.calibration import Feed, FeedReader
from edgekit.quantize.prefix_search import LeadingFp32
from edgekit.quantize.sensitivity import AutoFp32

CalibrationMethod = Literal["minmax", "entropy", "percentile"]


@contextlib.contextmanager
def _quiet_quantizer_logs() -> Iterator[None]:
    """The quantizer logs a generic "consider pre-processing" warning through the root logger on
    every call: raise the root level to ERROR while it runs, then restore the caller's level
    (a decorator too, so ``--log-level``/``--verbose`` hold again after quantization)."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(max(before, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(before)


@dataclass(frozen=True)
class StaticTuning:
    """Knobs for sensitive layers (measured on EfficientNet-Lite0: benchmarks/quantization_cnn.py).

    ``exclude_nodes``: ONNX node names kept in FP32 (ORT's ``nodes_to_exclude``);
    ``exclude_depthwise``: every grouped Conv with one input channel per group kept in FP32;
    ``exclude_first_conv`` / ``exclude_last_matmul``: the stem convolution (it sees raw pixels) and
    the classifier (its Gemm/MatMul) kept in FP32; ``symmetric_activations``: activation ranges
    centred on zero (ORT's ``ActivationSymmetric``); ``percentile``: the percentile calibration keeps;
    ``exclude_leading_convs``: N > 0 keeps every node before the (N+1)-th Conv in FP32 (the early,
    high-resolution layers, where INT8 error starts and grows: benchmarks/imagenet_int8.py).
    """

    exclude_nodes: tuple[str, ...] = ()
    exclude_depthwise: bool = False
    exclude_first_conv: bool = False
    exclude_last_matmul: bool = False
    symmetric_activations: bool = False
    percentile: float = 99.999
    exclude_leading_convs: int = 0
    # Sensitivity-guided: the nodes whose FP32 most improves the logits, measured on the calibration
    # inputs (edgekit.quantize.sensitivity).
    auto_fp32: AutoFp32 | None = None
    # The smallest FP32 prefix that reaches a logit SQNR target (edgekit.quantize.prefix_search).
    leading_fp32: LeadingFp32 | None = None

    def __post_init__(self) -> None:
        conflict = fp32_choice_conflict(self.exclude_leading_convs, self.auto_fp32 is not None,
                                        self.leading_fp32 is not None)  # fmt: skip
        if conflict:
            raise ExportError(conflict)


def fp32_choice_conflict(exclude_leading_convs: int, auto_fp32: bool, leading_fp32: bool) -> str | None:
    """Why these ways of choosing FP32 layers cannot be combined, or None: each decides the same thing."""
    if leading_fp32 and (exclude_leading_convs or auto_fp32):
        given = "exclude_leading_convs" if exclude_leading_convs else "auto_fp32"
        return (
            f"leading_fp32 chooses how many leading convolutions stay FP32, and {given} is given too. Keep one: "
            "leading_fp32 to search for it, exclude_leading_convs to fix it, auto_fp32 for single nodes anywhere."
        )
    return None


def excluded_nodes(model_path: Path, tuning: StaticTuning) -> list[str]:
    """Node names to keep in FP32: the explicit ones plus the structural choices, read from the graph."""
    excluded = list(tuning.exclude_nodes)
    if not (tuning.exclude_depthwise or tuning.exclude_first_conv or tuning.exclude_last_matmul
            or tuning.exclude_leading_convs):  # fmt: skip
        return excluded
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    weights = {init.name: list(init.dims) for init in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    if tuning.exclude_first_conv and convs:
        excluded.append(convs[0].name)
    if tuning.exclude_depthwise:
        for node in convs:
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            shape = weights.get(node.input[1], [])
            if group > 1 and len(shape) == 4 and shape[1] == 1:  # [out, in/group = 1, kh, kw]
                excluded.append(node.name)
    if tuning.exclude_leading_convs:
        excluded += _leading_nodes(list(graph.node), tuning.exclude_leading_convs)
    if tuning.exclude_last_matmul:
        heads = [node for node in graph.node if node.op_type in ("Gemm", "MatMul")]
        excluded += [heads[-1].name] if heads else []
    return excluded


def _leading_nodes(nodes: list, count: int) -> list[str]:
    """Names of the nodes before the (count+1)-th Conv (ONNX keeps nodes in topological order)."""
    convs = [i for i, node in enumerate(nodes) if node.op_type == "Conv"]
    if count >= len(convs):
        raise ExportError(
            f"exclude_leading_convs is {count} but the graph has {len(convs)} convolutions: that would keep "
            f"the whole network in FP32. Pass a number below {len(convs)}, or build onnx-fp32 instead."
        )
    return [node.name for node in nodes[: convs[count]] if node.name]  # unnamed nodes cannot be excluded by name


@_quiet_quantizer_logs()
def quantize_dynamic_int8(
    source: Path, target: Path, per_channel: bool, reduce_range: bool, contrib_ops: bool = False
) -> None:
    """Weights to INT8 offline; activations quantized on the fly at run time. Needs no data.

    ``contrib_ops``: the graph holds ORT's fused operators (edgekit.quantize.fusion), which ONNX
    shape inference cannot type; their outputs are FP32, so the quantizer is told so.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    extra_options = {"DefaultTensorType": 1} if contrib_ops else None  # 1: onnx.TensorProto.FLOAT
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            extra_options=extra_options,
        )
    except Exception as exc:  # the quantizer raises bare Exceptions and ValueErrors
        raise ExportError(f"ONNX Runtime dynamic quantization failed: {exc}") from exc


@_quiet_quantizer_logs()
def quantize_static_int8(
    source: Path,
    target: Path,
    feeds: list[Feed],
    method: CalibrationMethod,
    op_types: list[str],
    per_channel: bool,
    reduce_range: bool,
    signed_activations: bool,
    tuning: StaticTuning | None = None,
) -> dict:
    """QDQ static INT8: activation ranges calibrated on real inputs. Returns the ``auto_fp32`` record
    (the nodes chosen and their scores; empty without that option).

    Pre-processing runs without symbolic shape inference, which fails on these graphs
    ("Incomplete symbolic shape inference"); ONNX shape inference and graph clean-up still run.
    """
    tuning = tuning or StaticTuning()
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        prepare_for_quantization(source, prepared)
        qdq = _QdqSettings(feeds, method, op_types, per_channel, reduce_range, signed_activations, tuning)
        excluded = excluded_nodes(prepared, tuning)
        if tuning.leading_fp32 is not None:
            return _quantize_with_leading_prefix(prepared, target, feeds, excluded, qdq, Path(scratch))
        if tuning.auto_fp32 is None:
            _quantize_qdq(prepared, target, excluded, qdq)
            return {}
        from edgekit.quantize.sensitivity import choose_nodes, model_logits, read_fp32_inputs, scoring_feeds, sqnr_db

        scored = scoring_feeds(feeds, tuning.auto_fp32)[1]  # refuses an empty set before any work

        def quantize(out: Path, names: list[str]) -> None:
            _quantize_qdq(prepared, out, names, qdq)

        found = choose_nodes(prepared, feeds, tuning.auto_fp32, excluded, quantize, Path(scratch))
        _quantize_qdq(prepared, target, excluded + found.chosen, qdq)
        found.rewired = read_fp32_inputs(prepared, target, found.chosen)
        found.result_sqnr_db = sqnr_db(model_logits(prepared, scored), model_logits(target, scored))
        return found.record()


def _quantize_with_leading_prefix(
    prepared: Path, target: Path, feeds: list[Feed], excluded: list[str], qdq: _QdqSettings, scratch: Path
) -> dict:
    """Static INT8 with the smallest FP32 prefix that reaches ``qdq.tuning.leading_fp32``'s SQNR target."""
    import shutil

    import onnx

    from edgekit.quantize.prefix_search import search_leading_prefix
    from edgekit.quantize.sensitivity import model_logits, scoring_feeds, sqnr_db

    nodes = list(onnx.load(str(prepared), load_external_data=False).graph.node)
    convolutions = sum(1 for node in nodes if node.op_type == "Conv")

    def built(k: int) -> Path:
        return scratch / f"prefix-{k}.onnx"

    leading = qdq.tuning.leading_fp32
    assert leading is not None
    picked, scored = scoring_feeds(feeds, leading, "leading_fp32")
    reference = model_logits(prepared, scored)

    passing: list[int] = []  # the smallest passing prefix so far: each later hit is smaller (ladder, then bisection)

    def sqnr_with_prefix(k: int) -> float:
        _quantize_qdq(prepared, built(k), excluded + (_leading_nodes(nodes, k) if k else []), qdq)
        sqnr = sqnr_db(reference, model_logits(built(k), scored))
        # Keep on disk only the graph that may ship: one INT8 copy of the model at a time, not one per try.
        for stale in passing if sqnr >= leading.target_sqnr_db else [k]:
            built(stale).unlink()
        if sqnr >= leading.target_sqnr_db:
            passing[:] = [k]
        return sqnr

    found = search_leading_prefix(leading, convolutions, picked, sqnr_with_prefix)
    shutil.copyfile(built(found.chosen), target)  # the graph that was scored, not a re-run of the quantizer
    return found.record()


def prepare_for_quantization(source: Path, target: Path) -> None:
    """ORT's quantization pre-processing: graph optimization (batch norms folded into convolutions), ONNX
    shape inference and clean-up, without symbolic shape inference, which fails on these graphs
    ("Incomplete symbolic shape inference")."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    except Exception as exc:
        raise ExportError(f"ONNX Runtime static quantization failed: {exc}") from exc


@dataclass(frozen=True)
class _QdqSettings:
    """Everything one QDQ quantization run takes besides its input, output and excluded nodes
    (the sensitivity search re-runs it with different exclusions)."""

    feeds: list[Feed]
    method: CalibrationMethod
    op_types: list[str]
    per_channel: bool
    reduce_range: bool
    signed_activations: bool
    tuning: StaticTuning


def _quantize_qdq(prepared: Path, target: Path, excluded: list[str], qdq: _QdqSettings) -> None:
    from onnxruntime.quantization import CalibrationMethod as OrtMethod
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    methods = {"minmax": OrtMethod.MinMax, "entropy": OrtMethod.Entropy, "percentile": OrtMethod.Percentile}
    try:
        quantize_static(
            str(prepared),
            str(target),
            FeedReader(qdq.feeds),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=qdq.op_types,
            per_channel=qdq.per_channel,
            reduce_range=qdq.reduce_range,
            # U8 activations suit x86 (u8*s8 instructions); Arm prefers S8S8 in QDQ.
            activation_type=QuantType.QInt8 if qdq.signed_activations else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[qdq.method],
            nodes_to_exclude=excluded,
            extra_options={
                "CalibTensorRangeSymmetric": False,
                "CalibPercentile": qdq.tuning.percentile,
                "ActivationSymmetric": qdq.tuning.symmetric_activations,
            },  # fmt: skip
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
