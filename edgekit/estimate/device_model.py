"""Roofline time of a costed graph on a device: per (op class, precision), the slower of its
arithmetic at the achieved rate and its bytes at the memory bandwidth, plus a fixed overhead.

``efficiency`` is achieved / peak arithmetic rate, fitted on the host (``calibrate.py``) and
assumed to carry over to the device; the bandwidth term uses the datasheet peak as is, so it
is a lower bound on memory time.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.estimate.graph_cost import GraphCost


@dataclass(frozen=True)
class DeviceModel:
    """What one device (or this host at a thread count) can do, as the estimator sees it."""

    name: str
    peak_gflops: dict[str, float]  # precision -> GFLOP/s (GOP/s for int8) over the threads used
    memory_bandwidth_gbs: float | None  # None: memory time is not modelled (compute-only)
    clock_ghz: float | None = None  # scales the fixed overhead (scalar code: clock-bound)

    def peak_for(self, precision: str) -> float | None:
        # fp16 arithmetic that a CPU lacks runs as fp32 in practice; int8 without its own figure is unknown.
        return self.peak_gflops.get(precision) or (self.peak_gflops.get("fp32") if precision == "fp16" else None)


def missing_peaks(cost: GraphCost, device: DeviceModel) -> list[str]:
    """Precisions the graph computes in that the device has no peak figure for."""
    used = {op.precision for op in cost.ops if op.flops > 0}
    return sorted(p for p in used if device.peak_for(p) is None)


def roofline_ms(cost: GraphCost, device: DeviceModel, efficiency: float, overhead_ms: float = 0.0) -> float:
    """Milliseconds for one inference; ``efficiency`` in (0, 1], applied to the arithmetic peak."""
    if not efficiency > 0:
        raise ValueError(f"efficiency must be positive, got {efficiency}")
    total_s = 0.0
    for (_, precision), (flops, moved) in cost.by_class().items():
        peak = device.peak_for(precision)
        compute_s = 0.0 if flops == 0 else flops / (peak * 1e9 * efficiency) if peak else float("inf")
        memory_s = moved / (device.memory_bandwidth_gbs * 1e9) if device.memory_bandwidth_gbs else 0.0
        total_s += max(compute_s, memory_s)
    return total_s * 1e3 + overhead_ms
