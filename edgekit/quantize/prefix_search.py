"""How many leading layers to keep in FP32 for static INT8, chosen from the calibration data.

On CNNs the INT8 error starts in the early, high-resolution layers and is carried through the rest of the
network (EfficientNet-Lite0: docs/images.md). Keeping a *contiguous* leading part in FP32 costs one
re-quantization where the INT8 part begins, while FP32 islands scattered by ``auto_fp32`` each cost a float
kernel and a re-quantization, and were measured slower than FP32 itself. This search finds the smallest
``exclude_leading_convs`` whose INT8 graph reaches a logit SQNR target against FP32 on a seeded subset of
the calibration inputs (the scored photos or the user's test set are never looked at).

The search quantizes with 0, 1, 2, 4, 8, ... leading convolutions in FP32 until one reaches the target,
then bisects between the last miss and that hit. SQNR is not strictly monotonic in the prefix length,
so the result is the smallest passing prefix *found*, and every tried prefix is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ExportError


@dataclass(frozen=True)
class LeadingFp32:
    """``target_sqnr_db``: the logit SQNR (dB, against FP32) the INT8 graph must reach; ``samples`` calibration
    inputs scored, drawn with ``seed`` (all of them when there are fewer)."""

    target_sqnr_db: float
    samples: int = 32
    seed: int = 0


@dataclass
class PrefixSearch:
    """What the search measured; ``record()`` goes into the manifest's ``metrics.build.leading_fp32``."""

    leading: LeadingFp32
    convolutions: int
    scored_inputs: list[int]
    tried_sqnr_db: dict[int, float] = field(default_factory=dict)
    chosen: int = 0

    def record(self) -> dict[str, Any]:
        return {
            "method": "smallest FP32 prefix (leading convolutions) reaching the logit SQNR target (calibration inputs)",
            "target_sqnr_db": self.leading.target_sqnr_db,
            "samples": len(self.scored_inputs),
            "seed": self.leading.seed,
            "scored_inputs": self.scored_inputs,
            "convolutions": self.convolutions,
            "exclude_leading_convs": self.chosen,
            "result_sqnr_db": round(self.tried_sqnr_db[self.chosen], 3),
            "tried": {str(k): round(v, 3) for k, v in sorted(self.tried_sqnr_db.items())},
        }


def ladder(convolutions: int) -> list[int]:
    """0, 1, 2, 4, 8, ... below ``convolutions`` (the last rung keeps one convolution INT8)."""
    rungs, step = [0], 1
    while step < convolutions:
        rungs.append(step)
        step *= 2
    if rungs[-1] != convolutions - 1 and convolutions > 1:
        rungs.append(convolutions - 1)
    return rungs


def search_leading_prefix(
    leading: LeadingFp32, convolutions: int, scored_inputs: list[int], sqnr_with_prefix: Callable[[int], float]
) -> PrefixSearch:
    """``sqnr_with_prefix(k)``: the logit SQNR against FP32 of the INT8 graph built with ``k`` leading
    convolutions in FP32, on the calibration inputs ``scored_inputs``."""
    if convolutions < 1:
        raise ExportError(
            "leading_fp32 keeps leading convolutions in FP32, and this graph has none. Drop the option (or use "
            "auto_fp32, which works on any quantized node)."
        )
    found = PrefixSearch(leading, convolutions, scored_inputs)

    def passes(k: int) -> bool:
        if k not in found.tried_sqnr_db:
            found.tried_sqnr_db[k] = sqnr_with_prefix(k)
        return found.tried_sqnr_db[k] >= leading.target_sqnr_db

    miss = None
    for rung in ladder(convolutions):
        if passes(rung):
            hit = rung
            break
        miss = rung
    else:
        best = max(found.tried_sqnr_db.values())
        raise ExportError(
            f"leading_fp32: no prefix reaches {leading.target_sqnr_db} dB logit SQNR against FP32 (best "
            f"{best:.1f} dB; {convolutions - 1} of {convolutions} convolutions in FP32 tried). Lower "
            f"target_sqnr_db, or build onnx-fp32 for this model."
        )
    while miss is not None and hit - miss > 1:  # bisect: the smallest passing prefix between a miss and a hit
        middle = (miss + hit) // 2
        if passes(middle):
            hit = middle
        else:
            miss = middle
    found.chosen = hit
    return found
