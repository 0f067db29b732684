"""Trials as Ray tasks on an existing cluster (``edgekit optimize --ray ADDRESS|auto``).

Same protocol as ``LocalExecutor``: ``run(specs)`` yields one ``TrialOutcome`` per spec as each
finishes (``ray.wait``), in any order; closing the iterator starts nothing more.

What runs where:

- On each node, a trial: ``run_trial(spec)`` (distillation, export, quantization, the gate and
  convert's own benchmark), one at a time per node, with all of that node's CPUs.
- On the driver (the machine running ``edgekit optimize``): the plan, the pruning, and the final
  interleaved benchmark of the survivors. That benchmark stays local on purpose: latencies taken
  on different machines are not comparable, and the recommendation rests on that one run.

Trials read ``--model``/``--data``/``--train-data`` and write ``--out`` by absolute path on the
node that runs them, so on a cluster of several machines those paths must name the same shared
filesystem everywhere (NFS, a cluster filesystem). The driver checks each finished trial's
artifacts are visible to it and says so when they are not. On one machine (a head on loopback)
nothing needs sharing.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.optimize.outcome import TrialOutcome, describe_failure
from edgekit.optimize.trials import TrialRecord, TrialSpec, run_trial

# A node lost mid-trial (preempted, rebooted, out of memory) costs a retry elsewhere, not the
# search. Safe: ``run_trial`` writes its record atomically and convert resumes from its own cache
# and distillation checkpoints (on the shared --out) instead of trusting anything half-written.
NODE_LOSS_RETRIES = 2
WAIT_S = 30.0  # how often the driver looks at the cluster while waiting (a cluster left without CPUs)
PROBE_TIMEOUT_S = 5.0

TrialFunction = Callable[[TrialSpec], Any]


class ClusterError(EdgekitError):
    """The Ray cluster cannot be used: not installed, not reachable, no CPUs, mismatched nodes."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ClusterError('--ray needs the ray package, which is not installed: pip install "edgekit[cluster]" '
                           "(driver and every node), or drop --ray to run the trials here.") from exc  # fmt: skip
    return ray


