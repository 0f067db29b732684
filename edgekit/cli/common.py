"""What every command shares: the consoles and the conversion of user errors into exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

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
