"""Where trials run: the protocol every executor follows, and the local one.

The search hands an executor the trials that are ready (their inputs known) and reads
``(spec, outcome)`` pairs back as they finish, in any order. Closing the iterator early (the
search does it when the time budget is spent) means: start nothing more; trials already running
may finish, their results are cached by ``run_trial`` itself. ``RayExecutor(address)``
(``edgekit.optimize.ray_executor``, loaded only for ``--ray``) follows the same protocol.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from edgekit.optimize.outcome import TrialOutcome, describe_failure
from edgekit.optimize.trials import TrialSpec, run_trial

__all__ = ["Executor", "LocalExecutor", "TrialOutcome", "describe_failure", "make_executor"]


class Executor(Protocol):
    def run(self, specs: Sequence[TrialSpec]) -> Iterator[TrialOutcome]:
        """Run the trials (in any order, possibly in parallel); yield each outcome as it finishes.
        An exception inside a trial becomes an outcome with ``error``, never a raised exception."""
        ...

    def close(self) -> None:
        """Release what the executor holds (a cluster connection); idempotent."""
        ...


class LocalExecutor:
    """Trials one by one in this process: a trial starts only when the search asks for the next
    outcome, so closing the iterator starts nothing more."""

    def __init__(self, reporter=None) -> None:
        self.reporter = reporter

    def run(self, specs: Sequence[TrialSpec]) -> Iterator[TrialOutcome]:
        for spec in specs:
            try:
                record = run_trial(spec, self.reporter)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one failed trial is a finding; the search goes on with the others
                yield TrialOutcome(spec, None, describe_failure(exc))
                continue
            yield TrialOutcome(spec, record)

    def close(self) -> None:
        return None


def make_executor(ray: str | None, reporter=None) -> Executor:
    """The local executor, or a Ray one for ``--ray ADDRESS|auto`` (imported only then)."""
    if ray is None:
        return LocalExecutor(reporter)
    from edgekit.optimize.ray_executor import RayExecutor  # the `ray` package is optional

    return RayExecutor(ray)
