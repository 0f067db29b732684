"""One writer per destination (an flock beside it), and the temporary folders killed runs left."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # POSIX only; Windows writers run unlocked (see the module docstring)
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]
from edgekit.outputs.ownership import _TEMP_INFIXES, OutputError

# ---------------------------------------------------------------------------------------------
# Locking and stale temporary folders


def lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


def _holder(final: Path) -> str:
    try:
        return lock_path(final).read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def _busy(final: Path) -> OutputError:
    return OutputError(
        f"Another edgekit run is writing {final.name} (pid {_holder(final)}) in {final.parent}. Wait for it to "
        "finish, or choose another output folder."
    )


def _check_not_locked(final: Path) -> None:
    """Fail early if another run holds the destination's lock (it is taken for real later)."""
    if fcntl is None or not lock_path(final).is_file():
        return
    try:
        handle = lock_path(final).open("r")
    except OSError:
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(final) from None
        except OSError:
            return  # a filesystem without flock: the real attempt decides
        fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def destination_lock(final: Path) -> Iterator[bool]:
    """Hold ``.NAME.lock`` beside ``final``; yields whether a real lock is held.

    Fails at once when another process holds it: waiting would only lead to writing the same
    output twice. The lock file is removed on release, while still locked; a run that opened it
    just before checks that the path still names the file it locked, and otherwise tries again.
    """
    if fcntl is None:
        yield False
        return
    path = lock_path(final)
    handle = _acquire(path, final)
    if handle is None:  # a filesystem without flock (some network ones): write unlocked rather than not at all
        yield False
        return
    try:
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield True
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _acquire(path: Path, final: Path) -> Any:
    for _ in range(5):
        try:
            handle = path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise OutputError(
                f"Cannot create the lock file {path}: {exc.strerror}; choose a writable folder."
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise _busy(final) from None
        except OSError:
            handle.close()
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            handle.truncate(0)
            return handle
        handle.close()  # the previous holder removed this file as we opened it: lock the new one
    raise _busy(final)


def temp_folders(final: Path) -> list[Path]:
    """Temporary folders of ``final`` (``.NAME.tmp-*``, ``.NAME.old-*``) beside it."""
    prefixes = tuple(f".{final.name}{infix}" for infix in _TEMP_INFIXES)
    if not final.parent.is_dir():
        return []
    return [p for p in final.parent.iterdir() if p.name.startswith(prefixes) and p.is_dir() and not p.is_symlink()]


def remove_stale_temp_folders(final: Path, locked: bool) -> list[Path]:
    """Remove temporary folders left by runs that were killed before they could clean up.

    Under the lock every such folder is stale (a live writer would hold the lock); without one,
    only those whose owner (the pid in the name) is no longer running on this machine.
    """
    removed = []
    for folder in temp_folders(final):
        if locked or _owner_gone(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _owner_gone(folder: Path) -> bool:
    """Whether the pid in a temporary folder's name (``.NAME.tmp-PID-XXXX``) is no longer running."""
    pid_text = folder.name.rsplit(".tmp-", 1)[-1].rsplit(".old-", 1)[-1].split("-")[0]
    if not pid_text.isdigit() or os.name == "nt":
        return False  # unknown owner, or no safe liveness probe (os.kill on Windows terminates)
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
