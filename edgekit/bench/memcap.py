"""A memory cap for one benchmark worker: a cgroup where this machine lets us make one,
else the address-space limit every Linux process may set on itself.

A cgroup's memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) counts what a
device's RAM holds, and the kernel OOM-kills a process that goes over it, as a phone or a
board would. Swap is closed as far as the kernel lets us (v2 ``memory.swap.max`` 0; v1 the
memsw limit, else ``memory.swappiness`` 0), and the label says when it could not be.

Where cgroups can be made: the cgroup v1 memory hierarchy as root (this machine), or a
cgroup v2 parent whose ``cgroup.subtree_control`` already enables ``memory``. On a typical
cgroup v2 system (systemd, containers) the process sits in a cgroup that holds processes,
where the kernel refuses to enable controllers for children; there, when systemd runs the host,
the worker starts in a transient ``systemd-run --scope`` with ``MemoryMax`` and ``MemorySwapMax=0``
(``systemd_scope_prefix``). Without either, the fallback applies:
``RLIMIT_AS``, which counts reserved virtual memory too (ONNX Runtime reserves about 4x
what it touches) and is stricter than the device. The results name which one was used.

The harness makes a fresh cgroup per worker and removes it after (killing anything left in
it); the worker moves itself into it first thing. Pages charged before the move, or read
first by another cgroup (shared libraries already cached), are not charged to it, so the
harness also holds the worker's peak resident memory to the cap.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC_SELF = Path("/proc/self")


@dataclass(frozen=True)
class CgroupCap:
    path: Path  # the worker's own cgroup folder
    version: int  # 1 or 2
    limit_mb: int
    swap_closed: bool = True

    @property
    def label(self) -> str:
        knob = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        swap = "" if self.swap_closed else "; swap not limited"
        return f"memory capped at {self.limit_mb} MB (cgroup v{self.version} {knob}{swap})"

    def oom_killed(self) -> bool:
        """Did the kernel kill or refuse memory to something in this cgroup over the cap?"""
        if self.version == 2:
            events = _key_values(self.path / "memory.events")
            return events.get("oom_kill", 0) > 0 or events.get("max", 0) > 0
        control = _key_values(self.path / "memory.oom_control")  # oom_kill: kernels from 4.13
        return control.get("oom_kill", 0) > 0 or _int_file(self.path / "memory.failcnt") > 0

    def remove(self) -> bool:
        """Kill what is left in the cgroup (a worker's stray child), then remove it."""
        for _ in range(20):
            for pid in _int_lines(self.path / "cgroup.procs"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError:  # busy until the killed processes are reaped
                time.sleep(0.05)
        return False


def address_space_label(limit_mb: int) -> str:
    return f"address space capped at {limit_mb} MB (RLIMIT_AS: stricter than RAM)"


def _key_values(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    except OSError:
        pass
    return values


def _int_file(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _int_lines(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except (OSError, ValueError):
        return []


def own_cgroup_dirs(proc: Path = PROC_SELF) -> dict[int, Path]:
    """This process's cgroup folder per version ({1: memory hierarchy, 2: unified}).

    Mount points come from ``mountinfo`` (a container's view may put them anywhere, and its
    cgroup paths are relative to the mount's root, not to the host's).
    """
    try:
        memberships = (proc / "cgroup").read_text().splitlines()
        mounts = (proc / "mountinfo").read_text().splitlines()
    except OSError:
        return {}
    mount_of: dict[int, tuple[str, Path]] = {}  # version -> (root inside the hierarchy, mount point)
    for line in mounts:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fstype, *rest = line.split(" - ", 1)[1].split()
        options = rest[1].split(",") if len(rest) > 1 else []
        if fstype == "cgroup2":
            mount_of.setdefault(2, (fields[3], Path(fields[4])))
        elif fstype == "cgroup" and "memory" in options:
            mount_of.setdefault(1, (fields[3], Path(fields[4])))
    found: dict[int, Path] = {}
    for line in memberships:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, relative = parts
        version = 2 if controllers == "" else 1 if "memory" in controllers.split(",") else None
        if version is None or version not in mount_of:
            continue
        root, mount_point = mount_of[version]
        inside = os.path.relpath(relative, root) if relative.startswith(root) else relative.lstrip("/")
        found[version] = (mount_point / inside).resolve() if inside != "." else mount_point
    return found


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def _try_make(version: int, parent: Path, limit_mb: int, name: str) -> CgroupCap | None:
    if not parent.is_dir():
        return None
    if version == 2:
        try:  # the memory controller must already be enabled for this cgroup's children
            if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                return None
        except OSError:
            return None
    path = parent / name
    limit = str(limit_mb * 2**20)
    try:
        path.mkdir()
    except OSError:
        return None
    if not _write(path / ("memory.max" if version == 2 else "memory.limit_in_bytes"), limit):
        with contextlib.suppress(OSError):  # made but not ours to limit: leave no trace
            path.rmdir()
        return None
    if version == 2:
        swap_closed = _write(path / "memory.swap.max", "0") or not (path / "memory.swap.max").exists()
    else:
        swap_closed = _write(path / "memory.memsw.limit_in_bytes", limit) or _write(path / "memory.swappiness", "0")
    return CgroupCap(path, version, limit_mb, swap_closed)


def make_cgroup_cap(limit_mb: int, name: str, proc: Path = PROC_SELF) -> CgroupCap | None:
    """A new cgroup limited to ``limit_mb``, or None where this process may not make one."""
    for version, parent in sorted(own_cgroup_dirs(proc).items(), reverse=True):  # v2 first
        cap = _try_make(version, parent, limit_mb, name)
        if cap is not None:
            return cap
    return None


def join_cgroup(path: str) -> bool:
    """Move this process into the cgroup at ``path``; False when the kernel refuses."""
    return _write(Path(path, "cgroup.procs"), str(os.getpid()))


def cap_address_space(limit_mb: int) -> str | None:
    """Cap this process's address space; None where the OS does not enforce it (macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    cap = limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return address_space_label(limit_mb)


# --- systemd: on a cgroup-v2 host run by systemd, a process may not make cgroups itself, but it may ask
# the service manager for a transient scope with a memory limit (`systemd-run --scope`). That caps what
# RAM holds, as a cgroup made here would, instead of RLIMIT_AS's reserved address space.
_scope_probe: dict[tuple[int, bool], bool] = {}


def systemd_scope_command(limit_mb: int, user: bool) -> list[str]:
    """The prefix that starts a command in a transient scope capped at ``limit_mb``, swap closed."""
    return [
        "systemd-run", *(["--user"] if user else []), "--scope", "--quiet", "--collect",
        "-p", f"MemoryMax={limit_mb}M", "-p", "MemorySwapMax=0", "--",
    ]  # fmt: skip


def systemd_scope_label(limit_mb: int) -> str:
    return f"memory capped at {limit_mb} MB (systemd-run scope MemoryMax, MemorySwapMax=0)"


def systemd_scope_prefix(limit_mb: int, run: Callable[[list[str]], int] | None = None) -> list[str] | None:
    """``systemd_scope_command`` where systemd will make the scope here, else None (then RLIMIT_AS).

    Needs ``systemd-run``, a cgroup-v2 hierarchy and a service manager that answers: the user's
    (``--user``) for an ordinary user, the system's for root. A cheap probe (``true`` in such a
    scope) decides, once per process; containers and hosts without systemd as init fail it.
    """
    import shutil

    if not sys.platform.startswith("linux") or shutil.which("systemd-run") is None:
        return None
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v1: make_cgroup_cap's job
        return None
    user = os.geteuid() != 0
    key = (limit_mb, user)
    if key not in _scope_probe:
        run = run or _probe
        _scope_probe[key] = run([*systemd_scope_command(limit_mb, user), "true"]) == 0
    return systemd_scope_command(limit_mb, user) if _scope_probe[key] else None


def _probe(command: list[str]) -> int:
    import subprocess

    try:
        return subprocess.run(command, capture_output=True, timeout=15).returncode
    except (OSError, subprocess.SubprocessError):
        return 1
