"""`edgekit optimize --ray`: trials as Ray tasks, against a REAL Ray head this module starts on
loopback (one for the whole module: Ray takes seconds to start).

The head runs as `ray start --head --block` in its own session; teardown kills that session's
processes by id, so a test never stops a Ray cluster it did not start (`ray stop` would stop
every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_optimize import _settings, train_tsv  # noqa: F401 (a fixture: the local search tests' training data)

pytest.importorskip("ray", reason='ray is not installed: pip install "edgekit[cluster]" to test --ray')

from edgekit.errors import DataError, EdgekitError  # noqa: E402
from edgekit.optimize.ray_executor import ClusterError, RayExecutor  # noqa: E402
from edgekit.optimize.trials import TrialRecord, TrialSpec, VariantResult  # noqa: E402

HEAD_CPUS = 2
ONE = ["onnx-fp32"]
START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the session the head was started in (GCS, raylet, workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, signal.SIGKILL)  # the head's process group (where /proc is missing, all we can do)
    for stat in Path("/proc").glob("[0-9]*/stat"):  # workers run in process groups of their own
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:  # after "(comm)": state, ppid, pgrp, session
                os.kill(int(stat.parent.name), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


@pytest.fixture(scope="module")
def ray_head():
    """The address of a Ray head started for this module, with HEAD_CPUS CPUs."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ek-ray-")  # short: Ray's socket paths live under it (108-byte limit)
    log = open(Path(temp) / "head.log", "w")  # noqa: SIM115 (closed in teardown)
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address=127.0.0.1",
               f"--port={port}", f"--num-cpus={HEAD_CPUS}", "--object-store-memory=100000000",  # 100 MB: tiny objects
               "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}", "--block"]  # fmt: skip
    # The same environment as the tests (offline hub, private caches): Ray's workers inherit the head's.
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if head.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"the Ray head did not start:\n{(Path(temp) / 'head.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        _kill_session(head.pid)  # start_new_session: the session id is the head's pid
        head.wait(timeout=30)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def executor(ray_head):
    before = signal.getsignal(signal.SIGTERM)
    executor = RayExecutor(ray_head, fresh_process=False)  # these trials take milliseconds: reuse the workers
    yield executor
    executor.close()
    # ray.init replaces the driver's SIGTERM handler; a library must give it back.
    assert signal.getsignal(signal.SIGTERM) == before


def _spec(name: str, out: Path) -> TrialSpec:
    return TrialSpec(name=name, model=name, stage="teacher", fields_json="{}", out=str(out), key=f"key-{name}")


def where_it_ran(spec: TrialSpec) -> dict[str, object]:
    """A trial function: reports the process and thread budget it ran with, or fails as asked."""
    Path(spec.out, spec.name).write_text("ran")
    if spec.name.startswith("bad"):
        raise DataError(f"{spec.name}: the trial's data is unusable")
    if spec.name.startswith("crash"):
        raise ZeroDivisionError("an internal bug")
    return {"name": spec.name, "pid": os.getpid(), "threads": os.environ.get("OMP_NUM_THREADS")}


