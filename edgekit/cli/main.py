"""The typer application: global options, then each command from its own module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from edgekit.cli import bench, convert, distill, inspect, optimize, quickstart, serve, targets
from edgekit.cli.common import LogLevel, configure_logging

app = typer.Typer(
    name="edgekit",
    help="Take a fine-tuned model to an edge device and prove how fast and accurate it is there.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)


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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log at INFO (edgekit and the libraries it drives) to stderr.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log errors only; no progress display.")] = False,
    log_level: Annotated[
        LogLevel | None,
        typer.Option("--log-level", envvar="EDGEKIT_LOG_LEVEL", help="Log level (overrides --verbose/--quiet)."),
    ] = None,
) -> None:
    """Take a fine-tuned model to an edge device and prove how fast and accurate it is there.

    **Example:** `edgekit --log-level DEBUG bench artifacts/my-bert --data dev.tsv`
    """
    configure_logging(verbose, quiet, log_level.value if log_level else None)


app.command()(quickstart.quickstart)
app.command()(convert.convert)
app.command()(distill.distill)
app.command()(optimize.optimize)
app.command()(inspect.inspect)
app.add_typer(bench.bench_app, name="bench")
app.add_typer(targets.targets_app, name="targets")
app.command(context_settings={"auto_envvar_prefix": "EDGEKIT_SERVE"})(serve.serve)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
