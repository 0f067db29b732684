"""Checks on a destination that run before any slow work, and again before anything is replaced."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from edgekit.outputs.locking import _check_not_locked
from edgekit.outputs.ownership import (
    _check_not_an_input,
    _check_not_special,
    _check_replaceable,
    _check_writable_parent,
)


def check_destination(destination: Path | str, protect: Iterable[Path | str | None] = ()) -> Path:
    """Fail now, with a clear message, if ``destination`` cannot become an edgekit output.

    ``protect``: inputs of the run (model and student folders, data files, work folders); the
    destination may not be one of them, lie inside one, or contain one. Returns the absolute path.
    """
    final = Path(destination).expanduser().absolute()
    _check_not_special(final)
    _check_not_an_input(final, protect)
    if final.exists():
        _check_replaceable(final)
    _check_writable_parent(final)
    _check_not_locked(final)
    return final


def check_parent_folder(folder: Path | str, protect: Iterable[Path | str | None] = ()) -> Path:
    """Checks for a folder edgekit writes outputs *into* but never replaces (the quickstart's ``--out``)."""
    final = Path(folder).expanduser().absolute()
    _check_not_special(final)
    _check_not_an_input(final, protect)
    _check_writable_parent(final / "_")
    return final
