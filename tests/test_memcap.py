"""The worker memory cap's cgroup discovery and bookkeeping, on fake /proc and cgroup trees
(the real kernel path is exercised in test_bench_shapes.py where this process may use it)."""

from pathlib import Path

from edgekit.bench.memcap import CgroupCap, _try_make, own_cgroup_dirs


def _fake_proc(tmp_path: Path, cgroup: str, mountinfo: str) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(mountinfo)
    return proc


def test_paths_come_from_mountinfo_including_a_containers_view(tmp_path):
    memory, unified = tmp_path / "memory", tmp_path / "unified"
    proc = _fake_proc(
        tmp_path,
        "4:memory:/docker/abc\n3:cpu:/docker/abc\n0::/user.slice/session-1.scope\n",
        # a container: its memory hierarchy is mounted with the container's own cgroup as root
        f"31 23 0:28 /docker/abc {memory} rw,relatime - cgroup cgroup rw,memory\n"
        f"32 23 0:29 / {unified} rw,relatime - cgroup2 cgroup2 rw\n"
        f"33 23 0:30 / {tmp_path / 'cpu'} rw,relatime - cgroup cgroup rw,cpu\n",
    )
    found = own_cgroup_dirs(proc)
    assert found[1] == memory, "the container's root is its own cgroup, not /docker/abc below it"
    assert found[2] == (unified / "user.slice" / "session-1.scope").resolve()
    assert own_cgroup_dirs(tmp_path / "no-proc") == {}, "no /proc (macOS): no cgroups, the fallback applies"


def test_v2_needs_the_memory_controller_enabled_for_children(tmp_path):
    parent = tmp_path / "scope"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("cpu io\n")
    assert _try_make(2, parent, 256, "worker") is None and not (parent / "worker").exists()
    (parent / "cgroup.subtree_control").write_text("cpu io memory\n")
    cap = _try_make(2, parent, 256, "worker")
    assert cap is not None and cap.version == 2
    assert (cap.path / "memory.max").read_text() == str(256 * 2**20)
    assert (cap.path / "memory.swap.max").read_text() == "0", "swap is closed too"
    assert cap.label == "memory capped at 256 MB (cgroup v2 memory.max)"


def test_oom_verdicts_for_both_versions(tmp_path):
    v2 = CgroupCap(tmp_path / "v2", 2, 64)
    v2.path.mkdir()
    (v2.path / "memory.events").write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
    assert not v2.oom_killed()
    (v2.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert v2.oom_killed()
    v1 = CgroupCap(tmp_path / "v1", 1, 64, swap_closed=False)
    v1.path.mkdir()
    (v1.path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")  # a kernel before 4.13
    (v1.path / "memory.failcnt").write_text("0\n")
    assert not v1.oom_killed()
    (v1.path / "memory.failcnt").write_text("12\n")
    assert v1.oom_killed(), "older kernels: a hit limit counts"
    assert v1.label.endswith("; swap not limited)")
