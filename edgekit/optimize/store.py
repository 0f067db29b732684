"""Files the search keeps between runs, written so that a crash (even ``kill -9``) never leaves
a half-written one that a rerun would trust: a temporary file in the same folder, then
``os.replace`` (atomic on POSIX and Windows)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TRIALS_DIR = "trials"  # <out>/trials/<key>.json: one finished trial each
RUNS_DIR = "runs"  # <out>/runs/<trial name>/: the convert output of each trial
WORK_DIR = "work"  # <out>/"work"/<model>/: distillation checkpoints and caches per student
RECOMMENDED_DIR = "recommended"  # <out>/recommended/: a copy of the recommended artifact


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the name points at it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_json_or_none(path: Path) -> dict[str, Any] | None:
    """The JSON object at ``path``, or None when it is missing, unreadable, truncated or not an object."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return document if isinstance(document, dict) else None
