"""`edgekit optimize`: the fastest artifact within an accuracy budget, searched over students,
precisions and engines (`convert` stays the one-model command; optimize composes it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.common import console, err_console, user_errors
from edgekit.errors import RecipeError


@user_errors
def optimize(
    model: Annotated[Path, typer.Option("--model", "-m", help="The fine-tuned HF text classifier (a folder).")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Labelled dev TSV/CSV/JSONL: gate, accuracy, benchmark.")],
    train_data: Annotated[Path, typer.Option(help="Training texts for the students (labels optional).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (trials, report, recommended/).")] = Path(
        "optimize-out"
    ),
    target: Annotated[str, typer.Option("--target", "-t", help="Target profile name or YAML path.")] = "host",
    max_accuracy_drop: Annotated[
        float, typer.Option(help="Accuracy points below the teacher's ONNX FP32 accuracy a candidate may lose.")
    ] = 1.0,
    budget_minutes: Annotated[
        float | None, typer.Option(help="Start no new trial after this many minutes (the teacher's always runs).")
    ] = None,
    depths: Annotated[
        str | None, typer.Option(help="Student layer counts, e.g. 4,3,2 (default: from the teacher's layers).")
    ] = None,
    variants: Annotated[
        str | None, typer.Option(help="Comma-separated variants (default: what the target runs and is installed).")
    ] = None,
    prune: Annotated[
        list[str] | None,
        typer.Option(
            help="Also try pruned students: fractions kept, e.g. heads=0.5,ffn=0.5, or 3:ffn=0.5 for the "
            "3-layer student only (repeatable)."
        ),
    ] = None,
    max_train_rows: Annotated[int | None, typer.Option(help="Distil on a random subset of this many rows.")] = None,
    epochs: Annotated[float, typer.Option(help="Distillation epochs per student.")] = 1.0,
    learning_rate: Annotated[float | None, typer.Option(help="Distillation learning rate (default 1e-4).")] = None,
    early_stop: Annotated[
        bool, typer.Option(help="Skip shallower students once one misses the budget in FP32.")
    ] = True,
    students_only: Annotated[
        bool, typer.Option(help="Recommend a student only (the teacher is still converted: it is the anchor).")
    ] = False,
    bench_runs: Annotated[int, typer.Option(help="Final benchmark: timed runs per round and variant.")] = 100,
    bench_rounds: Annotated[int, typer.Option(help="Final benchmark: alternating rounds.")] = 3,
    bench: Annotated[bool, typer.Option(help="Benchmark (off: recommend the smallest within the budget).")] = True,
    threads: Annotated[int | None, typer.Option(help="Benchmark threads (default: the target's).")] = None,
    ray: Annotated[
        str | None, typer.Option(help="Run trials as Ray tasks on a cluster: its ADDRESS, or `auto`.")
    ] = None,
) -> None:
    """Search the fastest artifact within an accuracy budget: the teacher and its distilled students,
    each in every variant the target runs, gated on your data, measured together on the target.

    Trials are cached in `OUT/trials/`: rerunning continues where it stopped (also after a crash).
    Writes `OUT/optimize.json`, `optimize.md`, `report.html` (Pareto plot) and `OUT/recommended/`.

    **Examples:**

    `edgekit optimize --model ./my-bert --data dev.tsv --train-data train.tsv --target x86-avx2-box`

    `edgekit optimize -m ./my-bert -d dev.tsv --train-data train.tsv --max-accuracy-drop 0.5 --budget-minutes 60`

    `edgekit optimize -m ./my-bert -d dev.tsv --train-data train.tsv --depths 4,3 --variants
    onnx-fp32,ort-int8-dynamic,ov-int8 --prune heads=0.5,ffn=0.5`

    `edgekit optimize -m ./my-bert -d dev.tsv --train-data train.tsv --depths 3,2 --prune 3:ffn=0.5 --epochs 3`

    `edgekit optimize -m ./my-bert -d dev.tsv --train-data train.tsv --ray auto`
    """
    from edgekit.optimize.search import SearchSettings, run_search
    from edgekit.optimize.space import check_teacher, parse_depths, parse_prune
    from edgekit.progress import ConsoleReporter

    _check_bench(bench_runs, bench_rounds)
    distill = _distill_overrides(learning_rate)
    settings = SearchSettings(
        model=model, data=data, train_data=train_data, out=out, target=target, max_accuracy_drop=max_accuracy_drop,
        budget_minutes=budget_minutes, variants=[v.strip() for v in variants.split(",") if v.strip()] if variants
        else None, prunes=[parse_prune(p) for p in prune or []], max_train_rows=max_train_rows, epochs=epochs,
        early_stop=early_stop, students_only=students_only, ray=ray, threads=threads, bench=bench,
        bench_runs=bench_runs, bench_rounds=bench_rounds,
        distill=distill,
    )  # fmt: skip
    if depths is not None:
        settings.depths = parse_depths(depths, check_teacher(str(model)))
    _print_outcome(run_search(settings, ConsoleReporter(err_console)), max_accuracy_drop)


def _print_outcome(result, max_accuracy_drop: float) -> None:
    from edgekit.optimize.search import NoVariantWithinBudget

    console.print(f"Wrote {result.out}/optimize.md, optimize.json and report.html "
                  f"({len(result.reused)} trial(s) reused, {result.seconds:.0f}s).")  # fmt: skip
    best = result.recommended
    if best is None:
        closest = result.closest
        near = ""
        if closest is not None and closest.drop_points is not None:
            near = f" Closest: {closest.name} ({0.0 - closest.drop_points + 0.0:+.2f} pts)."
        raise NoVariantWithinBudget(
            f"No variant kept accuracy within {max_accuracy_drop:g} points of the teacher's "
            f"{result.anchor:.4f}.{near} Raise --max-accuracy-drop, train the students longer (--epochs, "
            "--max-train-rows) or try deeper ones (--depths)."
        )
    console.print(f"[bold]Recommended: {best.name}[/] — {result.because}. Copied to {result.out}/recommended/ "
                  f"(EdgeModel.load('{result.out}/recommended')).")  # fmt: skip


def _distill_overrides(learning_rate: float | None) -> dict[str, float]:
    """The students' distill fields set on the command line, checked before the teacher trial, not after it."""
    if learning_rate is None:
        return {}
    if not learning_rate > 0:
        raise RecipeError(f"--learning-rate must be a positive number, not {learning_rate}.")
    return {"learning_rate": learning_rate}


def _check_bench(runs: int, rounds: int) -> None:
    if runs < 10 or rounds < 1:
        raise RecipeError("--bench-runs must be at least 10 and --bench-rounds at least 1.")
