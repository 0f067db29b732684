"""Read the YAML files users write (recipes, target profiles) with errors that name the file.

Parsing is ``yaml.SafeLoader`` (no arbitrary objects), with one addition: a key given twice
in the same mapping is an error. Plain PyYAML keeps the last value silently, so a recipe with
two ``variants:`` lines would quietly ignore the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgekit.errors import EdgekitError


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Only keys written in this mapping count: overriding a key merged in with `<<:` is allowed.
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                first = seen[key].start_mark.line + 1
                raise DuplicateKeyError(
                    None, None, f"key {key!r} is given twice (first on line {first})", key_node.start_mark
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, name: str = "<text>") -> Any:
    """Parse YAML text safely, refusing duplicate keys; ``name`` (a file) appears in error marks."""
    loader = _StrictLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_mapping(path: Path, what: str, error: type[EdgekitError], hint: str = "") -> dict[str, Any]:
    """Parse ``path`` and return its top-level mapping; ``what`` names the file in messages."""
    try:
        raw = load_yaml(path.read_bytes().decode("utf-8"), str(path))
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise error(
            f"{what} {path}, line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save it as UTF-8."
        ) from None
    except OSError as exc:
        raise error(f"Cannot read {what.lower()} {path}: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{what} {path} must be a YAML mapping of fields{hint}.")
    return raw
