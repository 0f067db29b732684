"""Atomic output folders: build beside the destination, swap in only when whole; ``seal`` a manifest."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.artifact import MANIFEST_NAME, Manifest, hash_directory
from edgekit.outputs.destination import check_destination
from edgekit.outputs.locking import destination_lock, remove_stale_temp_folders
from edgekit.outputs.ownership import (
    KINDS,
    MARKER_FORMAT,
    MARKER_NAME,
    OutputError,
    _check_not_an_input,
    _check_not_special,
    _check_replaceable,
)

# ---------------------------------------------------------------------------------------------
# SIGTERM → cleanup


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` so the cleanup below runs (main thread, default handler only)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# ---------------------------------------------------------------------------------------------
# The atomic folder


@contextlib.contextmanager
def atomic_directory(
    destination: Path | str, kind: str = "artifact", protect: Iterable[Path | str | None] = ()
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``destination`` only if the block succeeds.

    On any exception (and on SIGTERM) the temporary folder is removed and ``destination`` is
    untouched. An existing ``destination`` is replaced only if edgekit provably wrote it.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {KINDS}")
    protect = list(protect)
    final = check_destination(destination, protect)
    _make_parent(final)
    with destination_lock(final) as locked, _terminate_raises():
        remove_stale_temp_folders(final, locked)
        staging = _make_staging(final)
        try:
            yield staging
            _write_marker(staging, kind)
            _commit(staging, final, protect)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _make_parent(final: Path) -> None:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create {final.parent}: {exc.strerror}. Choose a writable folder.") from None


def _make_staging(final: Path) -> Path:
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    except OSError as exc:
        raise OutputError(f"Cannot write in {final.parent}: {exc.strerror}. Choose a writable folder.") from None
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the output should read like any folder
    return staging


def _write_marker(staging: Path, kind: str) -> None:
    """Written last, so a marker means the folder is complete; lists every file edgekit put there."""
    contents = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file() or p.is_symlink())
    marker = {"format": MARKER_FORMAT, "kind": kind, "edgekit_version": __version__, "contents": contents}
    (staging / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _commit(staging: Path, final: Path, protect: list[Path | str | None]) -> None:
    """Swap ``staging`` into place, re-checking the destination: it may have changed during the run."""
    _check_not_special(final)
    _check_not_an_input(final, protect)
    backup: Path | None = None
    try:
        if final.exists():
            _check_replaceable(final)
            backup = final.parent / f".{final.name}.old-{os.getpid()}"
            shutil.rmtree(backup, ignore_errors=True)
            final.rename(backup)
        staging.rename(final)
    except BaseException as exc:
        if backup is not None and backup.exists() and not final.exists():
            backup.rename(final)
        if isinstance(exc, OSError) and exc.errno in (errno.EBUSY, errno.EXDEV, errno.EROFS, errno.EACCES):
            raise OutputError(f"Cannot put the output in place at {final}: {exc.strerror}.") from None
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def seal(staging_dir: Path, manifest: Manifest) -> Manifest:
    """Hash every file in ``staging_dir`` into the manifest and write ``manifest.json``."""
    manifest.files = hash_directory(staging_dir)
    (staging_dir / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return manifest
