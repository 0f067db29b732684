"""Sensitivity-guided mixed precision for ORT static INT8: which quantized nodes to keep in FP32.

Chosen from the calibration data only. The all-INT8 QDQ graph is built once; then, for every node
the quantizer quantized, a copy of that graph feeds the node FP32 again (its INT8 kernel's two
roundings undone: the float weight and bias of the reference instead of the INT8 ones, and its
activation inputs before their QuantizeLinear, clipped to the calibrated range), and the logits of a
seeded subset of the calibration inputs are compared with the FP32 model's. A node's score is the gain
in the logits' signal-to-quantization-noise ratio (ONNX Runtime's own
``qdq_loss_debug.compute_signal_to_quantization_noice_ratio``, in dB) when it alone is kept FP32; the
``max_nodes`` highest positive gains are kept in FP32, and the graph is quantized again with ORT's
``nodes_to_exclude`` (same calibration, same ranges). Every graph is run as the runtime runs it (ORT,
full graph optimisation), and the result's own SQNR is measured and recorded.

Why the output logits and not ORT's per-tensor activation matching
(``collect_activations`` + ``create_activation_matching`` + ``compute_activation_error``): those
hold every intermediate tensor of every input in memory (EfficientNet-Lite0 at 224 px: tens of
MB per input and model), and a tensor's SQNR says how noisy it is, not how much that noise
moves the prediction: on EfficientNet-Lite0 the early, high-resolution layers matter most because
their rounding is carried through the whole network (docs/images.md), which only the logits show.
Each candidate is scored by the graph ONNX Runtime really runs (QDQ pairs fused into integer
kernels), so the score includes weight and activation rounding and their propagation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ExportError
from edgekit.quantize.prefix_search import LeadingFp32

Feed = dict[str, np.ndarray]
_WEIGHT_SUFFIX = "_quantized"  # ORT's TENSOR_NAME_QUANT_SUFFIX: the INT8 copy of initializer W is W_quantized
_FP32_SUFFIX = "_sensitivity_fp32"  # the float copy a candidate reads while it is scored
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class AutoFp32:
    """``max_nodes``: how many nodes at most to keep in FP32; ``samples``: calibration inputs scored
    (a subset drawn with ``seed``; all of them when there are fewer); ``rounds``: greedy rounds, each
    re-scoring the remaining nodes with the ones chosen so far already FP32 (their effects interact)."""

    max_nodes: int
    samples: int = 32
    seed: int = 0
    rounds: int = 1


@dataclass
class Sensitivity:
    """What the search measured; ``record()`` goes into the manifest's ``metrics.build``."""

    auto: AutoFp32
    candidates: int
    scored_inputs: list[int]
    baseline_sqnr_db: float
    gains_db: dict[str, float]  # node name -> logit SQNR gain when it alone is kept FP32
    op_types: dict[str, str]
    chosen: list[str] = field(default_factory=list)
    result_sqnr_db: float | None = None
    rewired: int = 0  # chosen nodes whose dequantized activation input was replaced by the FP32 one
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per greedy round: its SQNR before, its picks

    def record(self) -> dict[str, Any]:
        ranked = sorted(self.gains_db.items(), key=lambda item: -item[1])
        return {
            "method": "logit SQNR gain with each quantized node kept FP32 alone (calibration inputs)",
            "max_nodes": self.auto.max_nodes,
            "samples": len(self.scored_inputs),
            "seed": self.auto.seed,
            "scored_inputs": self.scored_inputs,
            "candidates": self.candidates,
            "positive_candidates": sum(1 for gain in self.gains_db.values() if gain > 0),
            "all_int8_sqnr_db": round(self.baseline_sqnr_db, 3),
            "result_sqnr_db": None if self.result_sqnr_db is None else round(self.result_sqnr_db, 3),
            "fp32_inputs_rewired": self.rewired,
            "chosen": [
                {"node": n, "op_type": self.op_types[n], "gain_db": round(self.gains_db[n], 3)} for n in self.chosen
            ],
            "next_best": [{"node": n, "gain_db": round(g, 3)} for n, g in ranked if n not in self.chosen][:5],
            "rounds": self.rounds,
        }


def scoring_feeds(
    feeds: list[Feed], auto: AutoFp32 | LeadingFp32, option: str = "auto_fp32"
) -> tuple[list[int], list[Feed]]:
    """A seeded subset (``auto.samples``, drawn with ``auto.seed``) of the calibration inputs, in their original
    order (all when there are few)."""
    if not feeds:
        raise ExportError(f"{option} needs calibration inputs to measure the INT8 error; the calibration set is empty.")
    if auto.samples >= len(feeds):
        picked = list(range(len(feeds)))
    else:
        picked = sorted(int(i) for i in np.random.default_rng(auto.seed).choice(len(feeds), auto.samples, False))
    return picked, [feeds[i] for i in picked]


def sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """ONNX Runtime's SQNR (20·log10 ‖reference‖ / ‖reference - other‖), the quantization debugger's own."""
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

    return float(compute_signal_to_quantization_noice_ratio(reference, other))


def model_logits(model: Path | bytes, feeds: list[Feed]) -> np.ndarray:
    """The first output for every feed, stacked, with ORT's full graph optimisation (QDQ → integer kernels)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the QDQ graphs warn about nothing the user can act on
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    output = session.get_outputs()[0].name
    return np.concatenate([np.asarray(session.run([output], feed)[0], dtype=np.float32) for feed in feeds])


def quantized_nodes(qdq_graph: Any, excluded: list[str]) -> list[Any]:
    """Named nodes that read at least one input through a DequantizeLinear (what the quantizer quantized)."""
    dequantized = {node.output[0] for node in qdq_graph.node if node.op_type == "DequantizeLinear"}
    skip = set(excluded)
    return [node for node in qdq_graph.node if node.name and node.name not in skip
            and node.op_type not in _QDQ_OPS and any(name in dequantized for name in node.input)]  # fmt: skip


def float_inputs(node: Any, qdq_graph: Any, float_weights: dict[str, Any]) -> tuple[list[str], list[Any], list[Any]]:
    """The node's inputs in FP32 again: new input names, and the initializers and nodes that needs.

    DequantizeLinear(W_quantized) becomes the reference's float W (under a fresh name: ORT may name a
    bias's DequantizeLinear output after the float one). DequantizeLinear(QuantizeLinear(x)) becomes x
    clipped to the range the pair represents: ORT's quantizer drops a Relu/Clip whose range that
    QuantizeLinear already clips to, so x itself may lack its activation.
    """
    from onnx import helper, numpy_helper

    producers = {out: producer for producer in qdq_graph.node for out in producer.output}
    values = {init.name: init for init in qdq_graph.initializer}
    inputs, needed, nodes = list(node.input), [], []
    for i, name in enumerate(inputs):
        dequantize = producers.get(name)
        if dequantize is None or dequantize.op_type != "DequantizeLinear":
            continue
        source, fresh = dequantize.input[0], f"{name}{_FP32_SUFFIX}"
        if fresh in producers or fresh in values:  # an earlier FP32 node made this copy already: share it
            inputs[i] = fresh
            continue
        quantize = producers.get(source)
        if quantize is not None and quantize.op_type == "QuantizeLinear" and len(quantize.input) == 3:
            scale = numpy_helper.to_array(values[quantize.input[1]]).astype(np.float32)
            zero = numpy_helper.to_array(values[quantize.input[2]])
            limits, offset = np.iinfo(zero.dtype), zero.astype(np.float32)
            bounds = ((np.float32(limits.min) - offset) * scale, (np.float32(limits.max) - offset) * scale)
            needed += [numpy_helper.from_array(b.reshape(()).astype(np.float32), f"{fresh}_{k}")
                       for k, b in zip(("low", "high"), bounds, strict=True)]  # fmt: skip
            nodes.append(helper.make_node("Clip", [quantize.input[0], f"{fresh}_low", f"{fresh}_high"], [fresh],
                                          name=fresh))  # fmt: skip
            inputs[i] = fresh
        elif source.endswith(_WEIGHT_SUFFIX) and source[: -len(_WEIGHT_SUFFIX)] in float_weights:
            weight = type(float_weights[source[: -len(_WEIGHT_SUFFIX)]])()
            weight.CopyFrom(float_weights[source[: -len(_WEIGHT_SUFFIX)]])
            weight.name = inputs[i] = fresh
            needed.append(weight)
    return inputs, needed, nodes


def with_node_in_fp32(qdq_model: Any, node: Any, float_weights: dict[str, Any]) -> bytes:
    """The serialized QDQ model with ``node`` reading FP32 inputs; the model itself is left unchanged."""
    graph = qdq_model.graph
    inputs, needed, clips = float_inputs(node, graph, float_weights)
    original = list(node.input)
    del node.input[:]
    node.input.extend(inputs)
    graph.initializer.extend(needed)
    graph.node.extend(clips)  # ONNX Runtime orders the graph itself when it loads it
    try:
        return qdq_model.SerializeToString()
    finally:  # restore: every candidate starts from the same all-INT8 graph
        del node.input[:]
        node.input.extend(original)
        if needed:
            del graph.initializer[-len(needed) :]
        if clips:
            del graph.node[-len(clips) :]


def read_fp32_inputs(float_model: Path, qdq_model: Path, names: list[str]) -> int:
    """Rewrite ``qdq_model`` so the named nodes read FP32 inputs, as they were scored; returns how many changed.

    ``nodes_to_exclude`` leaves a node's activation input dequantized when its producer is INT8, and ONNX
    Runtime's ``WeightBiasQuantization`` pass then re-quantizes a float Conv/Gemm that sits between a
    DequantizeLinear and a QuantizeLinear (per-tensor INT8 weights) when the session loads: a node kept
    FP32 in the file would run INT8, and worse than before. Reading the activation before its
    QuantizeLinear (clipped to the same range) keeps it FP32 when it runs.
    """
    import onnx

    model = onnx.load(str(qdq_model))
    float_weights = {init.name: init for init in onnx.load(str(float_model)).graph.initializer}
    chosen, ordered, changed, made = set(names), [], 0, set()
    for node in model.graph.node:
        if node.name in chosen:
            inputs, needed, clips = float_inputs(node, model.graph, float_weights)
            changed += inputs != list(node.input)
            del node.input[:]
            node.input.extend(inputs)
            # Two chosen nodes reading one tensor share its FP32 copy (names are derived from the tensor's).
            model.graph.initializer.extend(init for init in needed if init.name not in made)
            ordered += [clip for clip in clips if clip.name not in made]  # before their reader: topological order
            made |= {init.name for init in needed} | {clip.name for clip in clips}
        ordered.append(node)
    model.graph.ClearField("node")
    model.graph.node.extend(ordered)
    onnx.save(model, str(qdq_model))
    return changed


def choose_nodes(
    float_model: Path,
    feeds: list[Feed],
    auto: AutoFp32,
    excluded: list[str],
    quantize: Callable[[Path, list[str]], None],
    scratch: Path,
) -> Sensitivity:
    """``auto.rounds`` greedy rounds: quantize with the nodes chosen so far in FP32 (``quantize(out, excluded)``),
    score the rest, take the best ``max_nodes / rounds`` with a positive gain; stop early when none has one."""
    chosen: list[str] = []
    found, rounds, gains, op_types = None, [], {}, {}
    per_round = -(-auto.max_nodes // auto.rounds)
    for number in range(auto.rounds):
        base = scratch / f"sensitivity-round-{number}.onnx"
        quantize(base, excluded + chosen)
        read_fp32_inputs(float_model, base, chosen)
        take = min(per_round, auto.max_nodes - len(chosen))
        step = rank_nodes(float_model, base, feeds, auto, excluded + chosen, take, check=number == 0)
        found = found or step
        gains.update({n: step.gains_db[n] for n in step.chosen})
        op_types.update(step.op_types)
        rounds.append({"sqnr_db": round(step.baseline_sqnr_db, 3), "chosen": len(step.chosen)})
        chosen += step.chosen
        if len(step.chosen) < take or len(chosen) >= auto.max_nodes:
            break
    assert found is not None  # auto.rounds >= 1
    found.gains_db = {**step.gains_db, **gains}  # the last round's scores, and each chosen node's own round's
    found.op_types, found.chosen, found.rounds = op_types, chosen, rounds
    return found


def rank_nodes(
    float_model: Path, qdq_model: Path, feeds: list[Feed], auto: AutoFp32, excluded: list[str], take: int,
    check: bool = True,
) -> Sensitivity:  # fmt: skip
    """Score every quantized node of ``qdq_model`` (built from ``float_model``); the ``take`` best are chosen."""
    import onnx

    picked, scored = scoring_feeds(feeds, auto)
    reference = model_logits(float_model, scored)
    qdq = onnx.load(str(qdq_model))
    candidates = quantized_nodes(qdq.graph, excluded)
    if check and auto.max_nodes >= len(candidates):
        raise ExportError(
            f"auto_fp32.max_nodes is {auto.max_nodes} but only {len(candidates)} nodes are quantized: that would "
            f"keep the whole network in FP32. Pass a number below {len(candidates)}, or build onnx-fp32 instead."
        )
    float_weights = {init.name: init for init in onnx.load(str(float_model)).graph.initializer}
    baseline = sqnr_db(reference, model_logits(qdq_model, scored))
    gains = {node.name: sqnr_db(reference, model_logits(with_node_in_fp32(qdq, node, float_weights), scored))
             - baseline for node in candidates}  # fmt: skip
    ranked = sorted(candidates, key=lambda node: -gains[node.name])  # stable: ties keep graph order
    chosen = [node.name for node in ranked[:take] if gains[node.name] > 0]
    return Sensitivity(auto, len(candidates), picked, baseline, gains, {n.name: n.op_type for n in candidates},
                       chosen)  # fmt: skip
