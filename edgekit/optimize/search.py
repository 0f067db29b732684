"""`edgekit optimize`'s driver: plan the trials, run them through an executor within the time
budget, judge every artifact against the teacher, measure the survivors together, pick the
Pareto set and the recommendation, and write the report.

The teacher's trial always runs (it is the anchor: without it nothing can be judged). After the
budget (``budget_minutes``) no new trial starts; the others are recorded "skipped: time budget".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError, RecipeError
from edgekit.optimize.executor import Executor, make_executor
from edgekit.optimize.measure import Candidate, collect, final_benchmark, to_measure
from edgekit.optimize.pareto import Point, pareto_set, recommend
from edgekit.optimize.plan import Plan, TrialEntry
from edgekit.optimize.space import PruneChoice
from edgekit.progress import Reporter, SilentReporter


class NoVariantWithinBudget(EdgekitError):
    """The search ran, but no artifact kept the accuracy budget."""

    exit_code = 4


@dataclass
class SearchSettings:
    model: Path
    data: Path
    train_data: Path
    out: Path
    target: str = "host"
    max_accuracy_drop: float = 1.0  # accuracy points vs the teacher's onnx-fp32 on `data`
    budget_minutes: float | None = None
    depths: list[int] | None = None  # None: from the teacher's layer count
    variants: list[str] | None = None  # None: what the target runs and this machine has
    prunes: list[PruneChoice] = field(default_factory=list)  # (depth or None: all, fractions kept)
    max_train_rows: int | None = None
    epochs: float = 1.0
    early_stop: bool = True
    students_only: bool = False  # recommend a student only (the teacher is still converted: it is the anchor)
    ray: str | None = None
    threads: int | None = None
    trial_bench_runs: int = 30  # convert's own benchmark per trial (0: off); decides what is re-measured
    bench: bool = True  # the final interleaved benchmark
    bench_runs: int = 100
    bench_rounds: int = 3
    gate_samples: int | None = None
    baselines: dict[str, str] = field(default_factory=dict)  # name -> artifact made elsewhere, in the final run
    distill: dict[str, Any] = field(default_factory=dict)  # more distill fields (batch_size, learning_rate, ...)


@dataclass
class SearchResult:
    out: Path
    anchor: float
    plan: Plan
    candidates: list[Candidate]
    pareto: list[str]
    recommended: Candidate | None
    because: str
    bench: dict[str, Any] | None
    seconds: float
    reused: list[str]  # trials read back from disk instead of run

    @property
    def closest(self) -> Candidate | None:
        """With no recommendation: the gate-passing candidate that lost the least accuracy."""
        scored = [c for c in self.candidates if c.passed_gate and c.drop_points is not None]
        return min(scored, key=lambda c: (c.drop_points, c.p50_ms or float("inf")), default=None)


def run_search(settings: SearchSettings, reporter: Reporter | None = None, executor: Executor | None = None
               ) -> SearchResult:  # fmt: skip
    from edgekit.optimize.report import write_report
    from edgekit.optimize.space import check_teacher, check_variants, default_depths, default_variants, students
    from edgekit.targets.profiles import load_target

    reporter = reporter or SilentReporter()
    started = time.monotonic()
    out = _check_inputs(settings)
    layers = check_teacher(str(settings.model))
    target = load_target(settings.target)
    variants = check_variants(settings.variants, target) if settings.variants else default_variants(target)
    depths = settings.depths if settings.depths is not None else default_depths(layers)
    plan = Plan(settings, variants, students(depths, settings.prunes), out)
    names = [m.name for m in plan.models]
    reporter.note(f"optimize: teacher ({layers} layers) + students {names}; variants {', '.join(variants)}; "
                  f"budget {settings.max_accuracy_drop:g} pts on target {target.name}")  # fmt: skip
    executor = executor or make_executor(settings.ray, reporter)
    try:
        _run_trials(plan, executor, settings, started, reporter)
    finally:
        executor.close()
    teacher = plan.entries["teacher"]
    if plan.anchor is None:
        raise RecipeError(f"The teacher's trial did not give an FP32 accuracy ({teacher.reason or 'no labels?'}): "
                          "--data must be labelled dev data (text, label).")  # fmt: skip
    candidates = _collect(plan, settings)
    bench = _measure(candidates, plan, settings, target, reporter)
    result = _choose(candidates, plan, settings, bench, started)
    write_report(result, settings, target, reporter)
    return result


def _check_inputs(settings: SearchSettings) -> Path:
    from edgekit.outputs import check_parent_folder

    for flag, path in (("--data", settings.data), ("--train-data", settings.train_data)):
        if not Path(path).is_file():
            raise RecipeError(f"{flag} {path} does not exist: pass a TSV/CSV/JSONL file with text and label columns.")
    if settings.max_accuracy_drop < 0:
        raise RecipeError("--max-accuracy-drop is in accuracy points and cannot be negative (e.g. 1.0).")
    if settings.budget_minutes is not None and settings.budget_minutes < 0:
        raise RecipeError("--budget-minutes cannot be negative.")
    out = Path(settings.out).expanduser().resolve()
    check_parent_folder(out, [settings.model, settings.data, settings.train_data])  # written into, never replaced
    if out.is_dir() and any(out.iterdir()) and not ((out / "trials").is_dir() or (out / "optimize.json").is_file()):
        raise RecipeError(f"{out} exists and is not an `edgekit optimize` output folder; choose another --out.")
    return out


def _run_trials(plan: Plan, executor: Executor, settings: SearchSettings, started: float, reporter: Reporter) -> None:
    budget_s = None if settings.budget_minutes is None else settings.budget_minutes * 60
    spent = lambda: budget_s is not None and time.monotonic() - started >= budget_s  # noqa: E731
    done = 0
    while ready := plan.ready():
        if spent() and plan.anchor is not None:  # the teacher (the anchor) always runs
            break
        specs = {plan.spec_for(e).key: e for e in ready}
        for index, entry in enumerate(ready, start=done + 1):
            reporter.note(f"trial {index}/{len(plan.entries)}: {entry.name} ({_describe(entry)})")
        outcomes = executor.run([e.spec for e in ready])
        try:
            for outcome in outcomes:
                entry = specs[outcome.spec.key]
                plan.finish(entry, outcome.record, outcome.error)
                done += 1
                reporter.note(f"{entry.name}: {entry.status}{': ' + entry.reason if entry.reason else ''}"
                              f"{_wall(entry)}; best so far: {_best_so_far(plan, settings)}")  # fmt: skip
                if spent() and plan.anchor is not None:
                    break
        finally:  # start nothing more (a generator: stops a local run; Ray cancels pending tasks)
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()
        for entry in ready:
            if entry.status == "planned":
                entry.status, entry.reason = "skipped", "skipped: time budget"
    plan.skip_remaining("skipped: time budget" if spent() else "skipped: nothing to run it for")


def _wanted(plan: Plan, settings: SearchSettings) -> set[str]:
    """The variants that may be recommended: those asked for (onnx-fp32 is built anyway, as the reference)."""
    return set(settings.variants) if settings.variants else set(plan.variants)


def _collect(plan: Plan, settings: SearchSettings) -> list[Candidate]:
    found = collect(plan.records(), plan.anchor, settings.max_accuracy_drop, _wanted(plan, settings))  # type: ignore[arg-type]
    return [c for c in found if not (settings.students_only and c.model == "teacher")]


def _describe(entry: TrialEntry) -> str:
    if entry.stage == "teacher":
        return "the teacher, every variant"
    return "FP32 only" if entry.stage == "fp32" else "its other variants"


def _wall(entry: TrialEntry) -> str:
    record = entry.record
    return "" if record is None else f" ({record.wall_seconds:.0f}s{', reused' if record.reused else ''})"


def _best_so_far(plan: Plan, settings: SearchSettings) -> str:
    if plan.anchor is None:
        return "—"
    within = [c for c in _collect(plan, settings) if c.within_budget]
    if not within:
        return "none within the budget yet"
    best = min(within, key=lambda c: (c.convert_p50_ms or float("inf"), c.size_mb))
    timing = f", {best.convert_p50_ms:.2f} ms at convert time" if best.convert_p50_ms else ""
    drop = 0.0 - best.drop_points + 0.0  # type: ignore[operator]
    return f"{best.name} (accuracy {best.accuracy:.4f}, {drop:+.2f} pts, {best.size_mb:.1f} MB{timing})"


def _measure(candidates: list[Candidate], plan: Plan, settings: SearchSettings, target: Any, reporter: Reporter
             ) -> dict[str, Any] | None:  # fmt: skip
    chosen = to_measure(candidates)
    if not settings.bench or not chosen:
        for c in candidates:
            if c.p50_ms is None and c.convert_p50_ms is not None:
                c.p50_ms, c.p50_source = c.convert_p50_ms, "convert"
        return None
    teacher = plan.entries["teacher"].record
    assert teacher is not None
    reference = next(v for v in teacher.variants if v.variant == "onnx-fp32")
    max_length = _max_length(plan.out / reference.location)
    return final_benchmark(chosen, plan.out, settings, target, max_length, reporter)


def _max_length(folder: Path) -> int | None:
    from edgekit.artifact import read_manifest

    tokenizer = read_manifest(folder).tokenizer
    return tokenizer.get("max_length") if tokenizer else None


def _choose(candidates: list[Candidate], plan: Plan, settings: SearchSettings, bench: dict[str, Any] | None,
            started: float) -> SearchResult:  # fmt: skip
    timed = {c.name: c for c in candidates if c.p50_ms is not None and c.accuracy is not None and c.passed_gate}
    points = [Point(c.name, c.accuracy, c.p50_ms, c.size_mb) for c in timed.values()]  # type: ignore[arg-type]
    front = [p.name for p in pareto_set(points)]
    floor = plan.anchor - settings.max_accuracy_drop / 100  # type: ignore[operator]
    within = [p for p in points if timed[p.name].within_budget]
    best = recommend(within, floor)
    because = ""
    if best is not None:
        source = timed[best.name].p50_source
        because = (f"the fastest within {settings.max_accuracy_drop:g} pts of the teacher's FP32 accuracy "
                   f"({source} p50 {best.p50_ms:.2f} ms)")  # fmt: skip
    elif not points:  # nothing timed (benchmarks off): the smallest within the budget
        untimed = [c for c in candidates if c.within_budget]
        pick = min(untimed, key=lambda c: (c.size_mb, -(c.accuracy or 0)), default=None)
        if pick is not None:
            timed[pick.name], best = pick, Point(pick.name, pick.accuracy or 0.0, float("nan"), pick.size_mb)
            because = "not benchmarked: the smallest within the budget"
    reused = [e.name for e in plan.entries.values() if e.status == "reused"]
    return SearchResult(
        plan.out,
        plan.anchor,
        plan,
        candidates,
        front,  # type: ignore[arg-type]
        timed[best.name] if best else None,
        because,
        bench,
        time.monotonic() - started,
        reused,
    )
