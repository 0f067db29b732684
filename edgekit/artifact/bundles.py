"""Bundles: summary.json's variant locations, confined, and the manifest digests that a bundle pin covers."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from edgekit.artifact.integrity import (
    _check_sha256_argument,
    _manifest_bytes,
    _parse_manifest,
    load_manifest,
    read_manifest,
    verify_files,
)
from edgekit.artifact.manifest import _HEX64, MANIFEST_NAME, SUMMARY_NAME, Manifest, _is_str_list
from edgekit.artifact.paths import _read_plain_file, check_relative_path, confined_path
from edgekit.errors import ArtifactError

# ---------------------------------------------------------------------------------------------
# Bundles: a folder with summary.json whose `locations` name variant artifact folders, and
# whose `manifest_sha256` maps each variant to the sha256 of its manifest.json.

MANIFEST_DIGESTS = "manifest_sha256"  # summary.json field: variant name -> sha256 of its manifest.json


def is_bundle(path: Path | str) -> bool:
    root = Path(path)
    return (root / SUMMARY_NAME).is_file() and not (root / MANIFEST_NAME).is_file()


def _parse_summary(raw: bytes, path: Path) -> dict[str, Any]:
    """A bundle's summary.json, checked for the fields readers rely on."""
    try:
        summary = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{path} is damaged ({exc}); re-run `edgekit convert`.") from None
    problem = _summary_problem(summary)
    if problem:
        raise ArtifactError(f"{path} is damaged: {problem}; re-run `edgekit convert`.")
    for name, location in summary["locations"].items():
        check_relative_path(location, f"{SUMMARY_NAME} location of {name!r}")
    return summary


def _summary_problem(summary: Any) -> str | None:
    if not isinstance(summary, dict):
        return "it is not a JSON object"
    locations = summary.get("locations")
    if not isinstance(locations, dict) or not all(isinstance(v, str) for v in locations.values()):
        return "`locations` is not an object mapping variant names to folders"
    if not isinstance(summary.get("recommended"), str) or not _is_str_list(summary.get("built")):
        return "`recommended` must be a variant name and `built` a list of them"
    missing = [name for name in (summary["recommended"], *summary["built"]) if name not in locations]
    if missing:
        return f"{', '.join(map(repr, missing))} has no entry in `locations`"
    variants = summary.get("variants")
    if not isinstance(variants, list) or not all(
        isinstance(v, dict) and isinstance(v.get("name"), str) for v in variants
    ):
        return "`variants` is not a list of objects with a `name`"
    digests = summary.get(MANIFEST_DIGESTS)
    if digests is not None and not (
        isinstance(digests, dict) and all(isinstance(d, str) and _HEX64.fullmatch(d) for d in digests.values())
    ):
        return f"`{MANIFEST_DIGESTS}` is not an object mapping variant names to sha256 hex digests"
    return None


def read_summary(root: Path | str) -> dict[str, Any]:
    """A bundle's summary.json, checked for the fields readers rely on (locations confined)."""
    return _parse_summary(_read_plain_file(Path(root), SUMMARY_NAME), Path(root) / SUMMARY_NAME)


def bundle_variant_dir(root: Path | str, summary: dict[str, Any], name: str) -> Path:
    """The folder of variant ``name``: a plain sub-folder of the bundle (no link, no escape)."""
    location = summary["locations"].get(name)
    if location is None:
        raise ArtifactError(f"The bundle {root} has no variant {name!r}; it has {', '.join(summary['locations'])}.")
    path = confined_path(root, location, f"{SUMMARY_NAME} location of {name!r}")
    if not path.is_dir():
        raise ArtifactError(f"Variant {name!r} of bundle {root} is missing ({location}); re-run `edgekit convert`.")
    return path


