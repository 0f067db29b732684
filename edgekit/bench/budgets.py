"""Check benchmark results against a target profile's budgets.

``edgekit bench`` exits with ``BUDGET_EXIT_CODE`` when any variant breaks a budget, so a
CI pipeline can gate on it. A budget the profile leaves out is not checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgekit.targets.profiles import Budgets

BUDGET_EXIT_CODE = 4


@dataclass(frozen=True)
class BudgetVerdict:
    variant: str
    budget: str
    limit: float
    value: float | None  # None: not measured, so not judged
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        shown = "not measured" if self.value is None else f"{self.value:.2f}"
        return f"{self.variant}: {self.budget} {shown} (limit {self.limit:g}) {'ok' if self.passed else 'OVER'}"


def check_budgets(variants: list[dict[str, Any]], budgets: Budgets, judge_latency: bool = True) -> list[BudgetVerdict]:
    """One verdict per deployable variant and budget; accuracy drop is against the first row.

    A PyTorch reference row never ships, so it is not judged. ``judge_latency=False`` (the
    host cannot stand for the device, e.g. another architecture) leaves latency unjudged.
    """
    reference = variants[0].get("accuracy") if variants else None
    verdicts = []
    for row in variants:
        if row.get("kind") == "pytorch":
            continue
        accuracy = row.get("accuracy")
        measured = {
            "p95_latency_ms": row["latency_ms"].get("p95") if judge_latency else None,
            "peak_ram_mb": row.get("peak_rss_mb"),
            "model_mb": row.get("model_size_mb"),
            "max_accuracy_drop": None if reference is None or accuracy is None else (reference - accuracy) * 100,
        }
        for budget, value in measured.items():
            limit = getattr(budgets, budget)
            if limit is None:
                continue
            passed = value is None or value <= limit
            verdicts.append(BudgetVerdict(row["name"], budget, float(limit), value, passed))
    return verdicts
