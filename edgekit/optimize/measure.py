"""The candidates the trials produced, judged against the teacher's accuracy, and the final
benchmark: every candidate that passed its gate and is not far slower than the best, with the
PyTorch FP32 teacher, in ONE interleaved run (rounds alternate variants, each in its own process),
so their latencies are comparable. Convert-time latencies only decide what is worth re-measuring."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgekit.optimize.trials import TrialRecord

FAR_SLOWER = 3.0  # a convert-time p50 above 3x the best is not re-measured
PYTORCH_ROW = "pytorch-fp32-teacher"


@dataclass
class Candidate:
    name: str  # "<model>-<variant>": unique in the search
    model: str
    variant: str
    engine: str
    precision: str
    accuracy: float | None
    drop_points: float | None  # vs the teacher's onnx-fp32 accuracy (positive: lost)
    passed_gate: bool
    size_mb: float
    convert_p50_ms: float | None
    location: str  # relative to the search's output folder
    within_budget: bool
    status: str  # why it is (not) a candidate, in words
    p50_ms: float | None = None
    p90_ms: float | None = None
    p50_source: str | None = None  # "final" (the interleaved run) or "convert" (convert's own, noisier)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(records: list[TrialRecord], anchor: float, budget: float, wanted: set[str]) -> list[Candidate]:
    """Every artifact of every trial, once: a student's full trial supersedes its FP32-only look.
    onnx-fp32 is always built (the reference) but is a candidate only when ``wanted`` lists it."""
    found: dict[str, Candidate] = {}
    for record in sorted(records, key=lambda r: r.stage == "variants"):  # full trials last: they win
        for v in (v for v in record.variants if v.variant in wanted):
            drop = None if v.accuracy is None else (anchor - v.accuracy) * 100
            within = v.passed and drop is not None and drop <= budget + 1e-9
            if not v.passed:
                status = "rejected by its gate (vs its own FP32)"
            elif drop is None:
                status = "no accuracy (unlabelled data)"
            else:
                status = "within budget" if within else f"over budget ({0.0 - drop + 0.0:+.2f} pts)"
            name = f"{record.model}-{v.variant}"
            found[name] = Candidate(name, record.model, v.variant, v.engine, v.precision, v.accuracy, drop, v.passed,
                                    v.size_mb, v.convert_p50_ms, v.location, within, status)  # fmt: skip
    return list(found.values())


def to_measure(candidates: list[Candidate]) -> list[Candidate]:
    """Gate-passing candidates, less those far slower than the fastest within budget at convert time."""
    timed = [c.convert_p50_ms for c in candidates if c.within_budget and c.convert_p50_ms]
    best = min(timed, default=None)
    chosen = []
    for c in candidates:
        if not c.passed_gate:
            continue
        if best is not None and c.convert_p50_ms is not None and c.convert_p50_ms > FAR_SLOWER * best:
            c.status += f"; not re-measured: far slower ({c.convert_p50_ms:.2f} ms vs {best:.2f} ms at convert time)"
            c.p50_ms, c.p50_source = c.convert_p50_ms, "convert"
            continue
        chosen.append(c)
    return chosen


def final_benchmark(candidates: list[Candidate], out: Path, settings: Any, target: Any, teacher_max_length: int | None,
                    reporter: Any) -> dict[str, Any] | None:  # fmt: skip
    """Time the chosen candidates and the PyTorch teacher together; fill in their p50. Returns the
    run's settings and the PyTorch row (None when nothing was measured)."""
    from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
    from edgekit.data import read_text_dataset
    from edgekit.targets.emulation import target_run

    run = target_run(target, settings.threads)
    bench = BenchSettings(threads=run.threads, runs=settings.bench_runs, warmup=min(20, settings.bench_runs),
                          rounds=settings.bench_rounds, cpu_affinity=run.cpu_affinity,
                          memory_cap_mb=run.memory_cap_mb)  # fmt: skip
    variants = [Variant(PYTORCH_ROW, "pytorch", Path(settings.model), max_length=teacher_max_length)]
    variants += [Variant(c.name, "artifact", out / c.location, run.env_for(c.engine)) for c in candidates]
    baselines = dict(settings.baselines)  # artifacts made elsewhere, timed for comparison, never candidates
    variants += [Variant(name, "artifact", Path(folder)) for name, folder in baselines.items()]
    data = read_text_dataset(Path(settings.data))
    misfits: dict[str, str] = {}
    title = (f"Final benchmark: {len(variants)} variants, {bench.rounds} rounds x {bench.runs} runs, "
             f"{run.threads} threads")  # fmt: skip
    with reporter.stage(title):
        summaries = run_benchmark(variants, data, bench, on_progress=reporter.note,
                                  on_misfit=lambda name, why: misfits.__setitem__(name, why))  # fmt: skip
    by_name = {s["name"]: s for s in summaries}
    for c in candidates:
        summary = by_name.get(c.name)
        if summary is None:
            c.status += f"; did not fit the target's memory: {misfits.get(c.name, 'not measured')}"
            continue
        c.p50_ms, c.p90_ms, c.p50_source = summary["latency_ms"]["median"], summary["latency_ms"]["p90"], "final"
    pytorch = by_name.get(PYTORCH_ROW)
    measured = {name: by_name[name] for name in baselines if name in by_name}
    return {
        "threads": run.threads, "runs": bench.runs, "rounds": bench.rounds, "mode": run.description,
        "rows": len(data.texts),
        "pytorch_teacher": None if pytorch is None else {
            "p50_ms": pytorch["latency_ms"]["median"], "p90_ms": pytorch["latency_ms"]["p90"],
            "accuracy": pytorch.get("accuracy"), "size_mb": pytorch.get("model_size_mb")},
        "baselines": {name: {"p50_ms": row["latency_ms"]["median"], "p90_ms": row["latency_ms"]["p90"],
                             "accuracy": row.get("accuracy"), "size_mb": row.get("model_size_mb")}
                      for name, row in measured.items()},
    }  # fmt: skip