@pytest.fixture(autouse=True, scope="module")
def _ship_test_functions_by_value():
    """Ray's workers cannot import this test module: send its functions by value."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_trials_run_as_ray_tasks_with_a_whole_node_and_errors_come_back_per_trial(executor, tmp_path):
    executor.trial = where_it_ran
    names = ["one", "bad-two", "three", "crash-four"]
    outcomes = {o.spec.name: o for o in executor.run([_spec(n, tmp_path) for n in names])}

    assert sorted(outcomes) == sorted(names)
    for name in ("one", "three"):
        assert outcomes[name].error is None
        assert outcomes[name].record["name"] == name
        assert outcomes[name].record["pid"] != os.getpid(), "ran in a Ray worker, not in the driver"
        assert outcomes[name].record["threads"] == str(HEAD_CPUS), "a trial gets the whole node's CPUs"
    assert outcomes["bad-two"].record is None
    assert outcomes["bad-two"].error == "DataError: bad-two: the trial's data is unusable"
    assert outcomes["crash-four"].record is None
    assert outcomes["crash-four"].error.startswith("ZeroDivisionError: an internal bug")


def test_closing_the_iterator_starts_nothing_more(executor, tmp_path):
    executor.trial = where_it_ran
    outcomes = executor.run([_spec(n, tmp_path) for n in ("first", "second", "third")])
    first = next(outcomes)
    outcomes.close()
    time.sleep(2)  # a trial wrongly left queued would have run by now
    assert first.error is None
    ran = sorted(p.name for p in tmp_path.iterdir())
    assert ran == [first.spec.name], f"trials started after the search stopped reading: {ran}"


def test_a_node_with_other_library_versions_refuses_the_trial(executor, tmp_path):
    executor.trial = where_it_ran
    driver = dict(executor._toolchain)
    executor._toolchain = {**driver, "torch": "0.0.1"}  # as if the driver ran another torch than the node
    try:
        (outcome,) = executor.run([_spec("versions", tmp_path)])
    finally:
        executor._toolchain = driver
    assert outcome.record is None and not (tmp_path / "versions").exists(), "refused before the trial ran"
    assert f"has other versions than the driver: torch {driver['torch']} (driver: 0.0.1)" in outcome.error
    assert "constraints.txt" in outcome.error


def writes_a_record_elsewhere(spec: TrialSpec) -> TrialRecord:
    """A trial function whose artifact the driver cannot see (as on a node without the shared --out)."""
    result = VariantResult("onnx-fp32", "onnxruntime", "fp32", 0.9, 1.0, True, 1.0, None, "runs/elsewhere")
    return TrialRecord(spec.key, spec.name, spec.model, spec.stage, [result], 0.9, None, 1.0, False)


def test_a_trial_whose_artifacts_the_driver_cannot_see_says_to_share_out(executor, tmp_path):
    executor.trial = writes_a_record_elsewhere
    (outcome,) = executor.run([_spec("unshared", tmp_path)])
    assert outcome.record is None
    assert f"wrote {tmp_path / 'runs' / 'elsewhere'}, which this machine cannot see" in outcome.error
    assert "shared by every node" in outcome.error


def test_an_address_where_no_cluster_answers_fails_fast_and_says_what_to_do():
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"no Ray cluster at 127\.0\.0\.1:\d+.*ray start --head.*drop --ray"):
        RayExecutor(f"127.0.0.1:{_free_port()}")
    assert time.monotonic() - started < 30, "must not wait for Ray's minutes of connection retries"


@pytest.mark.parametrize("address", ["not-an-address", "host:port"])
def test_a_malformed_address_is_refused(address):
    with pytest.raises(ClusterError, match="not a Ray address"):
        RayExecutor(address)


def test_without_ray_installed_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ClusterError, match=r'pip install "edgekit\[cluster\]"') as raised:
        RayExecutor("127.0.0.1:6379")
    assert isinstance(raised.value, EdgekitError)


# ------------------------------------------------------------------ the search through Ray


def _comparable(record) -> dict[str, object]:
    """A trial record without what differs between two runs of the same trial: its key (it hashes
    the output folder), wall times, and whether convert's output was reused."""
    document = record.to_dict()
    for name in ("key", "wall_seconds", "convert_reused"):
        document.pop(name)
    if document["distillation"]:
        document["distillation"].pop("train_seconds", None)
    return document


def test_a_search_on_ray_gives_the_same_trial_records_as_a_local_one(
    ray_head,
    tmp_path,
    trained_tiny_dir,
    sentiment_eval,
    train_tsv,  # noqa: F811 (the fixture imported from test_optimize)
):
    from edgekit.optimize.search import run_search

    # One variant keeps it quick: the teacher's trial and the 1-layer student's (distillation included).
    local = run_search(_settings(trained_tiny_dir, sentiment_eval, train_tsv, tmp_path / "local", variants=ONE))
    remote = run_search(_settings(trained_tiny_dir, sentiment_eval, train_tsv, tmp_path / "ray", variants=ONE,
                                  ray=ray_head))  # fmt: skip

    assert {n: e.status for n, e in remote.plan.entries.items()} == {"teacher": "done", "L1-fp32": "done"}
    assert {n: _comparable(r) for n, r in _records(remote).items()} == {
        n: _comparable(r) for n, r in _records(local).items()
    }
    assert remote.plan.entries["L1-fp32"].record.distillation["student_layers"] == 1
    built = {p.parent.name for p in (tmp_path / "ray" / "runs").glob("*/manifest.json")}
    assert built == {"teacher", "L1-fp32"}, "the trials' artifacts are in the Ray run's --out"
    assert remote.recommended is not None and remote.recommended.name == local.recommended.name


def _records(result) -> dict[str, object]:
    return {name: entry.record for name, entry in result.plan.entries.items()}
