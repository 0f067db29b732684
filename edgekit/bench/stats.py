"""Summary statistics for latency samples and accuracy metrics for predictions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds; ``count`` is the number of timed runs (warm-up excluded)."""

    median: float
    p90: float
    p95: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    count: int

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> LatencyStats:
        if not samples_ms:
            raise ValueError("no latency samples to summarise")
        values = np.asarray(samples_ms, dtype=np.float64)
        p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
        return cls(
            median=float(p50),
            p90=float(p90),
            p95=float(p95),
            p99=float(p99),
            mean=float(values.mean()),
            std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            min=float(values.min()),
            max=float(values.max()),
            count=len(values),
        )

    def to_dict(self) -> dict:
        return asdict(self)
