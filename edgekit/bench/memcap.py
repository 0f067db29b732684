"""A memory cap for one benchmark worker: a cgroup where this machine lets us make one,
else the address-space limit every Linux process may set on itself.

A cgroup's memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) counts what a
device's RAM holds, resident pages and page cache, and the kernel OOM-kills a process that
goes over it, as a phone or a board would. ``RLIMIT_AS`` counts reserved virtual memory
too (ONNX Runtime reserves about 4x what it touches), so it is stricter than the device and
only the fallback. The results name which one was used.

The harness makes a fresh cgroup per worker and removes it after; the worker moves itself
into it first thing, before anything big is loaded. A cgroup is not charged for pages
another cgroup read first (shared libraries already in the page cache), so the harness
also holds the worker's peak resident memory to the cap.
"""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupCap:
    path: Path  # the worker's own cgroup folder
    version: int  # 1 or 2
    limit_mb: int

    @property
    def label(self) -> str:
        knob = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        return f"memory capped at {self.limit_mb} MB (cgroup v{self.version} {knob})"

    def oom_killed(self) -> bool:
        """Did the kernel kill something in this cgroup for going over the cap?"""
        name, key = ("memory.events", "oom_kill") if self.version == 2 else ("memory.oom_control", "oom_kill")
        try:
            for line in (self.path / name).read_text().splitlines():
                field, _, value = line.partition(" ")
                if field == key:
                    return int(value) > 0
        except (OSError, ValueError):
            pass
        return False

    def remove(self) -> None:
        with contextlib.suppress(OSError):  # still populated (a stray child) or gone: leave it
            self.path.rmdir()


def address_space_label(limit_mb: int) -> str:
    return f"address space capped at {limit_mb} MB (RLIMIT_AS: stricter than RAM)"


def _own_cgroup(version: int) -> Path | None:
    """This process's cgroup folder for the memory controller, if the hierarchy is mounted."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, relative = line.split(":", 2)
        if version == 1 and "memory" in controllers.split(","):
            return CGROUP_ROOT / "memory" / relative.lstrip("/")
        if version == 2 and controllers == "":
            base = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").is_file() else CGROUP_ROOT / "unified"
            return base / relative.lstrip("/")
    return None


def _try_make(version: int, limit_mb: int, name: str) -> CgroupCap | None:
    parent = _own_cgroup(version)
    if parent is None or not parent.is_dir():
        return None
    if version == 2:
        try:  # the memory controller must be enabled for children of this cgroup
            if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                return None
        except OSError:
            return None
    path = parent / name
    knob = "memory.max" if version == 2 else "memory.limit_in_bytes"
    try:
        path.mkdir()
        (path / knob).write_text(str(limit_mb * 2**20))
        if version == 1 and (path / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
            (path / "memory.memsw.limit_in_bytes").write_text(str(limit_mb * 2**20))
    except OSError:  # not ours to make (no root, no delegation): the caller falls back
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return CgroupCap(path, version, limit_mb)


def make_cgroup_cap(limit_mb: int, name: str) -> CgroupCap | None:
    """A new cgroup limited to ``limit_mb``, or None where this process may not make one
    (no root, no delegation, controller not enabled: the common case outside containers)."""
    for version in (2, 1):
        cap = _try_make(version, limit_mb, name)
        if cap is not None:
            return cap
    return None


def join_cgroup(path: str) -> None:
    """Move this process into the cgroup at ``path`` (called by the worker on itself)."""
    Path(path, "cgroup.procs").write_text(str(os.getpid()))


def cap_address_space(limit_mb: int) -> None:
    cap = limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
