"""Compare two benchmark results files and flag regressions beyond noise.

Latency noise is taken from the runs themselves: the larger of the two files' spreads
between per-round medians, and never less than ``MIN_LATENCY_TOLERANCE`` (differences
under ~10% are noise on these machines). Accuracy on the same data is deterministic, so
any drop beyond ``ACCURACY_TOLERANCE_POINTS`` counts. Memory is judged like latency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

MIN_LATENCY_TOLERANCE = 0.10
MEMORY_TOLERANCE = 0.10
ACCURACY_TOLERANCE_POINTS = 0.05
REGRESSION_EXIT_CODE = 5


@dataclass(frozen=True)
class Change:
    variant: str
    metric: str
    old: float
    new: float
    tolerance: str
    regression: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def relative(self) -> float:
        return (self.new - self.old) / self.old if self.old else 0.0


def compare_documents(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[Change], list[str]]:
    """(changes for variants present in both, remarks such as different data or hosts)."""
    remarks = []
    same_data = old["settings"].get("data") == new["settings"].get("data")
    same_cpu = old["environment"]["host"].get("cpu_model") == new["environment"]["host"].get("cpu_model")
    if not same_data:
        remarks.append(f"the data differ ({old['settings'].get('data')} vs {new['settings'].get('data')}): "
                       "accuracy changes are shown, not judged")  # fmt: skip
    if not same_cpu:
        remarks.append("the two runs are from different CPUs: latency and memory are shown, not judged")
    if old["target"] != new["target"]:
        remarks.append(f"the targets differ ({old['target']['name']} vs {new['target']['name']})")
    before = {row["name"]: row for row in old["variants"]}
    changes: list[Change] = []
    for row in new["variants"]:
        previous = before.get(row["name"])
        if previous is None:
            remarks.append(f"{row['name']} is new")
            continue
        found = _latency(previous, row) + _accuracy(previous, row) + _memory(previous, row)
        judged = {"p50 ms": same_cpu, "peak RSS MB": same_cpu, "accuracy": same_data}
        changes += [c if judged[c.metric] else replace(c, regression=False, tolerance="not judged") for c in found]
    missing = sorted(set(before) - {row["name"] for row in new["variants"]})
    remarks += [f"{name} is no longer benchmarked" for name in missing]
    return changes, remarks


def _spread(row: dict[str, Any]) -> float:
    return row.get("round_spread_pct", 0.0) / 100


def _latency(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    tolerance = max(MIN_LATENCY_TOLERANCE, _spread(old), _spread(new))
    o, n = old["latency_ms"]["median"], new["latency_ms"]["median"]
    return [Change(new["name"], "p50 ms", o, n, f"+{tolerance:.0%}", n > o * (1 + tolerance))]


def _accuracy(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    if old.get("accuracy") is None or new.get("accuracy") is None:
        return []
    o, n = old["accuracy"], new["accuracy"]
    drop = (o - n) * 100
    return [
        Change(new["name"], "accuracy", o, n, f"-{ACCURACY_TOLERANCE_POINTS} pts", drop > ACCURACY_TOLERANCE_POINTS)
    ]


def _memory(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    o, n = old.get("peak_rss_mb"), new.get("peak_rss_mb")
    if not o or not n:
        return []
    return [Change(new["name"], "peak RSS MB", o, n, f"+{MEMORY_TOLERANCE:.0%}", n > o * (1 + MEMORY_TOLERANCE))]
