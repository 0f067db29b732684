"""Errors a user can cause.

Every class here carries a message that says what was wrong and how to fix it. The CLI
prints them without a traceback and exits non-zero; internal bugs keep their traceback.
This module must stay dependency-free: the slim runtime imports it.
"""

from __future__ import annotations

from typing import Any


def describe_validation_error(origin: str, err: Any, see: str) -> str:
    """One line per invalid field of a pydantic ``ValidationError``, then where to read more."""
    lines = [f"{origin} is invalid:"]
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  - {where}: {item['msg']}")
    lines.append(f"See {see}.")
    return "\n".join(lines)


class EdgekitError(Exception):
    """Base class for problems the user can fix (bad input, missing files, failed gates)."""

    exit_code: int = 2


class SourceError(EdgekitError):
    """The source model cannot be found or loaded."""


class RecipeError(EdgekitError):
    """A recipe file or the flags that stand for one are invalid."""


class DataError(EdgekitError):
    """A data file is missing, malformed, or does not fit the task."""


class TargetError(EdgekitError):
    """A target profile is unknown or invalid."""


class ExportError(EdgekitError):
    """The model could not be exported."""


class ParityError(EdgekitError):
    """The exported model disagrees with the reference beyond the allowed tolerance."""

    exit_code = 3


class ArtifactError(EdgekitError):
    """An artifact directory is missing, malformed, or fails its integrity check."""


class InputError(EdgekitError):
    """An input given to a loaded model cannot be used (empty text, wrong type)."""
