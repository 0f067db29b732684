"""Fit how much of this host's peak an artifact achieves, from its measured batch-1 latencies.

Model: host ms(L) = overhead + compute_ms_at_peak(L) / efficiency, one point per sequence
length L, fitted by least squares (two unknowns; the profile's three lengths give three
points). The overhead (tokenization, engine dispatch: scalar code) and the efficiency are
what carry over to the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.estimate.device_model import DeviceModel, roofline_ms
from edgekit.estimate.graph_cost import GraphCost


@dataclass(frozen=True)
class HostMeasurement:
    """Median batch-1 latency per sequence length of one artifact on this host."""

    median_ms: dict[int, float]  # tokens -> ms
    device: DeviceModel  # the host at the threads it ran with
    label: str  # "this host (x86_64 Intel(R) Xeon(R) Processor, 2 threads)"


@dataclass(frozen=True)
class Calibration:
    efficiency: float  # achieved / peak arithmetic rate on the host
    overhead_ms: float
    host: DeviceModel
    residual_pct: float  # worst |fit - measured| / measured over the points, in %


def fit(measurement: HostMeasurement, cost_at: Callable[[int], GraphCost]) -> Calibration:
    lengths = sorted(measurement.median_ms)
    if not lengths:
        raise EdgekitError("Cannot calibrate: no host latency by sequence length was measured (run with shapes on).")
    measured = np.array([measurement.median_ms[n] for n in lengths])
    at_peak = np.array([roofline_ms(cost_at(n), measurement.device, 1.0) for n in lengths])
    if len(lengths) >= 2:
        design = np.stack([np.ones_like(at_peak), at_peak], axis=1)
        (overhead, slope), *_ = np.linalg.lstsq(design, measured, rcond=None)
    else:
        overhead, slope = 0.0, measured[0] / at_peak[0]
    if overhead < 0 or slope <= 0:  # noise made the fit unphysical: no overhead, one slope through the points
        overhead, slope = 0.0, float(measured @ at_peak / (at_peak @ at_peak))
    fitted = overhead + slope * at_peak
    residual = float(np.max(np.abs(fitted - measured) / measured) * 100)
    return Calibration(1.0 / float(slope), float(overhead), measurement.device, residual)


def predict_ms(calibration: Calibration, cost: GraphCost, device: DeviceModel) -> float:
    """The device's ms for ``cost``: the host's efficiency on the device's peaks, the overhead
    scaled by the clock ratio when both clocks are known (same work per cycle assumed)."""
    overhead = calibration.overhead_ms
    if calibration.host.clock_ghz and device.clock_ghz:
        overhead *= calibration.host.clock_ghz / device.clock_ghz
    return roofline_ms(cost, device, calibration.efficiency, overhead)
