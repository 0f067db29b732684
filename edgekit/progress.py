"""Progress reporting that the pipeline can use without knowing about the terminal.

Stages call ``reporter.stage("Exporting ONNX")`` as a context manager and may call
``reporter.note(...)``. The CLI passes a rich-backed reporter; library users and tests
get the silent default.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Protocol


class Reporter(Protocol):
    def stage(self, title: str) -> contextlib.AbstractContextManager[None]: ...

    def note(self, message: str) -> None: ...


class SilentReporter:
    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.stages.append((title, time.perf_counter() - started))

    def note(self, message: str) -> None:
        pass


class ConsoleReporter:
    """A spinner while a stage runs, then a check mark with its wall time."""

    def __init__(self, console=None) -> None:  # rich.console.Console, imported lazily
        from rich.console import Console

        self.console = console or Console(stderr=True)

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        started = time.perf_counter()
        with self.console.status(f"[bold]{title}[/]…", spinner="dots"):
            try:
                yield
            except BaseException:
                self.console.print(f"[red]✗[/] {title} (failed after {time.perf_counter() - started:.1f}s)")
                raise
        self.console.print(f"[green]✓[/] {title} [dim]({time.perf_counter() - started:.1f}s)[/]")

    def note(self, message: str) -> None:
        self.console.print(f"  [dim]{message}[/]")
