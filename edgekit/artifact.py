"""The artifact directory: model file(s), tokenizer files and ``manifest.json``.

This module is shared by the conversion pipeline (which writes artifacts) and the slim
runtime (which loads them), so it must stay torch-free: standard library only.

Writing is atomic: files go into a temporary directory next to the destination, which is
renamed into place only once the manifest (with the sha256 of every file) is complete.
A previous artifact under the same name is replaced only after the new one is whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import ArtifactError

MANIFEST_NAME = "manifest.json"
SUMMARY_NAME = "summary.json"  # marks a bundle: several variant artifacts in sub-folders
FORMAT_VERSION = 1
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: int64, float32 ...
    shape: list[str | int]  # symbolic names are dynamic axes, e.g. ["batch", "sequence"]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(data["name"], data["dtype"], data["shape"])  # other keys: ignored, as in Manifest


@dataclass
class Manifest:
    """Everything a runtime (in any language) needs to load and feed the model.

    ``docs/artifact-format.md`` is the human description of these fields; keep both in step.
    """

    task: str
    labels: list[str]
    engine: str  # "onnxruntime"
    precision: str  # "fp32", "fp16", "int8"
    model_file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    tokenizer: dict[str, Any]  # {"file": "tokenizer.json", "max_length": 128, ...}
    source: dict[str, Any]
    recipe_hash: str
    edgekit_version: str
    target: str | None = None
    exporter: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # defaults from the target: threads, engines
    parity: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"Artifact format version {version!r} is not supported by this edgekit "
                f"(it reads version {FORMAT_VERSION}). Re-export the model with this version."
            )
        try:
            # Readers ignore fields they do not know: additions keep format_version 1, so an
            # older runtime still loads a newer artifact (a breaking change bumps the version).
            known = {f.name for f in dataclasses.fields(cls)}
            fields = {key: value for key, value in data.items() if key in known}
            fields["inputs"] = [TensorSpec.from_dict(spec) for spec in data["inputs"]]
            fields["outputs"] = [TensorSpec.from_dict(spec) for spec in data["outputs"]]
            return cls(**fields)
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"manifest.json is malformed: {exc}") from exc

    def label_for(self, index: int) -> str:
        return self.labels[index]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_directory(root: Path) -> dict[str, str]:
    """sha256 of every regular file below ``root`` except the manifest, keyed by POSIX path."""
    hashes: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME:
            hashes[path.relative_to(root).as_posix()] = sha256_file(path)
    return hashes


def read_manifest(artifact_dir: Path | str, pinned_sha256: str | None = None) -> Manifest:
    """Parse ``manifest.json``; with ``pinned_sha256``, refuse any other manifest.

    The pin is checked on the very bytes that are parsed, so the file cannot change between
    the check and its use.
    """
    root = Path(artifact_dir)
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise ArtifactError(f"Artifact directory {root} does not exist. Pass the folder `edgekit convert` wrote.")
    if not path.is_file():
        raise ArtifactError(
            f"{root} has no {MANIFEST_NAME}, so it is not an edgekit artifact. Create one with `edgekit convert`."
        )
    raw = path.read_bytes()
    if pinned_sha256 is not None and hashlib.sha256(raw).hexdigest() != pinned_sha256.lower():
        raise ArtifactError(
            f"{path} has sha256 {hashlib.sha256(raw).hexdigest()}, not the pinned {pinned_sha256}: this is not the "
            "artifact the app was built for. Ship the pinned artifact, or update the pin."
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); the artifact is damaged, re-export it.") from exc
    return Manifest.from_dict(data)


def model_size_mb(artifact_dir: Path | str, manifest: Manifest) -> float:
    """Size of the model file and its weight side-files (OpenVINO .bin, ONNX external data)."""
    root = Path(artifact_dir)
    stem = Path(manifest.model_file).stem
    files = [root / rel for rel in manifest.files if Path(rel).stem == stem or rel.startswith(f"{stem}.")]
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def is_bundle(path: Path | str) -> bool:
    root = Path(path)
    return (root / SUMMARY_NAME).is_file() and not (root / MANIFEST_NAME).is_file()


def read_summary(root: Path | str) -> dict[str, Any]:
    """A bundle's summary.json, checked for the fields readers rely on."""
    path = Path(root) / SUMMARY_NAME
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        for name in (summary["recommended"], *summary["built"]):
            summary["locations"][name]
        for variant in summary["variants"]:
            variant["name"]
        return summary
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path} is damaged ({exc!r}); re-run `edgekit convert`.") from None


def resolve_artifact_dir(path: Path | str) -> Path:
    """An artifact folder as given, or the recommended variant when given a bundle folder."""
    root = Path(path)
    if not is_bundle(root):
        return root
    summary = read_summary(root)
    return root / summary["locations"][summary["recommended"]]


def expand_bundle(path: Path | str) -> list[Path]:
    """The artifact folders a path stands for: itself, or every passing variant of a bundle."""
    root = Path(path)
    if not is_bundle(root):
        return [root]
    summary = read_summary(root)
    passing = [v["name"] for v in summary["variants"] if v.get("passed") and v["name"] in summary["locations"]]
    return [root / summary["locations"][name] for name in passing]


def verify_files(artifact_dir: Path | str, manifest: Manifest) -> None:
    """Refuse an artifact whose files do not match the sha256 recorded in its manifest."""
    root = Path(artifact_dir)
    if not manifest.files:
        raise ArtifactError(f"{root}/{MANIFEST_NAME} lists no file hashes; re-export the artifact.")
    problems: list[str] = []
    for rel, expected in manifest.files.items():
        path = root / rel
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


# Files that mark a folder as edgekit's own output, which a new run may replace.
OUTPUT_MARKERS = (MANIFEST_NAME, SUMMARY_NAME, "training.json", "distillation.json")


def _check_replaceable(final: Path) -> None:
    if not final.exists():
        return
    if not final.is_dir():
        raise ArtifactError(f"{final} exists and is a file; choose another output folder.")
    if any(final.iterdir()) and not any((final / marker).is_file() for marker in OUTPUT_MARKERS):
        raise ArtifactError(
            f"Refusing to replace {final}: it is not empty and not an edgekit output folder. "
            "Choose a new output folder (edgekit replaces its own outputs only)."
        )


@contextlib.contextmanager
def atomic_directory(destination: Path | str) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``destination`` only if the block succeeds.

    On any exception the temporary directory is removed and ``destination`` is untouched.
    An existing ``destination`` is replaced only if it is an earlier edgekit output (or empty).
    """
    final = Path(destination).absolute()
    _check_replaceable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the artifact should read like any folder
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup: Path | None = None
    try:
        if final.exists():
            backup = final.parent / f".{final.name}.old-{os.getpid()}"
            shutil.rmtree(backup, ignore_errors=True)
            final.rename(backup)
        staging.rename(final)
    except BaseException:
        if backup is not None and backup.exists() and not final.exists():
            backup.rename(final)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def seal(staging_dir: Path, manifest: Manifest) -> Manifest:
    """Hash every file in ``staging_dir`` into the manifest and write ``manifest.json``."""
    manifest.files = hash_directory(staging_dir)
    (staging_dir / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return manifest
