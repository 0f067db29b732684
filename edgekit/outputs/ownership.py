"""Whose folder is it? Markers, the replace rules, outputs from before markers, and the checks on a destination."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgekit.artifact import MANIFEST_NAME
from edgekit.errors import EdgekitError

MARKER_NAME = ".edgekit-output.json"
MARKER_FORMAT = "edgekit-output"
KINDS = ("artifact", "bundle", "checkpoint", "distilled-checkpoint", "results")
_TEMP_INFIXES = (".tmp-", ".old-")
_MANIFEST, _SUMMARY = MANIFEST_NAME, "summary.json"
# What `save_pretrained` / `Trainer.save_model` write, plus edgekit's records: a pre-marker checkpoint
# holding anything else is not replaced.
_CHECKPOINT_FILES = {
    "config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json",
    "pytorch_model.bin", "pytorch_model.bin.index.json", "training_args.bin", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt",
    "added_tokens.json", "spiece.model", "sentencepiece.bpe.model", "training.json", "distillation.json",
}  # fmt: skip
_CHECKPOINT_RECORDS = {"training.json": ("cache_key", "labels"), "distillation.json": ("cache_key", "layer_map")}


class OutputError(EdgekitError):
    """An output folder cannot be written, or is not edgekit's to replace."""


# ---------------------------------------------------------------------------------------------
# Checks


def _check_not_special(final: Path) -> None:
    if final.is_symlink():
        raise OutputError(f"{final} is a symbolic link; edgekit does not write through links. Pass the real folder.")
    if final.exists() and not final.is_dir():
        raise OutputError(f"{final} exists and is a file, not a folder; choose another output folder.")
    resolved = final.resolve()
    if resolved == Path(resolved.anchor):
        raise OutputError(f"{final} is the filesystem root; choose a new folder for the output, e.g. {final / 'out'}.")
    if resolved == Path.home().resolve():
        raise OutputError(f"{final} is your home folder; choose a new folder inside it for the output.")
    if final.exists() and os.path.ismount(final):
        raise OutputError(
            f"{final} is a mount point: edgekit replaces an output by renaming a new folder into its place, "
            "which a mount point cannot take. Choose a folder inside it."
        )


def _check_not_an_input(final: Path, protect: Iterable[Path | str | None]) -> None:
    resolved = final.resolve()
    for item in protect:
        if item is None or str(item) == "":
            continue
        path = Path(item).expanduser()  # callers pass paths only (not hub ids); they need not exist yet
        guarded = path.resolve()
        if resolved == guarded or guarded in resolved.parents or resolved in guarded.parents:
            how = "is" if resolved == guarded else "is inside" if guarded in resolved.parents else "contains"
            raise OutputError(
                f"The output folder {final} {how} {path}, an input of this run; writing there would destroy it. "
                "Choose an output folder outside the model, data and work folders."
            )


def _check_writable_parent(final: Path) -> None:
    existing = final.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"Cannot create {final}: {existing} is a file, not a folder.")
    # access() misses what root may not do (/sys, some read-only mounts): a real folder is the proof.
    # It goes where the output's own folders would be created anyway, and is removed at once.
    try:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied")
        os.rmdir(tempfile.mkdtemp(prefix=".edgekit-probe-", dir=existing))
    except OSError as exc:
        raise OutputError(
            f"Cannot write {final}: {existing} does not accept new folders ({exc.strerror}); it is read-only or "
            "not writable by this user. Choose another output folder."
        ) from None


def _check_replaceable(final: Path) -> None:
    """Refuse to replace a folder edgekit cannot prove it wrote, naming what is in the way."""
    entries = [p for p in final.iterdir() if p.name != MARKER_NAME]
    if not (final / MARKER_NAME).exists() and not entries:
        return
    marker = read_marker(final)
    if marker is not None:
        unexpected = _unlisted(final, set(marker.get("contents", [])))
        if not unexpected and _kind_record_parses(final, marker["kind"]):
            return
        reason = (
            f"it holds files edgekit did not write ({', '.join(unexpected[:5])})"
            if unexpected
            else f"its {_MANIFEST if marker['kind'] == 'artifact' else _SUMMARY} is missing or damaged"
        )
    elif _legacy_output(final):
        return
    else:
        reason = "it is not empty and was not written by edgekit (it has no " + MARKER_NAME + ")"
    raise OutputError(
        f"Refusing to replace {final}: {reason}. edgekit replaces only folders it wrote, so nothing of "
        "yours is lost. Choose a new output folder, or move those files away."
    )


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's ``.edgekit-output.json`` if it is a valid edgekit marker, else ``None``."""
    data = _read_json(folder / MARKER_NAME)
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT or data.get("kind") not in KINDS:
        return None
    contents = data.get("contents")
    if not isinstance(contents, list) or not all(isinstance(item, str) for item in contents):
        return None
    return data


def _kind_record_parses(folder: Path, kind: str) -> bool:
    if kind == "artifact":
        return _is_manifest(_read_json(folder / _MANIFEST))
    if kind == "bundle":
        return _is_summary(_read_json(folder / _SUMMARY))
    return True


def _unlisted(folder: Path, listed: set[str]) -> list[str]:
    """Files below ``folder`` that are neither the marker nor in ``listed`` (POSIX relative paths)."""
    extra = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == MARKER_NAME or (path.is_dir() and not path.is_symlink()):
            continue
        if rel not in listed:
            extra.append(rel)
    return extra


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _is_manifest(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("format_version"), int)
        and isinstance(data.get("edgekit_version"), str)
        and isinstance(data.get("files"), dict)
        and isinstance(data.get("model_file"), str)
    )


def _is_summary(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("recipe_hash"), str)
        and isinstance(data.get("locations"), dict)
        and all(isinstance(v, str) for v in data["locations"].values())
        and isinstance(data.get("variants"), list)
    )


# Outputs written before the marker (edgekit <= 0.2.0): accepted only when their record parses as
# edgekit's and the folder holds nothing that record does not account for.


def _legacy_output(folder: Path) -> bool:
    return _legacy_artifact(folder) or _legacy_bundle(folder) or _legacy_checkpoint(folder)


def _legacy_artifact(folder: Path) -> bool:
    manifest = _read_json(folder / _MANIFEST)
    return _is_manifest(manifest) and not _unlisted(folder, {_MANIFEST, *manifest["files"]})


def _legacy_bundle(folder: Path) -> bool:
    summary = _read_json(folder / _SUMMARY)
    if not _is_summary(summary):
        return False
    locations = [loc for loc in summary["locations"].values() if loc and not Path(loc).is_absolute()]
    tops = {Path(loc).parts[0] for loc in locations}
    for entry in folder.iterdir():
        if not (entry.name in {_SUMMARY, "summary.md", "bench.json"} and entry.is_file()) and entry.name not in tops:
            return False
    # Every file below a variant folder must belong to a variant that is itself a legacy artifact.
    if not all(_legacy_artifact(folder / loc) for loc in locations if (folder / loc).is_dir()):
        return False
    for top in tops:
        for path in (folder / top).rglob("*"):
            rel = path.relative_to(folder).as_posix()
            if not path.is_dir() and not any(rel.startswith(loc + "/") for loc in locations):
                return False
    return True


def _legacy_checkpoint(folder: Path) -> bool:
    for record, keys in _CHECKPOINT_RECORDS.items():
        data = _read_json(folder / record)
        if isinstance(data, dict) and all(key in data for key in keys):
            return all(p.is_file() and not p.is_symlink() and p.name in _CHECKPOINT_FILES for p in folder.iterdir())
    return False
