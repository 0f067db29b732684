"""What an executor hands back for one trial, shared by every executor (``executor.LocalExecutor``,
``ray_executor.RayExecutor``) so that neither imports the other."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from edgekit.errors import EdgekitError
from edgekit.optimize.trials import TrialRecord, TrialSpec


@dataclass(frozen=True)
class TrialOutcome:
    """What came back for one trial: its record, or why it failed (one line, for the report)."""

    spec: TrialSpec
    record: TrialRecord | None
    error: str | None = None


def describe_failure(exc: BaseException) -> str:
    """One line for the report: a user error's own message, else the exception and where it came from."""
    if isinstance(exc, EdgekitError):
        return f"{type(exc).__name__}: {exc}"
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{place}"
