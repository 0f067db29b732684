"""`edgekit bench`'s progress display: a bar with an ETA (the number of worker runs is known)."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterator

from edgekit.cli.common import err_console


class BenchMode(str, enum.Enum):
    """``--mode`` choices (listed in ``--help``)."""

    latency = "latency"
    throughput = "throughput"


@contextlib.contextmanager
def progress_bar(quiet: bool = False) -> Iterator[tuple[Callable[[str], None], Callable[[int, int, str], None]]]:
    """``(status, on_step)``: a text update (remote runs, which only report stages) and a counted step.

    On stderr, so ``--json`` output on stdout stays clean; nothing at all under ``--quiet``.
    """
    if quiet:
        yield (lambda _text: None), (lambda _done, _total, _label: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]benchmarking[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("starting", total=None)

        def status(text: str) -> None:
            progress.update(task, description=text)

        def on_step(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, description=label)

        yield status, on_step
