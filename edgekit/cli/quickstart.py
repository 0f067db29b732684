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
    epochs: Annotated[
        float | None, typer.Option(min=0.1, help="Training epochs (default: 5 for text, 8 for images).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild the artifact even if it is up to date.")] = False,
    task: Annotated[
        str, typer.Option(help="text-classification (intents, MiniLM) or image-classification (digits, a small CNN).")
    ] = "text-classification",
    lang: Annotated[
        str, typer.Option(help="Text demo language: en (assistant intents) or zh (Chinese intents, bert-base-chinese).")
    ] = "en",
    base_model: Annotated[
        str | None,
        typer.Option(help="Base checkpoint folder or hub id to fine-tune instead of the language's default."),
    ] = None,
) -> None:
    """Build a real intent classifier on built-in demo data and take it through the pipeline.

    Fine-tunes all-MiniLM-L6-v2 on demo assistant commands, exports it to ONNX (parity-checked),
    quantizes it (ORT dynamic and static INT8; OpenVINO FP32 and NNCF INT8 when installed),
    gates every variant on the held-out split, benchmarks them against PyTorch FP32 and names
    the recommended one. No network needed; a second run reuses what the first one built.

    With `--task image-classification`: writes scikit-learn's bundled handwritten digits as PNGs
    (80/20 held-out split), trains a small MobileNet-like CNN on them, converts it (ONNX FP32,
    ORT static INT8; OpenVINO FP32 and NNCF INT8 when installed), gates and benchmarks every
    variant (decode and pre-processing included) and shows the same table.

    With `--lang zh`: the same pipeline on 600 Chinese smart-home and customer-service utterances
    (150 held out), fine-tuning bert-base-chinese (a hub id: without network, download it elsewhere
    and pass `--base-model DIR`).

    **Examples:** `edgekit quickstart --out /tmp/qs` ·
    `edgekit quickstart --task image-classification --out /tmp/qs-images` ·
    `edgekit quickstart --lang zh --base-model ./bert-base-chinese --out /tmp/qs-zh`
    """
    from edgekit.quickstart import DEMOS

    if lang not in DEMOS:
        raise typer.BadParameter(f"unknown language '{lang}'; choose one of: {', '.join(DEMOS)}.", param_hint="--lang")
    if task == "image-classification" and (lang != "en" or base_model):
        raise typer.BadParameter("--lang and --base-model apply to text-classification only.")
    if task == "image-classification":
        _image_quickstart(out, threads, rounds, runs, epochs, force)
        return
    if task != "text-classification":
        raise typer.BadParameter(f"unknown task '{task}'; choose text-classification or image-classification.")
    from edgekit.convert.summary import rich_table
    from edgekit.progress import ConsoleReporter
    from edgekit.quickstart import run_quickstart
    from edgekit.train.finetune import FinetuneConfig

    config = FinetuneConfig(epochs=epochs or 5.0, max_length=DEMOS[lang].max_length)
    result = run_quickstart(out, threads, rounds, runs, config, ConsoleReporter(err_console), force, lang, base_model)
    summary = result.conversion.summary
    console.print(rich_table(summary))
    console.print(rich_table(result.student.summary))
    distilled = result.student.summary.distillation
    if distilled:
        from edgekit.convert.distillation import describe_distillation

        console.print(f"Student: {describe_distillation(distilled)} (on the training utterances).")
    reference = json.loads((result.conversion.out / "onnx-fp32" / "manifest.json").read_text())["parity"]
    try_it = f"EdgeModel.load('{result.conversion.out}').predict('{DEMOS[lang].example}')"
    console.print(
        f"Parity of the ONNX FP32 artifact vs PyTorch: max |Δlogit| {reference['max_abs_diff']:.2e} "
        f"on {reference['texts']} held-out texts.\n"
        f"[bold]Recommended for the teacher: {summary.recommended}[/] — {summary.recommended_because}.\n"
        f"[bold]Recommended for the student: {result.student.summary.recommended}[/].\n"
        f"Artifacts: {result.conversion.out} and {result.student.out}\nReport:    {result.report_path}\n"
        f'Try it:    python -c "from edgekit.runtime import EdgeModel; print({try_it})"'
    )


def _image_quickstart(
    out: Path, threads: int | None, rounds: int, runs: int, epochs: float | None, force: bool
) -> None:
    from dataclasses import replace

    from edgekit.convert.summary import rich_table
    from edgekit.progress import ConsoleReporter
    from edgekit.quickstart_image import DEFAULT_FINETUNE, run_image_quickstart

    config = replace(DEFAULT_FINETUNE, epochs=epochs) if epochs else DEFAULT_FINETUNE
    result = run_image_quickstart(out, threads, rounds, runs, config, ConsoleReporter(err_console), force)
    summary = result.conversion.summary
    console.print(rich_table(summary))
    parity = json.loads((result.conversion.out / "onnx-fp32" / "manifest.json").read_text()).get("parity") or {}
    example = next(iter(sorted(result.data.test.glob("*/*.png"))), None)
    try_it = f"EdgeModel.load('{result.conversion.out}').predict('{example}')"
    console.print(
        f"Held-out digits: {result.data.test_count}; PyTorch accuracy {result.model.eval_accuracy:.4f}.\n"
        f"Parity of the ONNX FP32 artifact vs PyTorch (pre-processing included): max |Δlogit| "
        f"{parity.get('max_abs_diff', float('nan')):.2e}.\n"
        f"[bold]Recommended: {summary.recommended}[/] — {summary.recommended_because}.\n"
        f"Artifacts: {result.conversion.out}\nReport:    {result.report_path}\n"
        f'Try it:    python -c "from edgekit.runtime import EdgeModel; print({try_it})"'
    )
