"""Reading a manifest (optionally pinned) and verifying every file against its sha256."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from edgekit.artifact.manifest import _HASH_CHUNK, MANIFEST_NAME, Manifest, _show
from edgekit.artifact.paths import _read_plain_file, confined_path
from edgekit.errors import ArtifactError

# ---------------------------------------------------------------------------------------------
# Reading and verifying


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_directory(root: Path) -> dict[str, str]:
    """sha256 of every regular file below ``root`` except the manifest, keyed by POSIX path.

    A symbolic link is refused: readers refuse links, so an artifact must never list one.
    """
    hashes: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise ArtifactError(f"{path} is a symbolic link; an artifact holds plain files only.")
        if path.is_file() and path.name != MANIFEST_NAME:
            hashes[path.relative_to(root).as_posix()] = sha256_file(path)
    return hashes


def _check_sha256_argument(pin: Any, name: str) -> str:
    if not isinstance(pin, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", pin):
        raise ArtifactError(
            f"{name} must be a sha256 as 64 hex digits (as `edgekit convert` prints it), not {_show(pin)}."
        )
    return pin.lower()


def _parse_manifest(raw: bytes, path: Path) -> Manifest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); the artifact is damaged, re-export it.") from None
    return Manifest.from_dict(data)


def _manifest_bytes(root: Path) -> bytes:
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise ArtifactError(f"Artifact directory {root} {what}. Pass the folder `edgekit convert` wrote.")
    if not (root / MANIFEST_NAME).is_file() and not (root / MANIFEST_NAME).is_symlink():
        raise ArtifactError(
            f"{root} has no {MANIFEST_NAME}, so it is not an edgekit artifact. Create one with `edgekit convert`."
        )
    return _read_plain_file(root, MANIFEST_NAME)


def read_manifest(artifact_dir: Path | str, pinned_sha256: str | None = None) -> Manifest:
    """Parse ``manifest.json``; with ``pinned_sha256``, refuse any other manifest.

    The pin is checked on the very bytes that are parsed, so the file cannot change between
    the check and its use.
    """
    root = Path(artifact_dir)
    raw = _manifest_bytes(root)
    if pinned_sha256 is not None:
        pin = _check_sha256_argument(pinned_sha256, "manifest_sha256")
        if (actual := hashlib.sha256(raw).hexdigest()) != pin:
            raise ArtifactError(
                f"{root / MANIFEST_NAME} has sha256 {actual}, not the pinned {pinned_sha256}: this is not the "
                "artifact the app was built for. Ship the pinned artifact, or update the pin."
            )
    return _parse_manifest(raw, root / MANIFEST_NAME)


def model_size_mb(artifact_dir: Path | str, manifest: Manifest) -> float:
    """Size of the model file and its weight side-files (OpenVINO .bin, ONNX external data)."""
    root = Path(artifact_dir)
    stem = Path(manifest.model_file).stem
    names = [rel for rel in manifest.files if Path(rel).stem == stem or rel.startswith(f"{stem}.")]
    files = [confined_path(root, rel, "Artifact file") for rel in names]
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def verify_files(artifact_dir: Path | str, manifest: Manifest) -> None:
    """Refuse an artifact whose files do not match the sha256 recorded in its manifest."""
    root = Path(artifact_dir)
    if not manifest.files:
        raise ArtifactError(f"{root}/{MANIFEST_NAME} lists no file hashes; re-export the artifact.")
    problems: list[str] = []
    for rel, expected in manifest.files.items():
        path = confined_path(root, rel, "Artifact file")  # a link or an escape is refused outright
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel} does not match its sha256 in the manifest")
    if problems:
        raise ArtifactError(
            f"Artifact {root} failed its integrity check: {'; '.join(problems)}. "
            "A file was changed or replaced after packaging; re-export the artifact "
            "rather than editing it in place."
        )


def load_manifest(artifact_dir: Path | str, verify: bool = True, manifest_sha256: str | None = None) -> Manifest:
    """Read and check an artifact's manifest.

    ``verify`` checks every file against its sha256 in the manifest. That catches damage and
    swapped model files, but the manifest itself (labels, tokenizer settings) is covered by
    no hash inside the folder: an app that must trust exactly one artifact pins
    ``manifest_sha256`` (printed by ``edgekit convert``), which covers every file through
    the hashes in it. A pin therefore always verifies the files.
    """
    if manifest_sha256 is not None and not verify:
        raise ArtifactError("manifest_sha256 pins every file through their hashes: it cannot go with verify=False.")
    manifest = read_manifest(artifact_dir, manifest_sha256)
    if verify:
        verify_files(artifact_dir, manifest)
    return manifest
