"""Confinement: the only way runtime code turns a manifest's names into paths."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from edgekit.artifact.manifest import _FIX, MANIFEST_NAME, Manifest, check_relative_path
from edgekit.artifact.onnx_scan import onnx_external_data
from edgekit.errors import ArtifactError

# ---------------------------------------------------------------------------------------------
# Confinement: every file the runtime opens is a regular file inside the artifact folder,
# reached without following a symbolic link, and (for manifests) listed in `files`.


def confined_path(root: Path | str, rel: str, what: str = "Path") -> Path:
    """``root/rel``, resolved, after checking that no part of it below ``root`` is a symbolic link
    and that it resolves inside ``root`` (which may itself be reached through links: the caller chose it)."""
    base = Path(root)
    path = base
    for part in check_relative_path(rel, what).split("/"):
        path = path / part
        if path.is_symlink():
            raise ArtifactError(
                f"{what} {rel!r} in {base} goes through a symbolic link ({path.name}); artifacts hold plain "
                "files only, so a link could point anywhere. Copy the real files in, or re-export."
            )
    resolved, inside = path.resolve(), base.resolve()
    if resolved != inside and inside not in resolved.parents:  # e.g. a junction or bind mount
        raise ArtifactError(f"{what} {rel!r} resolves to {resolved}, outside {inside}; {_FIX}.")
    return resolved


def artifact_file(root: Path | str, manifest: Manifest, rel: str) -> Path:
    """The path of a file the manifest lists: confined to the folder, a regular file, never a link.

    The one way runtime code turns a manifest's names into paths. ``load_manifest`` (verify=True)
    has checked its sha256; a file the manifest does not list is refused (no hash covers it).
    """
    if rel not in manifest.files:
        raise ArtifactError(
            f"{rel!r} is not listed in {MANIFEST_NAME} `files`, so no hash covers it and the runtime "
            f"will not open it; {_FIX}."
        )
    path = confined_path(root, rel, "Artifact file")
    if not path.is_file():
        raise ArtifactError(f"{rel} is missing from artifact {root} (or is not a regular file); {_FIX}.")
    return path


def model_file_path(root: Path | str, manifest: Manifest) -> Path:
    """``model_file`` via ``artifact_file``, after checking the files the engine reads beside it
    (OpenVINO's .bin, ONNX external data) the same way: listed, hashed, confined. A Core ML
    ``.mlpackage`` is a folder: every file in it is checked and its path returned."""
    if manifest.model_file.endswith(".mlpackage"):
        return _model_package(root, manifest)
    path = artifact_file(root, manifest, manifest.model_file)
    folder = posixpath.dirname(manifest.model_file)
    if manifest.model_file.endswith(".xml"):
        artifact_file(root, manifest, manifest.model_file[: -len(".xml")] + ".bin")
    elif manifest.model_file.endswith(".onnx"):  # other formats (a plug-in engine's) name no side files
        for location in onnx_external_data(path):
            check_relative_path(location, f"External data of {manifest.model_file}")
            artifact_file(root, manifest, posixpath.join(folder, location) if folder else location)
    return path


def _model_package(root: Path | str, manifest: Manifest) -> Path:
    """A model that is a folder (Core ML ``.mlpackage``): confined, no links anywhere in it, and every
    file in it listed (so hashed) in ``files``: the engine opens whatever the package holds."""
    rel = manifest.model_file
    path = confined_path(root, rel, "Model package")
    if not path.is_dir():
        raise ArtifactError(f"{rel} is missing from artifact {root} (or is not a folder); {_FIX}.")
    artifact_file(root, manifest, f"{rel}/Manifest.json")
    for listed in (name for name in manifest.files if name.startswith(f"{rel}/")):
        artifact_file(root, manifest, listed)
    for folder, dirs, files in os.walk(path):  # does not follow links; each one is refused below
        for name in sorted(dirs + files):
            found = Path(folder) / name
            inner = f"{rel}/{found.relative_to(path).as_posix()}"
            if found.is_symlink():
                raise ArtifactError(f"{inner} in {root} is a symbolic link; artifacts hold plain files only: {_FIX}.")
            if not found.is_dir() and inner not in manifest.files:  # special files are never listed
                raise ArtifactError(
                    f"{inner} is inside the model package but not listed in {MANIFEST_NAME} `files`, so no hash "
                    f"covers it and the engine would read it; {_FIX}."
                )
    return path


def _read_plain_file(folder: Path, name: str) -> bytes:
    """A file directly in ``folder`` (manifest.json, summary.json), refused when it is a link."""
    path = folder / name
    if path.is_symlink():
        raise ArtifactError(f"{path} is a symbolic link; an artifact's {name} must be a plain file: {_FIX}.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ArtifactError(
            f"{path} cannot be read ({exc.strerror or exc}); check the folder and its permissions."
        ) from None
