"""Choose the recommended variant of a bundle: the fastest one that passed the accuracy gate,
and say where the measurement contradicts the pre-flight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.convert.gate import GateReport
from edgekit.convert.variants import REFERENCE
from edgekit.targets.preflight import Outlook

SIMILAR_WITHIN = 0.05  # latency ratios within 5% are noise on these machines (docs/stack-findings.md)


@dataclass
class VariantRecord:
    name: str
    engine: str
    precision: str
    size_mb: float
    gate: GateReport | None  # None for the reference
    parity_passed: bool = True
    latency_ms: dict[str, float] | None = None  # p50/p90/p99 from the benchmark
    outlook: Outlook | None = None
    notes: list[str] = field(default_factory=list)
    is_source: bool = False  # the PyTorch checkpoint, timed for comparison; never recommended
    accuracy: float | None = None  # for the source row, from the benchmark harness
    # Why this machine cannot run the variant's engine (Core ML on Linux): built and sealed, but
    # never gated, timed or recommended here (EngineSpec.unavailable_reason).
    not_runnable: str | None = None

    @property
    def passed(self) -> bool:
        if self.is_source or self.not_runnable:
            return False
        return self.parity_passed and (self.gate is None or self.gate.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "engine": self.engine,
            "precision": self.precision,
            "size_mb": round(self.size_mb, 2),
            "passed": self.passed,
            "parity_passed": self.parity_passed,
            "gate": self.gate.to_dict() if self.gate else None,
            "latency_ms": self.latency_ms,
            "preflight": self.outlook.to_dict() if self.outlook else None,
            "notes": self.notes,
            "is_source": self.is_source,
            "not_runnable": self.not_runnable,
            "accuracy": self.accuracy if self.is_source else (self.gate.accuracy if self.gate else None),
        }


def choose_recommended(records: list[VariantRecord], outlooks: list[Outlook]) -> tuple[str, str]:
    """(name, why). Measured latency decides; without a benchmark, the pre-flight does."""
    passing = [r for r in records if r.passed]
    artifacts = [r for r in records if not r.is_source]
    if all(r.latency_ms for r in passing):
        quickest = min(passing, key=lambda r: r.latency_ms["median"])
        # Differences under SIMILAR_WITHIN are noise here: among those, keep the most accurate, then the smallest.
        close = [r for r in passing if r.latency_ms["median"] <= quickest.latency_ms["median"] * (1 + SIMILAR_WITHIN)]
        best = min(close, key=lambda r: (r.gate.drop_points if r.gate else 0.0, r.size_mb))
        why = f"fastest variant that passed the gate ({best.latency_ms['median']:.2f} ms p50)"
        if best is not quickest:
            more_accurate = (best.gate.drop_points if best.gate else 0.0) < (
                quickest.gate.drop_points if quickest.gate else 0.0
            )
            why = (
                f"passed the gate, within {SIMILAR_WITHIN:.0%} of the fastest ({quickest.name}, "
                f"{quickest.latency_ms['median']:.2f} vs {best.latency_ms['median']:.2f} ms p50), and "
                + ("more accurate" if more_accurate else "as accurate but smaller")
            )
        fastest = min(artifacts, key=lambda r: r.latency_ms["median"] if r.latency_ms else float("inf"))
        if not fastest.passed and fastest.latency_ms:
            why += f"; {fastest.name} was faster but failed the gate"
        return best.name, why
    expected_faster = {(o.engine, o.precision) for o in outlooks if o.verdict == "faster"}
    for record in passing:
        if (record.engine, record.precision) in expected_faster:
            return record.name, "not benchmarked: first passing variant the pre-flight expects to be faster"
    return REFERENCE, "not benchmarked, and no reduced-precision variant is expected to be faster"


def check_outlook_against_measurement(records: list[VariantRecord]) -> list[str]:
    """Where the benchmark contradicts the pre-flight, say so (the measurement wins)."""
    remarks = []
    fp32 = {r.engine: r for r in records if r.precision == "fp32" and r.latency_ms and not r.is_source}
    for record in records:
        base = fp32.get(record.engine)
        if record.outlook is None or base is None or record is base or not record.latency_ms:
            continue
        speedup = base.latency_ms["median"] / record.latency_ms["median"]
        measured = "faster" if speedup > 1 + SIMILAR_WITHIN else "slower" if speedup < 1 - SIMILAR_WITHIN else "similar"
        record.notes.append(f"measured {speedup:.2f}x vs {base.name} ({measured})")
        if record.outlook.verdict in ("faster", "slower", "similar") and measured != record.outlook.verdict:
            remarks.append(
                f"{record.name}: the pre-flight expected '{record.outlook.verdict}' vs {base.name}, "
                f"measured {speedup:.2f}x ({measured}) on this host"
            )
    return remarks
