"""`edgekit bench`: time artifacts on a target; `edgekit bench compare`: two results files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from edgekit.cli.bench_progress import BenchMode, progress_bar
from edgekit.cli.common import console, err_console, user_errors
from edgekit.cli.common import settings as cli_settings
from edgekit.cli.knobs import ConfigOption, ProviderOption
from edgekit.errors import RecipeError


class _RunByDefault(TyperGroup):
    """``edgekit bench ARTIFACT…`` runs the benchmark (the ``run`` sub-command, implied), while
    ``edgekit bench compare OLD NEW`` is a sub-command of its own that ``--help`` lists."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    cls=_RunByDefault,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Time artifacts on a target (`edgekit bench ARTIFACT…`, short for `edgekit bench run`), "
    "or compare two results files (`edgekit bench compare OLD NEW`).",
)


@bench_app.command("run", context_settings={"auto_envvar_prefix": "EDGEKIT_BENCH"})
@user_errors
def bench(
    artifacts: Annotated[list[Path], typer.Argument(help="Artifact folders, or multi-variant output folders.")],
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="TSV/CSV/JSONL: inputs (and labels for accuracy).")
    ] = None,
    pytorch: Annotated[
        Path | None, typer.Option(help="Also time this HF checkpoint in PyTorch fp32, as the reference.")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads (default: the target's).")] = None,
    target: Annotated[str, typer.Option("--target", "-t", help="Target profile name or YAML path.")] = "host",
    runs: Annotated[int, typer.Option(min=10, help="Timed batch-1 runs per variant and round.")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up runs.")] = 20,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds (each variant in its own process).")] = 1,
    out: Annotated[Path, typer.Option("--out", "-o", help="Results JSON to write.")] = Path("bench-results.json"),
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
    provider: ProviderOption = None,
    mode: Annotated[
        BenchMode, typer.Option(help="latency: one request at a time; throughput: --concurrency at once.")
    ] = BenchMode.latency,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Throughput mode: requests in flight at once (threads).")
    ] = 4,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results JSON to stdout (and nothing else there).")
    ] = False,
    config: ConfigOption = None,
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

    `edgekit bench artifacts/my-bert -d dev.tsv --mode throughput --concurrency 4 --json > results.json`

    `edgekit bench artifacts/ov-int8 -d dev.tsv --provider openvino:GPU` (or `-e cuda` for ORT's CUDA provider)

    `EDGEKIT_BENCH_RUNS=500 edgekit bench artifacts/my-bert --config bench.yaml`

    `edgekit bench compare yesterday.json today.json`
    """
    from edgekit.bench.providers import parse_providers
    from edgekit.bench.report import markdown, rich_estimates, rich_table
    from edgekit.bench.results import write_results
    from edgekit.bench.session import benchmark_artifacts

    if remote and pytorch is not None:
        raise RecipeError(
            "--pytorch cannot be used with --remote: the device runs edgekit[runtime], without torch. "
            "Time the PyTorch reference with a separate local `edgekit bench --pytorch` run."
        )
    chosen = parse_providers(provider)
    if remote and (chosen or mode is not BenchMode.latency):
        raise RecipeError("--provider and --mode throughput are not passed to a --remote device yet; run there.")
    with progress_bar(quiet=cli_settings["quiet"]) as (status, on_step):
        if remote:
            from edgekit.bench.remote import RemoteBenchOptions, RemoteHost, benchmark_remote

            host = RemoteHost(remote, remote_edgekit, tuple(ssh_option or []), keep_remote)
            options = RemoteBenchOptions(target, threads, runs, warmup, rounds, shapes)
            document = benchmark_remote(host, artifacts, data, options, on_progress=status)
        else:
            document = benchmark_artifacts(
                artifacts, data, pytorch, target, threads, runs, warmup, rounds, shapes, on_device, status,
                providers=chosen, mode=mode.value, concurrency=concurrency, on_step=on_step,
            )  # fmt: skip
    write_results(document, out)
    if as_json:  # stdout carries the document alone, for jq and scripts; budgets still set the exit code
        import json

        print(json.dumps(document, indent=2))
        _exit_on_budgets(document, budgets, show=False)
        return
    console.print(rich_table(document))
    if (estimates := rich_estimates(document)) is not None:  # the device's figures, never the host's
        console.print(estimates)
    for skipped in document.get("skipped", []):
        console.print(f"not run here: {skipped['name']}: {skipped['reason']}")
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
    _exit_on_budgets(document, budgets, show=True)


def _exit_on_budgets(document: dict, budgets: bool, show: bool) -> None:
    broken = [v for v in document["budgets"] if not v["passed"]]
    for verdict in document["budgets"] if show else []:
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


@bench_app.command("compare")
@user_errors
def compare(
    old: Annotated[Path, typer.Argument(help="The earlier results file (edgekit bench --out).")],
    new: Annotated[Path, typer.Argument(help="The later results file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes and remarks as JSON to stdout.")] = False,
) -> None:
    """Flag regressions between two results files beyond the runs' own spread (exit code 5).

    Figures from different CPUs or data are shown but not judged.

    **Example:** `edgekit bench compare yesterday.json today.json`
    """
    from rich.table import Table

    from edgekit.bench.compare import REGRESSION_EXIT_CODE, compare_documents
    from edgekit.bench.results import read_results

    changes, remarks = compare_documents(read_results(old), read_results(new))
    if as_json:
        import json

        rows = [{**change.to_dict(), "relative": change.relative} for change in changes]
        print(json.dumps({"changes": rows, "remarks": remarks}, indent=2))
        if any(change.regression for change in changes):
            raise typer.Exit(REGRESSION_EXIT_CODE)
        return
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
