"""Read the YAML files users write (recipes, target profiles) with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgekit.errors import EdgekitError


def read_yaml_mapping(path: Path, what: str, error: type[EdgekitError], hint: str = "") -> dict[str, Any]:
    """Parse ``path`` and return its top-level mapping; ``what`` names the file in messages."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{what} {path} must be a YAML mapping of fields{hint}.")
    return raw
