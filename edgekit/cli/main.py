"""The typer application: global options, then each command from its own module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from edgekit.cli import bench, convert, distill, quickstart, serve, targets

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
) -> None:
    """Take a fine-tuned model to an edge device and prove how fast and accurate it is there."""


app.command()(quickstart.quickstart)
app.command()(convert.convert)
app.command()(distill.distill)
app.add_typer(bench.bench_app, name="bench")
app.add_typer(targets.targets_app, name="targets")
app.command()(serve.serve)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
