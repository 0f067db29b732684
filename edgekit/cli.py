"""The ``edgekit`` command line: one sub-command per verb.

Heavy libraries (torch, transformers, optimum) are imported inside the commands that
need them, so ``edgekit bench`` and ``edgekit targets`` work with the runtime install only.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from edgekit.errors import EdgekitError, RecipeError

app = typer.Typer(
    name="edgekit",
    help="Take a fine-tuned model to an edge device and prove how fast and accurate it is there.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)
targets_app = typer.Typer(help="Inspect device target profiles (targets/*.yaml).", no_args_is_help=True)


def _print_version(value: bool) -> None:
    if value:
        from edgekit import __version__

        print(f"edgekit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Take a fine-tuned model to an edge device and prove how fast and accurate it is there."""


app.add_typer(targets_app, name="targets")

# Wide enough for the result tables when the output is a pipe or a CI log (rich's default is 80).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
F = TypeVar("F", bound=Callable)


def user_errors(func: F) -> F:
    """Print an EdgekitError as one clear message (no traceback) and exit non-zero."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except EdgekitError as exc:
            # escape: messages hold literal brackets (pip install 'edgekit[serve]'), not rich markup
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


@app.command()
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
    from edgekit.bundle import rich_table
    from edgekit.finetune import FinetuneConfig
    from edgekit.progress import ConsoleReporter
    from edgekit.quickstart import run_quickstart

    result = run_quickstart(
        out, threads, rounds, runs, FinetuneConfig(epochs=epochs), ConsoleReporter(err_console), force
    )
    summary = result.conversion.summary
    console.print(rich_table(summary))
    console.print(rich_table(result.student.summary))
    distilled = result.student.summary["distillation"]
    if distilled:
        from edgekit.pipeline import describe_distillation

        console.print(f"Student: {describe_distillation(distilled)} (on the training utterances).")
    reference = json.loads((result.conversion.out / "onnx-fp32" / "manifest.json").read_text())["parity"]
    try_it = f"EdgeModel.load('{result.conversion.out}').predict('turn off the lights')"
    console.print(
        f"Parity of the ONNX FP32 artifact vs PyTorch: max |Δlogit| {reference['max_abs_diff']:.2e} "
        f"on {reference['texts']} held-out texts.\n"
        f"[bold]Recommended for the teacher: {summary['recommended']}[/] — {summary['recommended_because']}.\n"
        f"[bold]Recommended for the student: {result.student.summary['recommended']}[/].\n"
        f"Artifacts: {result.conversion.out} and {result.student.out}\nReport:    {result.report_path}\n"
        f'Try it:    python -c "from edgekit.runtime import EdgeModel; print({try_it})"'
    )


@app.command()
@user_errors
def convert(
    recipe: Annotated[Path | None, typer.Argument(help="Recipe YAML; flags below override its fields.")] = None,
    model: Annotated[str | None, typer.Option(help="HF checkpoint directory or hub id.")] = None,
    task: Annotated[str | None, typer.Option(help="Task (text-classification).")] = None,
    out: Annotated[Path | None, typer.Option(help="Artifact folder to write.")] = None,
    target: Annotated[str | None, typer.Option(help="Target profile name or YAML path.")] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="TSV/CSV/JSONL (text, label): inputs for parity, calibration and the accuracy gate."),
    ] = None,
    exporter: Annotated[str | None, typer.Option(help="optimum (default) or dynamo.")] = None,
    atol: Annotated[float | None, typer.Option(help="Max abs logit difference allowed (default 1e-4).")] = None,
    max_length: Annotated[int | None, typer.Option(help="Truncation length for the runtime.")] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision (branch, tag, commit).")] = None,
    variants: Annotated[
        str | None, typer.Option(help="Comma-separated variants to build, gate and benchmark (listed above).")
    ] = None,
    quantize: Annotated[
        str | None, typer.Option(help="Shorthand: dynamic, static or none (adds ort-int8-dynamic/-static).")
    ] = None,
    calibration_method: Annotated[str | None, typer.Option(help="minmax, entropy or percentile.")] = None,
    calibration_samples: Annotated[int | None, typer.Option(help="Calibration texts (default 100).")] = None,
    max_accuracy_drop: Annotated[
        float | None, typer.Option(help="Accuracy points a variant may lose (default: target budget, else 1.0).")
    ] = None,
    bench: Annotated[bool, typer.Option(help="Benchmark the variants to pick the recommended one.")] = True,
    distill_layers: Annotated[
        str | None, typer.Option(help="Distil first: a layer count (e.g. 3) or teacher layers (e.g. 0,2,4).")
    ] = None,
    distill_data: Annotated[
        Path | None, typer.Option(help="Training texts for distillation (labels optional).")
    ] = None,
    distill_epochs: Annotated[float | None, typer.Option(help="Distillation epochs (default 1).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted distillation from its checkpoint.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even if the artifact is up to date.")] = False,
) -> None:
    """Convert a fine-tuned model into an artifact: ONNX export, parity gate, manifest.

    With several variants the output folder holds one artifact per variant, each gated on
    your data against the FP32 reference and benchmarked on the target; `summary.md` names
    the recommended one (the fastest that passed). Variants: onnx-fp32, ort-int8-dynamic,
    ort-int8-static, onnx-fp16, ov-fp32, ov-fp16, ov-int8.

    **Examples:**

    `edgekit convert recipe.yaml`

    `edgekit convert --model ./my-bert --task text-classification --out artifacts/my-bert --data dev.tsv`

    `edgekit convert --model ./my-bert --out artifacts/my-bert --data dev.tsv --quantize dynamic`

    `edgekit convert --model ./my-bert --out artifacts/my-bert --data dev.tsv --target x86-avx2-box
    --variants onnx-fp32,ort-int8-dynamic,ort-int8-static,ov-fp32,ov-int8`

    `edgekit convert --model ./my-bert --out artifacts/student --data dev.tsv --distill-layers 3
    --distill-data train.tsv --quantize dynamic`
    """
    from edgekit.pipeline import convert as run_convert
    from edgekit.progress import ConsoleReporter
    from edgekit.recipe import build_recipe, load_recipe

    fields: dict = load_recipe(recipe).model_dump(exclude_unset=True) if recipe else {}
    overrides = {"model": model, "task": task, "out": out, "target": target, "revision": revision}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    if data is not None:  # keep the recipe's column names and format; only the file changes
        fields["data"] = {**(fields.get("data") or {}), "path": data}
    if exporter is not None or max_length is not None:
        fields["export"] = {**fields.get("export", {}), **_given(exporter=exporter, max_length=max_length)}
    if atol is not None:
        fields["parity"] = {**fields.get("parity", {}), "atol": atol}
    _apply_variant_flags(fields, variants, quantize)
    calibration = _given(method=calibration_method, samples=calibration_samples)
    if calibration:
        quantization = fields.setdefault("quantization", {})
        quantization["calibration"] = {**quantization.get("calibration", {}), **calibration}
    if max_accuracy_drop is not None:
        fields["gate"] = {**fields.get("gate", {}), "max_accuracy_drop": max_accuracy_drop}
    if not bench:
        fields["bench"] = {**fields.get("bench", {}), "enabled": False}
    _apply_distill_flags(fields, distill_layers, distill_data, distill_epochs)
    if "model" not in fields:
        raise RecipeError("Say which model to convert: pass a recipe file or --model PATH_OR_HUB_ID.")
    recipe_ = build_recipe(fields, origin="The conversion settings")
    result = run_convert(recipe_, ConsoleReporter(err_console), force, resume)
    manifest = result.manifest
    verb = "Reused" if result.reused else "Wrote"
    if result.summary is None:
        console.print(
            f"{verb} {result.artifact_dir} ({manifest.engine}, {manifest.precision}, "
            f"{len(manifest.labels)} labels); parity max |Δlogit| {manifest.parity['max_abs_diff']:.2e}."
        )
        _print_pin(result.artifact_dir)
        return
    from edgekit.bundle import rich_table

    summary = result.summary
    console.print(rich_table(summary))
    rejected = [v["name"] for v in summary["variants"] if not v["passed"] and not v["is_source"]]
    if rejected:
        console.print(
            f"[bold red]Rejected by the accuracy gate:[/] {', '.join(rejected)} "
            f"(kept under {result.out}/rejected/ for inspection; do not deploy them)."
        )
    console.print(
        f"{verb} {result.out}. [bold]Recommended: {summary['recommended']}[/] — {summary['recommended_because']}.\n"
        f"Load it with EdgeModel.load('{result.out}') or use {result.artifact_dir}. Details: {result.out}/summary.md"
    )
    _print_pin(result.artifact_dir)


def _print_pin(artifact_dir: Path) -> None:
    """The manifest's sha256: an app that pins it loads exactly this artifact and nothing else."""
    from edgekit.artifact import MANIFEST_NAME, sha256_file

    digest = sha256_file(artifact_dir / MANIFEST_NAME)
    console.print(f"Pin it in an app: EdgeModel.load(..., manifest_sha256='{digest}')")


