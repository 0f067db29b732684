"""What every command shares: the consoles and the conversion of user errors into exit codes."""

from __future__ import annotations

import enum
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from edgekit.errors import EdgekitError

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


def given(**values: Any) -> dict[str, Any]:
    """The options the user actually passed (typer gives None for the others)."""
    return {k: v for k, v in values.items() if v is not None}


class LogLevel(str, enum.Enum):
    """``--log-level`` choices (listed in ``--help``)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


# --quiet: no spinners or progress bars either (commands read this, e.g. `bench`).
settings: dict[str, Any] = {"quiet": False}


def configure_logging(verbose: bool, quiet: bool, level: str | None) -> int:
    """Set the root logger (and so transformers', ORT's, NNCF's Python loggers) from the global flags.

    ``--log-level`` wins; else ``--verbose`` is INFO and ``--quiet`` ERROR; else WARNING,
    Python's default. Returns the level set.
    """
    chosen = getattr(logging, level) if level else logging.INFO if verbose else logging.ERROR if quiet else None
    settings["quiet"] = quiet or chosen == logging.ERROR
    if chosen is None:
        return logging.getLogger().getEffectiveLevel()
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(chosen)
    for library in ("transformers", "nncf", "optimum"):  # they set their own levels; follow ours
        logging.getLogger(library).setLevel(chosen)
    return chosen


# The options an ONNX-file source needs (convert and inspect take them alike).
OnnxTokenizerOption = Annotated[
    Path | None, typer.Option(help="ONNX model: folder with its fast tokenizer (default: the file's folder).")
]
OnnxLabelsOption = Annotated[
    str | None, typer.Option(help="ONNX model: comma-separated labels in logit order (default: config.json).")
]
