"""Write constraints.txt: the exact versions tested, for everything edgekit's extras pull.

Run it in the venv the test suite passed in (`python .ci/freeze_constraints.py > constraints.txt`).
It walks the installed requirements of edgekit and of every extra (markers evaluated for this
machine), so the file pins the tested set and nothing else (no tools installed beside it).

- torch is written without its local label (`2.13.0`, not `2.13.0+cpu`): the label names the
  wheel index, and `==2.13.0` matches the CPU build as well as macOS's plain build.
- A pin whose release needs a newer Python than edgekit's floor gets a `python_version` marker,
  so an older Python falls back to the ranges in pyproject.toml instead of failing.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")


def _closure(roots: list[Requirement]) -> dict[str, metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    todo = [(req, "") for req in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        try:
            dist = seen.get(name) or metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{req.name} is required but not installed: install every extra first")
        seen[name] = dist
        for wanted in [""] + sorted(req.extras):
            todo += [(Requirement(text), wanted) for text in dist.requires or []]
    return seen


def _marker(dist: metadata.Distribution, floor: str) -> str:
    requires_python = dist.metadata.get("Requires-Python")
    if not requires_python:
        return ""
    candidates = [p for p in PYTHONS if Version(p) >= Version(floor)]
    allowed = [p for p in candidates if SpecifierSet(requires_python).contains(p)]
    if not allowed or allowed == candidates:
        return ""
    bounds = [f'python_version >= "{allowed[0]}"'] if allowed[0] != candidates[0] else []
    if allowed[-1] != candidates[-1]:
        bounds.append(f'python_version < "{candidates[candidates.index(allowed[-1]) + 1]}"')
    return "; " + " and ".join(bounds)


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floor = project["requires-python"].removeprefix(">=")
    roots = [Requirement(text) for text in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        roots += [Requirement(text) for text in extra]
    lines = []
    for name, dist in sorted(_closure(roots).items()):
        version = Version(dist.version).public  # drop "+cpu"
        lines.append(f"{name}=={version}{_marker(dist, floor)}")
    print("# The exact set edgekit is tested with (Linux x86_64, Python 3.11); pyproject.toml has the ranges.")
    print("# Made by .ci/freeze_constraints.py; use with `pip install -c constraints.txt ...`.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
