"""Budgets and run-to-run comparison on synthetic results (no timing is asserted)."""

import copy

from edgekit.bench.budgets import check_budgets
from edgekit.bench.compare import compare_documents
from edgekit.targets.profiles import Budgets


def _row(name, median, accuracy=0.9, rss=200.0, size=20.0, spread=5.0, p95=None):
    return {"name": name, "latency_ms": {"median": median, "p95": p95 or median * 1.3}, "accuracy": accuracy,
            "peak_rss_mb": rss, "model_size_mb": size, "round_spread_pct": spread}  # fmt: skip


def _document(rows, data="dev.tsv", cpu="EPYC"):
    return {"settings": {"data": data}, "environment": {"host": {"cpu_model": cpu}},
            "target": {"name": "host", "mode": "measured-on-device"}, "variants": rows}  # fmt: skip


def test_budget_verdicts():
    rows = [_row("fp32", 3.0, accuracy=0.90, size=87), _row("int8", 1.0, accuracy=0.885, size=22, rss=900)]
    verdicts = check_budgets(rows, Budgets(p95_latency_ms=2.0, peak_ram_mb=512, model_mb=50, max_accuracy_drop=1.0))
    failed = {(v.variant, v.budget) for v in verdicts if not v.passed}
    assert failed == {("fp32", "p95_latency_ms"), ("fp32", "model_mb"), ("int8", "peak_ram_mb"),
                      ("int8", "max_accuracy_drop")}  # fmt: skip
    assert check_budgets(rows, Budgets()) == [], "a budget the profile leaves out is not checked"
    with_torch = [{**_row("torch", 9.0, rss=900), "kind": "pytorch"}, *rows]
    assert all(v.variant != "torch" for v in check_budgets(with_torch, Budgets(peak_ram_mb=512)))
    unjudged = check_budgets(rows, Budgets(p95_latency_ms=0.1), judge_latency=False)
    assert [v.value for v in unjudged] == [None, None] and all(v.passed for v in unjudged)
    drop = next(v for v in verdicts if v.variant == "int8" and v.budget == "max_accuracy_drop")
    assert abs(drop.value - 1.5) < 1e-9 and "OVER" in drop.describe()


def test_compare_flags_a_planted_regression_and_ignores_noise():
    old = _document([_row("a", 2.0), _row("b", 1.0), _row("gone", 1.0)])
    new = copy.deepcopy(old)
    new["variants"] = [_row("a", 2.1), _row("b", 1.5, accuracy=0.88, rss=260), _row("fresh", 1.0)]
    changes, remarks = compare_documents(old, new)
    regressions = {(c.variant, c.metric) for c in changes if c.regression}
    assert regressions == {("b", "p50 ms"), ("b", "accuracy"), ("b", "peak RSS MB")}
    assert "fresh is new" in remarks and "gone is no longer benchmarked" in remarks


def test_compare_uses_the_runs_own_spread_as_noise():
    old = _document([_row("a", 2.0, spread=40.0)])
    new = _document([_row("a", 2.6, spread=5.0)])  # +30%, inside the 40% the old run itself varied by
    changes, _ = compare_documents(old, new)
    assert not any(c.regression for c in changes)
    changes, remarks = compare_documents(old, _document([_row("a", 9.0, accuracy=0.5)], data="other.tsv", cpu="Xeon"))
    assert any("data differ" in r for r in remarks) and any("different CPUs" in r for r in remarks)
    assert not any(c.regression for c in changes), "different CPUs and data: shown, not judged"