def manifest_digests(root: Path | str, locations: dict[str, str]) -> dict[str, str]:
    """variant -> sha256 of its manifest.json, for summary.json's ``manifest_sha256`` field.

    Call it when writing summary.json, after the last change to any variant's manifest.
    """
    digests = {}
    for name, location in locations.items():
        folder = confined_path(root, location, f"Location of {name!r}")
        digests[name] = hashlib.sha256(_read_plain_file(folder, MANIFEST_NAME)).hexdigest()
    return digests


def resolve_artifact_dir(path: Path | str) -> Path:
    """An artifact folder as given, or the recommended variant when given a bundle folder."""
    root = Path(path)
    if not is_bundle(root):
        return root
    summary = read_summary(root)
    return bundle_variant_dir(root, summary, summary["recommended"])


def expand_bundle(path: Path | str) -> list[Path]:
    """The artifact folders a path stands for: itself, or every passing variant of a bundle."""
    root = Path(path)
    if not is_bundle(root):
        return [root]
    summary = read_summary(root)
    passing = [v["name"] for v in summary["variants"] if v.get("passed") and v["name"] in summary["locations"]]
    return [bundle_variant_dir(root, summary, name) for name in passing]


def load_artifact(
    path: Path | str, *, verify: bool = True, manifest_sha256: str | None = None
) -> tuple[Path, Manifest]:
    """The artifact folder and its checked manifest; a bundle folder gives its recommended variant.

    On a bundle, ``manifest_sha256`` pins ``summary.json`` (whose ``manifest_sha256`` field
    covers each variant's manifest, whose ``files`` cover every file); without a pin the
    variant's manifest is still checked against that field when ``verify`` is on. A bundle
    written before that field existed loads with a warning, and refuses a pin (nothing to chain it to).
    """
    root = Path(path)
    if not is_bundle(root):
        return root, load_manifest(root, verify=verify, manifest_sha256=manifest_sha256)
    if manifest_sha256 is not None and not verify:
        raise ArtifactError("manifest_sha256 pins every file through their hashes: it cannot go with verify=False.")
    raw = _read_plain_file(root, SUMMARY_NAME)
    if manifest_sha256 is not None:
        pin = _check_sha256_argument(manifest_sha256, "manifest_sha256")
        if (actual := hashlib.sha256(raw).hexdigest()) != pin:
            raise ArtifactError(
                f"{root / SUMMARY_NAME} has sha256 {actual}, not the pinned {manifest_sha256}: this is not the "
                "bundle the app was built for. Ship the pinned bundle, or update the pin."
            )
    summary = _parse_summary(raw, root / SUMMARY_NAME)
    name = summary["recommended"]
    folder = bundle_variant_dir(root, summary, name)
    digests = summary.get(MANIFEST_DIGESTS)
    if digests is None:
        if manifest_sha256 is not None:
            raise ArtifactError(
                f"{root / SUMMARY_NAME} predates manifest digests, so a pin on the bundle cannot cover its "
                f"variants. Pin the variant instead (load {folder} with the sha256 of its manifest.json), "
                "or re-run `edgekit convert`."
            )
        if verify:
            warnings.warn(
                f"{root / SUMMARY_NAME} has no `{MANIFEST_DIGESTS}` (written by an older edgekit): the variant's "
                "files are verified against its manifest, but nothing verifies the manifest. Re-run `edgekit "
                "convert` to add the digests.",
                stacklevel=2,
            )
        return folder, load_manifest(folder, verify=verify)
    if not verify:
        return folder, read_manifest(folder)
    if name not in digests:
        raise ArtifactError(f"{root / SUMMARY_NAME} has no manifest digest for {name!r}; re-run `edgekit convert`.")
    raw_manifest = _manifest_bytes(folder)
    if hashlib.sha256(raw_manifest).hexdigest() != digests[name]:
        raise ArtifactError(
            f"{folder / MANIFEST_NAME} does not match its sha256 in {root / SUMMARY_NAME}: the variant was changed "
            "after packaging. Re-run `edgekit convert` rather than editing a bundle in place."
        )
    manifest = _parse_manifest(raw_manifest, folder / MANIFEST_NAME)
    verify_files(folder, manifest)
    return folder, manifest
