"""Building blocks of manifest validation: one-line ``ArtifactError`` messages and the value checks they use.

Shared by ``manifest.py`` (the generic fields) and ``task_fields.py`` (the fields of one task),
so both phrase a bad value the same way. Standard library only.
"""

from __future__ import annotations

import math
from typing import Any

from edgekit.errors import ArtifactError

MANIFEST_NAME = "manifest.json"
_FIX = "re-export the artifact with `edgekit convert` (and do not load an artifact you did not make)"


def _show(value: Any) -> str:
    """A short description of a bad value for a one-line error message."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _bad(what: str, expected: str, value: Any) -> ArtifactError:
    return ArtifactError(f"{MANIFEST_NAME} is malformed: {what} must be {expected}, not {_show(value)}; {_FIX}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no number


def _is_number(value: Any) -> bool:
    """A finite JSON number (NaN and Infinity parse in Python's json, and would poison arithmetic)."""
    return (isinstance(value, float) and math.isfinite(value)) or _is_int(value)


def _require(data: dict[str, Any], key: str, check: Any, expected: str, where: str = "") -> Any:
    if key not in data:
        raise ArtifactError(f"{MANIFEST_NAME} is malformed: it has no `{where}{key}` ({expected}); {_FIX}.")
    value = data[key]
    if not check(value):
        raise _bad(f"`{where}{key}`", expected, value)
    return value


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def check_relative_path(rel: Any, what: str) -> str:
    """``rel`` if it is a plain relative POSIX path that cannot leave its folder (checked on the string)."""
    if not isinstance(rel, str) or not rel:
        raise ArtifactError(f"{what} must be a non-empty relative path, not {_show(rel)}; {_FIX}.")
    problem = None
    if "\x00" in rel:
        problem = "contains a NUL character"
    elif "\\" in rel or ":" in rel:
        problem = "contains '\\' or ':' (paths are '/'-separated; no drive letters or streams)"
    elif rel.startswith("/"):
        problem = "is absolute"
    elif any(part in ("", ".", "..") for part in rel.split("/")):
        problem = "has an empty, '.' or '..' component"
    if problem:
        raise ArtifactError(f"{what} {rel!r} {problem}: an artifact may only name files inside its own folder; {_FIX}.")
    return rel