def _given(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _apply_distill_flags(fields: dict, layers: str | None, data: Path | None, epochs: float | None) -> None:
    if layers is None and data is None and epochs is None:
        return
    spec = dict(fields.get("distill") or {})
    if layers is not None:
        try:
            numbers = [int(part) for part in layers.split(",")]
        except ValueError:
            raise RecipeError(
                f"--distill-layers takes a count (3) or teacher layers (0,2,4), not '{layers}'."
            ) from None
        spec["student_layers"] = numbers if "," in layers else numbers[0]
    if data is not None:
        spec["data"] = {"path": data}
    if epochs is not None:
        spec["epochs"] = epochs
    if "data" not in spec:
        raise RecipeError("Distillation needs training texts: pass --distill-data FILE.")
    fields["distill"] = spec


def _apply_variant_flags(fields: dict, variants: str | None, quantize: str | None) -> None:
    if variants is not None:
        fields["variants"] = [name.strip() for name in variants.split(",") if name.strip()]
    if quantize is None:
        return
    shorthand = {"dynamic": "ort-int8-dynamic", "static": "ort-int8-static", "none": None}
    if quantize not in shorthand:
        raise RecipeError(f"--quantize takes dynamic, static or none, not '{quantize}'.")
    chosen = list(fields.get("variants", ["onnx-fp32"]))
    if shorthand[quantize] and shorthand[quantize] not in chosen:
        chosen.append(shorthand[quantize])
    fields["variants"] = chosen


@app.command()
@user_errors
def distill(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML with a `distill:` section.")],
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
) -> None:
    """Run only the distillation stage of a recipe: teacher → student checkpoint.

    Use it to train on several GPUs or machines (Hugging Face Trainer handles the
    distribution); a later `edgekit convert` of the same recipe reuses the student.

    **Examples:**

    `edgekit distill recipe.yaml`

    `torchrun --nproc_per_node 4 -m edgekit distill recipe.yaml`

    `accelerate launch -m edgekit distill recipe.yaml --resume`
    """
    from edgekit.pipeline import distill_source, read_data_spec
    from edgekit.progress import ConsoleReporter
    from edgekit.recipe import load_recipe
    from edgekit.sources import load_text_classifier

    spec = load_recipe(recipe)
    if spec.distill is None or spec.out is None:
        raise RecipeError(f"{recipe} needs a `distill:` section and an `out:` folder to distil.")
    data = read_data_spec(spec.data) if spec.data is not None else None
    teacher = load_text_classifier(spec.model, spec.revision, spec.trust_remote_code)
    student, record = distill_source(teacher, spec, data, Path(spec.out), ConsoleReporter(err_console), resume)
    console.print(f"Student: {student.info['path']}")


@app.command()
@user_errors
def bench(
    artifacts: Annotated[list[Path], typer.Argument(help="Artifact folders, or multi-variant output folders.")],
    data: Annotated[Path | None, typer.Option(help="TSV/CSV/JSONL: inputs (and labels for accuracy).")] = None,
    pytorch: Annotated[
        Path | None, typer.Option(help="Also time this HF checkpoint in PyTorch fp32, as the reference.")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads (default: the target's).")] = None,
    target: Annotated[str, typer.Option(help="Target profile name or YAML path.")] = "host",
    runs: Annotated[int, typer.Option(min=10, help="Timed batch-1 runs per variant and round.")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up runs.")] = 20,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds (each variant in its own process).")] = 1,
    out: Annotated[Path, typer.Option(help="Results JSON to write.")] = Path("bench-results.json"),
    report: Annotated[Path | None, typer.Option(help="Also write a Markdown report here.")] = None,
    html_report: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with plots here.")
    ] = None,
    budgets: Annotated[
        bool, typer.Option(help="Exit with code 4 when a result breaks one of the target's budgets.")
    ] = True,
    shapes: Annotated[
        bool, typer.Option(help="Also time the target's sequence lengths (batch 1) and batch sizes above 1.")
    ] = True,
    remote: Annotated[
        str | None,
        typer.Option(help="Run on this device over SSH (user@host, an ~/.ssh/config alias, or ssh://user@host:port)."),
    ] = None,
    remote_edgekit: Annotated[
        str, typer.Option(help="How to start edgekit on the remote device, e.g. ~/venv/bin/edgekit.")
    ] = "edgekit",
    ssh_option: Annotated[
        list[str] | None, typer.Option(help="Extra ssh -o option for --remote (repeatable), e.g. Port=2222.")
    ] = None,
    keep_remote: Annotated[bool, typer.Option(help="Keep the work folder on the remote device.")] = False,
    on_device: Annotated[
        bool, typer.Option(help="This machine is the target: measure without emulation (set by --remote).")
    ] = False,
) -> None:
    """Time artifacts at batch 1 on real inputs (tokenization included) and measure accuracy.

    Each variant runs in its own process; with several, they alternate over `--rounds`.
    A multi-variant folder from `edgekit convert` stands for all the variants that passed its gate.
    Results are checked against the target's budgets (exit code 4 when one is broken).
    `edgekit bench compare OLD.json NEW.json` flags regressions beyond the runs' own noise
    (exit code 5 when there is one).

    **Examples:**

    `edgekit bench artifacts/my-bert --data dev.tsv --threads 2`

    `edgekit bench artifacts/a artifacts/b --pytorch ./my-bert --data dev.tsv --rounds 3 --report report.md
    --html report.html`

    `edgekit bench artifacts/my-bert --data dev.tsv --target raspberry-pi-5`

    `edgekit bench artifacts/my-bert --data dev.tsv --target raspberry-pi-5 --remote pi@raspberrypi.local
    --remote-edgekit "~/edgekit-venv/bin/edgekit"`

    `edgekit bench compare yesterday.json today.json`
    """
    from edgekit.bench.report import markdown, rich_table
    from edgekit.bench.results import write_results
    from edgekit.bench.session import benchmark_artifacts

    if artifacts and str(artifacts[0]) == "compare":
        _compare(artifacts[1:])
        return

    if remote and pytorch is not None:
        raise RecipeError(
            "--pytorch cannot be used with --remote: the device runs edgekit[runtime], without torch. "
            "Time the PyTorch reference with a separate local `edgekit bench --pytorch` run."
        )
    with err_console.status("benchmarking…") as status:
        if remote:
            from edgekit.bench.remote import RemoteBenchOptions, RemoteHost, benchmark_remote

            host = RemoteHost(remote, remote_edgekit, tuple(ssh_option or []), keep_remote)
            options = RemoteBenchOptions(target, threads, runs, warmup, rounds, shapes)
            document = benchmark_remote(host, artifacts, data, options, on_progress=status.update)
        else:
            document = benchmark_artifacts(
                artifacts, data, pytorch, target, threads, runs, warmup, rounds, shapes, on_device, status.update
            )
    write_results(document, out)
    console.print(rich_table(document))
    console.print(f"Results: {out}")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(markdown(document), encoding="utf-8")
        console.print(f"Report:  {report}")
    if html_report is not None:
        from edgekit.bench.html import render_html

        html_report.parent.mkdir(parents=True, exist_ok=True)
        html_report.write_text(render_html(document), encoding="utf-8")
        console.print(f"HTML:    {html_report}")
    broken = [v for v in document["budgets"] if not v["passed"]]
    for verdict in document["budgets"]:
        mark = "[green]ok[/]" if verdict["passed"] else "[bold red]OVER[/]"
        value = "not measured" if verdict["value"] is None else f"{verdict['value']:.2f}"
        if verdict["budget"] == "fits_memory_cap_mb":
            value = "did not fit"
        console.print(
            f"budget {verdict['budget']} for {verdict['variant']}: {value} (limit {verdict['limit']:g}) {mark}"
        )
    if broken and budgets:
        from edgekit.bench.budgets import BUDGET_EXIT_CODE

        err_console.print(f"[bold red]{len(broken)} budget(s) broken on {document['target']['name']}.[/]")
        raise typer.Exit(BUDGET_EXIT_CODE)


def _compare(paths: list[Path]) -> None:
    from rich.table import Table

    from edgekit.bench.compare import REGRESSION_EXIT_CODE, compare_documents
    from edgekit.bench.results import read_results

    if len(paths) != 2:
        raise RecipeError("edgekit bench compare takes two results files: OLD.json NEW.json")
    changes, remarks = compare_documents(read_results(paths[0]), read_results(paths[1]))
    table = Table("variant", "metric", "old", "new", "change", "tolerance", "verdict", title="edgekit bench compare")
    for change in changes:
        verdict = "[bold red]REGRESSION[/]" if change.regression else "ok"
        table.add_row(change.variant, change.metric, f"{change.old:.4g}", f"{change.new:.4g}",
                      f"{change.relative:+.1%}", change.tolerance, verdict)  # fmt: skip
    console.print(table)
    for remark in remarks:
        console.print(f"note: {remark}")
    if any(change.regression for change in changes):
        raise typer.Exit(REGRESSION_EXIT_CODE)


@targets_app.command("list")
@user_errors
def targets_list() -> None:
    """List the known target profiles.

    **Example:** `edgekit targets list`
    """
    from rich.table import Table

    from edgekit.targets import list_targets, load_target

    table = Table("name", "device", "class", "arch", "cores", "RAM MB", "engines")
    for name in list_targets():
        t = load_target(name)
        engines = ", ".join(e.engine + (f"/{e.device}" if e.device else "") for e in t.engines)
        table.add_row(name, t.display_name, t.device_class, t.arch, str(t.cores), str(t.ram_mb), engines)
    console.print(table)


@targets_app.command("show")
@user_errors
def targets_show(
    name: Annotated[str, typer.Argument(help="Profile name (see `edgekit targets list`) or YAML path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the validated profile as JSON.")] = False,
) -> None:
    """Show one target profile, validated (host facts filled from this machine).

    **Example:** `edgekit targets show raspberry-pi-5`
    """
    import yaml

    from edgekit.targets import load_target

    profile = load_target(name).model_dump(mode="json")
    if as_json:
        console.print_json(json.dumps(profile))
    else:
        console.print(yaml.safe_dump(profile, sort_keys=False, allow_unicode=True), highlight=False)


@app.command()
@user_errors
def serve(
    artifact: Annotated[Path, typer.Argument(help="Artifact folder, or a multi-variant folder (its recommended one).")],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one, logged at start).")] = 8000,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Threads per inference (default: the artifact's target's).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Inferences that run at once.")] = 1,
    queue_size: Annotated[int, typer.Option(min=0, help="Requests that may wait for a worker; beyond: 503.")] = 16,
    max_texts: Annotated[int, typer.Option(min=1, help="Texts per request.")] = 64,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Characters per text.")] = 10_000,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Request body size.")] = 1_048_576,
    max_connections: Annotated[
        int, typer.Option(min=1, help="Open connections; beyond: 503. At least workers + queue-size + 4.")
    ] = 64,
    access_log: Annotated[bool, typer.Option(help="Log one line per request.")] = False,
) -> None:
    """Serve an artifact over HTTP: `POST /v1/predict`, `GET /v1/health`, `GET /v1/model` (JSON).

    Inference runs on `--workers` threads; when they are busy and `--queue-size` requests already
    wait, the next one gets 503 with Retry-After (any request gets a plain 503 while
    `--max-connections` connections are open). Oversized or malformed requests get a 4xx with a message. SIGTERM or
    Ctrl+C finishes the requests in flight and exits 0. Needs the `serve` extra:
    `pip install 'edgekit[serve]'`. API: docs/runtime.md.

    **Examples:**

    `edgekit serve artifacts/my-bert`

    `edgekit serve artifacts/my-bert --host 0.0.0.0 --port 8080 --threads 2 --workers 2 --queue-size 32`

    `curl -s localhost:8000/v1/predict -d '{"texts": ["turn off the lights", "play some jazz"]}'`
    """
    from edgekit.serve import ServeLimits, serve_artifact

    limits = ServeLimits(workers, queue_size, max_texts, max_text_chars, max_body_bytes, max_connections)
    serve_artifact(artifact, host, port, threads, limits, access_log)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
