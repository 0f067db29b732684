"""The benchmark results file: a versioned JSON document that reports are rendered from.

Optional keys added within schema 1 (readers ignore what they do not know): ``skipped``
(artifacts whose engine cannot run on the machine, with the reason) and ``estimated`` (a
profile of another architecture, or a phone: per variant the device's estimated latency,
band, basis and assumptions; ``target.host_label`` then names the machine that was timed);
per variant ``latency_samples_ms`` (the raw timed samples per round, in ms to 0.1 µs, at most
``bench.samples.MAX_RAW_SAMPLES`` per variant: beyond, an evenly spaced subset, counted in
``samples_total``/``samples_kept``) and ``usage`` (mode, concurrency, wall and process CPU
seconds of the timed runs, ``cpu_utilisation`` = CPU s / wall s, ``inferences_per_s``);
``settings.mode`` and ``settings.concurrency`` (``--mode throughput``).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.errors import EdgekitError
from edgekit.targets.host import detect_host

SCHEMA = "edgekit.bench/1"
_LIBRARIES = ("numpy", "tokenizers", "torch", "transformers", "optimum")  # besides every engine's own


def library_versions() -> dict[str, str]:
    from edgekit.runtime.engines import ENGINES

    versions = {}
    for name in (*[spec.module for spec in ENGINES.values()], *_LIBRARIES):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def environment() -> dict[str, Any]:
    return {"host": detect_host().to_dict(), "libraries": library_versions(), "edgekit": __version__}


def new_document(target: dict[str, Any], settings: dict[str, Any], variants: list[dict]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "target": target,
        "settings": settings,
        "variants": variants,
    }


def write_results(document: dict[str, Any], path: Path) -> None:
    """Write atomically, so a crash never leaves a half-written results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w") as stream:
        json.dump(document, stream, indent=2)
        stream.write("\n")
    os.replace(temp, path)


def read_results(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgekitError(f"Cannot read benchmark results {path}: {exc}") from None
    if document.get("schema") != SCHEMA:
        found = document.get("schema")
        raise EdgekitError(f"{path} is not an edgekit results file of schema {SCHEMA} (found {found!r}).")
    return document
