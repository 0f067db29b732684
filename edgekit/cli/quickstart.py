"""`edgekit quickstart`: the demo end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.common import console, err_console, user_errors


@user_errors
def quickstart(
    out: Annotated[Path, typer.Option(help="Folder for the teacher, the artifact and the report.")] = Path(
        "edgekit-quickstart"
    ),
    threads: Annotated[int | None, typer.Option(help="Threads per variant (default: min(2, cores)).")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating benchmark rounds.")] = 3,
    runs: Annotated[int, typer.Option(min=10, help="Timed batch-1 runs per variant and round.")] = 200,
    epochs: Annotated[float, typer.Option(min=0.1, help="Fine-tuning epochs for the demo teacher.")] = 5.0,
    force: Annotated[bool, typer.Option(help="Rebuild the artifact even if it is up to date.")] = False,
) -> None:
    """Build a real intent classifier on built-in demo data and take it through the pipeline.

    Fine-tunes all-MiniLM-L6-v2 on demo assistant commands, exports it to ONNX (parity-checked),
    quantizes it (ORT dynamic and static INT8; OpenVINO FP32 and NNCF INT8 when installed),
    gates every variant on the held-out split, benchmarks them against PyTorch FP32 and names
    the recommended one. No network needed; a second run reuses what the first one built.

    **Example:** `edgekit quickstart --out /tmp/qs`
    """
    from edgekit.convert.summary import rich_table
    from edgekit.progress import ConsoleReporter
    from edgekit.quickstart import run_quickstart
    from edgekit.train.finetune import FinetuneConfig

    result = run_quickstart(
        out, threads, rounds, runs, FinetuneConfig(epochs=epochs), ConsoleReporter(err_console), force
    )
    summary = result.conversion.summary
    console.print(rich_table(summary))
    console.print(rich_table(result.student.summary))
    distilled = result.student.summary.distillation
    if distilled:
        from edgekit.convert.distillation import describe_distillation

        console.print(f"Student: {describe_distillation(distilled)} (on the training utterances).")
    reference = json.loads((result.conversion.out / "onnx-fp32" / "manifest.json").read_text())["parity"]
    try_it = f"EdgeModel.load('{result.conversion.out}').predict('turn off the lights')"
    console.print(
        f"Parity of the ONNX FP32 artifact vs PyTorch: max |Δlogit| {reference['max_abs_diff']:.2e} "
        f"on {reference['texts']} held-out texts.\n"
        f"[bold]Recommended for the teacher: {summary.recommended}[/] — {summary.recommended_because}.\n"
        f"[bold]Recommended for the student: {result.student.summary.recommended}[/].\n"
        f"Artifacts: {result.conversion.out} and {result.student.out}\nReport:    {result.report_path}\n"
        f'Try it:    python -c "from edgekit.runtime import EdgeModel; print({try_it})"'
    )