def _probe(address: str) -> None:
    """Fail in seconds when nothing listens at host:port (ray.init would retry for minutes)."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "") or "auto"
    if address == "auto":
        return  # ray.init finds a local cluster started with `ray start`, or raises ConnectionError at once
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray {address!r} is not a Ray address: pass HOST:PORT (e.g. 10.0.0.5:6379) or auto.")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise _no_cluster(address, exc) from exc


def _no_cluster(address: str, exc: BaseException) -> ClusterError:
    where = "on this machine or in RAY_ADDRESS (--ray auto)" if address == "auto" else f"at {address}"
    return ClusterError(f"no Ray cluster {where} ({exc}): start one with `ray start --head` "
                        "(and `ray start --address=HEAD:6379` on the other machines), or drop --ray.")  # fmt: skip


def _toolchain() -> dict[str, str]:
    """What makes a trial's result depend on the machine's software: edgekit and its conversion stack."""
    from edgekit import __version__
    from edgekit.convert.toolchain import toolchain

    return {"edgekit": __version__, **toolchain()}


def _trial_task(trial: TrialFunction, spec: TrialSpec, driver_toolchain: dict[str, str] | None) -> tuple[Any, str]:
    """Runs on a node: refuse to build with other library versions than the driver's (the trial's
    cache key, taken on the driver, would then name a different artifact), then run the trial."""
    import ray

    node = ray.util.get_node_ip_address()
    if driver_toolchain is not None:
        here = _toolchain()
        differ = sorted(k for k in driver_toolchain.keys() | here.keys() if driver_toolchain.get(k) != here.get(k))
        if differ:
            found = ", ".join(f"{k} {here.get(k)} (driver: {driver_toolchain.get(k)})" for k in differ)
            raise ClusterError(f"node {node} has other versions than the driver: {found}. Install the same "
                               "edgekit and libraries on every node (pip install -c constraints.txt ...).")  # fmt: skip
    return trial(spec), node


def _trial_cpus(ray: Any, address: str) -> tuple[int, int]:
    """CPUs one trial asks for, and how many trials the cluster runs at once.

    A trial asks for as many CPUs as the smallest node has, so it gets a whole node: distillation
    uses every core, and convert's own benchmark must not share the machine with another trial.
    With nodes of equal size that is exactly one trial per node. (A custom resource would need
    every node started with it; this needs nothing. A node with twice the smallest's CPUs would
    run two trials at once: start every node with the same `--num-cpus` to avoid it.)"""
    counts = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    counts = [c for c in counts if c >= 1]  # a head started with --num-cpus=0 runs no trial
    if not counts:
        raise ClusterError(f"the Ray cluster ({address}) has no node with CPUs: add one with "
                           "`ray start --address=HEAD:6379 --num-cpus=N` on a worker machine.")  # fmt: skip
    need = min(counts)
    return need, sum(c // need for c in counts)


class RayExecutor:
    """Trials as Ray tasks, one per node at a time, results streamed back as they finish."""

    def __init__(self, address: str, trial: TrialFunction = run_trial, check_versions: bool = True,
                 fresh_process: bool = True) -> None:  # fmt: skip
        self.address = address
        self.trial = trial  # module-level and picklable; tests pass their own
        self.ray = _import_ray()
        _probe(address)
        self._owns_connection = not self.ray.is_initialized()
        # ray.init installs its own SIGTERM handler in the driver; close() gives the caller's back.
        self._sigterm = signal.getsignal(signal.SIGTERM)
        if self._owns_connection:
            try:
                # log_to_driver=False: trials print their own progress on their node; the driver's
                # console carries only the search's lines.
                self.ray.init(address=address, log_to_driver=False)
            except ConnectionError as exc:
                raise _no_cluster(address, exc) from exc
            except RuntimeError as exc:  # e.g. another Ray or Python version than the cluster's
                raise ClusterError(f"could not join the Ray cluster at {address}: {exc} Install the same ray and "
                                   "Python on the driver and on every node.") from exc  # fmt: skip
        self._toolchain = _toolchain() if check_versions else None
        # A fresh worker process per trial (max_calls=1): what a trial leaves in memory (models, the
        # allocator's caches) is freed before the node's next trial, which needs the whole node.
        # It costs a worker start (seconds) per trial of minutes; tests of tiny trials reuse workers.
        self._remote = self.ray.remote(max_calls=1 if fresh_process else 0)(_trial_task)

    def run(self, specs: Sequence[TrialSpec]) -> Iterator[TrialOutcome]:
        ray = self.ray
        cpus, slots = _trial_cpus(ray, self.address)
        options = {"num_cpus": cpus, "max_retries": NODE_LOSS_RETRIES, "retry_exceptions": False}
        queue, running = list(specs), {}
        try:
            while queue or running:
                # Submit no more than can run: what is submitted is running, so closing the
                # iterator leaves nothing queued on the cluster.
                while queue and len(running) < slots:
                    spec = queue.pop(0)
                    running[self._remote.options(**options).remote(self.trial, spec, self._toolchain)] = spec
                done, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
                if not done:
                    _trial_cpus(ray, self.address)  # raises when no node with CPUs is left
                    continue
                spec = running.pop(done[0])
                yield self._outcome(spec, done[0])
        finally:
            # The search stopped reading (time budget) or failed: stop the trials still running.
            # Their results would not be read, and one left on the driver's machine would skew the
            # final benchmark that runs there next. Nothing is lost that a rerun trusts.
            for ref in running:
                ray.cancel(ref, force=True)

    def _outcome(self, spec: TrialSpec, ref: Any) -> TrialOutcome:
        ray = self.ray
        try:
            record, node = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the trial raised: its own exception, as LocalExecutor reports it
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            return TrialOutcome(spec, None, describe_failure(cause))
        except ray.exceptions.RayError as exc:  # node or worker lost beyond the retries
            first = (str(exc).strip().splitlines() or [""])[0]
            return TrialOutcome(spec, None, f"{type(exc).__name__}: {first} (its node or worker was lost; "
                                f"tried {NODE_LOSS_RETRIES + 1} times)")  # fmt: skip
        if isinstance(record, TrialRecord):
            missing = _missing_artifacts(spec, record)
            if missing:
                return TrialOutcome(spec, None, f"the trial ran on node {node} and wrote {missing}, which this "
                                    "machine cannot see: --out (and --model, --data, --train-data) must be on a "
                                    "filesystem shared by every node, at the same path.")  # fmt: skip
        return TrialOutcome(spec, record)

    def close(self) -> None:
        if self._owns_connection and self.ray.is_initialized():
            self.ray.shutdown()
            if self._sigterm is not None:
                signal.signal(signal.SIGTERM, self._sigterm)
        self._owns_connection = False


def _missing_artifacts(spec: TrialSpec, record: TrialRecord) -> str | None:
    root = Path(spec.out)
    for result in record.variants:
        folder = root / result.location
        if not (folder / "manifest.json").is_file():
            return str(folder)
    return None
