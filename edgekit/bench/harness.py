"""Benchmark variants: each in its own process, alternated variant by variant over rounds.

Alternating spreads slow drifts of the machine (thermal, other load) over all variants
instead of charging them to whichever ran last; fresh processes keep one engine's thread
pool from slowing the next. Accuracy is computed once, in the first round.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.memcap import make_cgroup_cap, systemd_scope_label, systemd_scope_prefix
from edgekit.bench.samples import raw_samples, usage_summary
from edgekit.bench.stats import LatencyStats
from edgekit.bench.worker import WorkerSpec
from edgekit.data import TextDataset
from edgekit.errors import EdgekitError
from edgekit.metrics import accuracy, agreement, macro_f1

_WORKER_TIMEOUT_S = 1800
_worker_ids = itertools.count()


class BenchError(EdgekitError):
    """A variant could not be benchmarked."""


class DoesNotFitError(BenchError):
    """A variant went over the target's emulated memory: a finding about it, not a failure of the run."""


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "artifact" or "pytorch"
    path: Path
    env: tuple[tuple[str, str], ...] = ()  # extra environment for this variant's worker (emulation)
    max_length: int | None = None  # PyTorch baseline: truncate like the artifacts it is compared with


@dataclass(frozen=True)
class BenchSettings:
    threads: int
    runs: int = 200
    warmup: int = 20
    rounds: int = 1
    seed: int = 0
    eval_batch_size: int = 1
    batch_sizes: tuple[int, ...] = (1,)  # above 1: whole-batch latency and throughput
    sequence_lengths: tuple[int, ...] = ()  # token lengths timed at batch 1
    shape_runs: int = 0  # timed runs per shape and per batch size; 0 skips both
    cpu_affinity: tuple[int, ...] | None = None  # emulation
    memory_cap_mb: int | None = None  # emulation
    # The profile whose providers/devices the artifacts load with: this machine's ("host") when
    # a target is emulated, so no accelerator of the host runs an emulated CPU-only device.
    runtime_target: str | dict = "host"
    mode: str = "latency"  # or "throughput": `concurrency` requests at once in each worker
    concurrency: int = 1


def latency_inputs(data: TextDataset, runs: int, seed: int) -> list[str]:
    """``runs`` texts drawn from the data (all lengths), repeating the data if it is short."""
    sample = data.sample(runs, seed=seed).texts
    repeated = (sample * (runs // len(sample) + 1))[:runs]
    return repeated


def _run_worker(spec: WorkerSpec, extra_env: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """One worker process; under a memory cap, in a cgroup of its own where one can be made."""
    cap = make_cgroup_cap(spec.memory_cap_mb, f"edgekit-bench-{os.getpid()}-{next(_worker_ids)}") if (
        spec.memory_cap_mb) else None  # fmt: skip
    scope = systemd_scope_prefix(spec.memory_cap_mb) if spec.memory_cap_mb and cap is None else None
    if cap is not None:
        spec = replace(spec, memory_cgroup=str(cap.path), memory_cap_label=cap.label)
    elif scope is not None:
        spec = replace(spec, memory_scope=True, memory_cap_label=systemd_scope_label(spec.memory_cap_mb))
    try:
        result = _spawn(spec, extra_env, scope or [])
    except BenchError as exc:
        if (cap is not None and cap.oom_killed()) or (scope and "killed by SIGKILL" in str(exc)):
            raise DoesNotFitError(
                f"Variant '{spec.variant}' went over the target's emulated memory of {spec.memory_cap_mb} MB "
                f"({cap.label}): the kernel stopped it, as the device would. The model does not fit; try a "
                "smaller variant (INT8, a distilled student)."
            ) from None
        raise exc from None
    finally:
        if cap is not None and not cap.remove():
            warnings.warn(f"Could not remove the benchmark cgroup {cap.path}; remove it by hand.", stacklevel=2)
    # A cgroup does not charge pages another cgroup read first (the engine's shared libraries),
    # so a worker can stay under it with more resident memory than the cap: judge that too.
    if spec.memory_cap_mb and result["peak_rss_mb"] > spec.memory_cap_mb:
        raise DoesNotFitError(
            f"Variant '{spec.variant}' peaked at {result['peak_rss_mb']:.0f} MB resident, over the target's emulated "
            f"memory of {spec.memory_cap_mb} MB: it does not fit. Try a smaller variant (INT8, a distilled student)."
        )
    return result


def _spawn(spec: WorkerSpec, extra_env: tuple[tuple[str, str], ...], prefix: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as scratch:
        spec_path, out_path = Path(scratch) / "spec.json", Path(scratch) / "out.json"
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **dict(extra_env)}
        spec_path.write_text(json.dumps(asdict(replace(spec, spawned_at=time.time()))))
        try:
            proc = subprocess.run(
                [*prefix, sys.executable, "-m", "edgekit.bench.worker", str(spec_path), str(out_path)],
                capture_output=True,
                text=True,
                env=env,
                timeout=_WORKER_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"The benchmark worker for '{spec.variant}' ran longer than {_WORKER_TIMEOUT_S} s; "
                "lower --runs or use a smaller data file."
            ) from None
        if out_path.is_file():
            result = json.loads(out_path.read_text())
            if "error" in result:
                error = _failure(spec, result["error"])
                raise error(f"Variant '{spec.variant}': {result['error']}{_memory_hint(spec)}")
            if proc.returncode == 0:
                return result
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        if proc.returncode in (-9, 137):  # the OOM killer (a scope's), or someone's kill -9
            tail = f"killed by SIGKILL\n{tail}"
        raise _failure(spec, tail)(
            f"The benchmark worker for '{spec.variant}' failed (exit {proc.returncode}):\n{tail}{_memory_hint(spec)}"
        )


def _failure(spec: WorkerSpec, message: str) -> type[BenchError]:
    """Under the address-space cap, a failed allocation means the variant does not fit."""
    allocation_failed = any(sign in message for sign in ("bad_alloc", "MemoryError", "out of the emulated memory"))
    return DoesNotFitError if spec.memory_cap_mb and allocation_failed else BenchError


def _memory_hint(spec: WorkerSpec) -> str:
    """Under a cap, engines fail in C++ (std::bad_alloc, abort) more often than with MemoryError."""
    if not spec.memory_cap_mb or spec.memory_cgroup:  # a cgroup's verdict is the OOM kill, checked above
        return ""
    return (
        f"\nThe worker ran under the target's emulated memory cap of {spec.memory_cap_mb} MB of address space "
        "(RLIMIT_AS): an allocation failure means the model does not fit it (the cap counts reserved memory, "
        "so it is stricter than the device's RAM)."
    )


def bare_interpreter_rss_mb() -> float | None:
    """Peak RSS of a Python interpreter that imports nothing: the floor under every worker."""
    probe = (
        "from pathlib import Path\n"
        "print(next((int(l.split()[1]) for l in Path('/proc/self/status').read_text().splitlines()"
        " if l.startswith('VmHWM:')), -1))"
    )
    try:
        kib = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout)
    except (OSError, ValueError):
        return None
    return kib / 1024 if kib > 0 else None


def portable_path(path: str) -> str:
    """The path a results file records: relative to the working folder when under it, ``~/…`` under
    the home folder; results are shared and committed, and a build machine's layout means nothing elsewhere."""
    resolved = Path(path).resolve()
    for base, shown in ((Path.cwd().resolve(), None), (Path.home().resolve(), "~")):
        if resolved.is_relative_to(base):
            relative = resolved.relative_to(base)
            return str(relative) if shown is None else f"{shown}/{relative}"
    return str(path)


def run_benchmark(
    variants: list[Variant],
    data: TextDataset,
    settings: BenchSettings,
    on_progress: Callable[[str], None] | None = None,
    on_misfit: Callable[[str, str], None] | None = None,
    on_step: Callable[[int, int, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every variant; returns one summary dict per variant, in the order given.

    ``on_step(done, total, label)`` is called before each worker and once at the end (a
    progress bar with an ETA: the number of workers is known up front).

    A variant that does not fit the emulated memory stops the run, unless ``on_misfit`` is
    given: then it is reported there (name, reason), left out of the later rounds and of the
    summaries, and the others are still measured.
    """
    if not variants:
        raise BenchError("Nothing to benchmark: no variants given.")
    inputs = latency_inputs(data, settings.runs, settings.seed)
    raw: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    total, done = settings.rounds * len(variants), 0
    for round_index in range(settings.rounds):
        for variant in [v for v in variants if v.name in raw]:
            if on_step:
                on_step(done, total, f"round {round_index + 1}/{settings.rounds}: {variant.name}")
            done += 1
            if on_progress:
                on_progress(f"round {round_index + 1}/{settings.rounds}: {variant.name}")
            first = round_index == 0
            spec = WorkerSpec(
                variant=variant.name,
                kind=variant.kind,
                path=str(variant.path),
                threads=settings.threads,
                latency_texts=inputs,
                warmup=settings.warmup,
                eval_texts=data.texts if first else [],  # predictions for accuracy and agreement
                eval_labels=data.labels if first else None,
                eval_batch_size=settings.eval_batch_size,
                max_length=variant.max_length,
                batch_sizes=list(settings.batch_sizes),
                sequence_lengths=list(settings.sequence_lengths),
                shape_runs=settings.shape_runs,
                cpu_affinity=list(settings.cpu_affinity) if settings.cpu_affinity else None,
                memory_cap_mb=settings.memory_cap_mb,
                runtime_target=settings.runtime_target,
                mode=settings.mode,
                concurrency=settings.concurrency,
            )
            try:
                raw[variant.name].append(_run_worker(spec, variant.env))
            except DoesNotFitError as exc:
                if on_misfit is None:
                    raise
                on_misfit(variant.name, str(exc))
                del raw[variant.name]
                total -= settings.rounds - round_index - 1  # its later rounds will not run
    if on_step:
        on_step(total, total, "done")
    kept = [v for v in variants if v.name in raw]
    if not kept:
        raise DoesNotFitError(f"No variant fits the target's emulated memory of {settings.memory_cap_mb} MB.")
    reference = raw[kept[0].name][0]
    floor = bare_interpreter_rss_mb()
    summaries = [summarise(raw[v.name], reference) for v in kept]
    for summary in summaries:  # what the model and its engine add over a bare interpreter
        summary["bare_interpreter_rss_mb"] = floor
        summary["peak_rss_increment_mb"] = None if floor is None else summary["peak_rss_mb"] - floor
    return summaries


def summarise(rounds: list[dict[str, Any]], reference: dict[str, Any]) -> dict[str, Any]:
    """Pool the timed runs of all rounds; keep each round's median to show the spread."""
    first = rounds[0]
    samples = [ms for r in rounds for ms in r["latency_ms"]]
    stats = LatencyStats.from_samples(samples)
    round_medians = [LatencyStats.from_samples(r["latency_ms"]).median for r in rounds]
    summary: dict[str, Any] = {
        "name": first["variant"],
        "kind": first["kind"],
        "path": portable_path(first["path"]),
        "engine": first["engine"],
        "precision": first["precision"],
        "threads": first["threads"],
        "model_size_mb": round(first["model_size_mb"], 2),
        "batch_size": 1,
        "latency_ms": stats.to_dict(),
        "tokenize_ms": LatencyStats.from_samples([ms for r in rounds for ms in r["tokenize_ms"]]).to_dict(),
        "throughput_per_s": 1000.0 / stats.mean,
        "usage": usage_summary(rounds),  # CPU utilisation; inferences/s under --mode throughput
        "latency_samples_ms": raw_samples(rounds),
        "round_medians_ms": round_medians,
        "round_spread_pct": 100.0 * (max(round_medians) - min(round_medians)) / min(round_medians),
        "token_counts": _token_summary(first.get("token_counts", [])),
        "by_sequence_length": _pool_shapes(rounds),
        "batches": _pool_batches(rounds),
        "cold_start": cold_start(rounds),
        "cpu_affinity": first.get("cpu_affinity"),
        "memory_cap": "; ".join(sorted({r["memory_cap"] for r in rounds if r.get("memory_cap")})) or None,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        "accuracy": None,
        "macro_f1": None,
        "agreement_with_reference": None,
        "eval_rows": len(first["predictions"]),
    }
    if summary["usage"] and summary["usage"]["mode"] == "throughput":  # measured, not 1 / mean latency
        summary["throughput_per_s"] = summary["usage"]["inferences_per_s"]
    if first["label_ids"] is not None:
        summary["accuracy"] = accuracy(first["predictions"], first["label_ids"])
        summary["macro_f1"] = macro_f1(first["predictions"], first["label_ids"])
    if first["predictions"] and reference["predictions"]:
        # Compare by label name: two variants need not number their labels the same way.
        mine = [first["labels"][i] for i in first["predictions"]]
        theirs = [reference["labels"][i] for i in reference["predictions"]]
        summary["agreement_with_reference"] = agreement(mine, theirs)
        summary["reference"] = reference["variant"]
    return summary


def cold_start(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Start-up to first answer of a fresh process: every round's worker is a new process.

    ``total_s`` = interpreter start + imports + load + first inference, the median of the
    rounds' totals (``total_s_rounds``); the parts are each their own median, so they need not
    add up to it exactly. The OS page cache is not dropped: this is a warm-cache start, as
    when an app is relaunched, not the first start after a reboot.
    """

    def total(r: dict[str, Any]) -> float:
        return (r.get("startup_s") or 0.0) + r["import_s"] + r["load_s"] + r["first_inference_ms"] / 1e3

    def median(key: str) -> float | None:
        values = [r[key] for r in rounds if r.get(key) is not None]
        return float(np.median(values)) if values else None

    return {
        "startup_s": median("startup_s"),
        "import_s": median("import_s"),
        "load_s": median("load_s"),
        "first_inference_ms": median("first_inference_ms"),
        "total_s": float(np.median([total(r) for r in rounds])),
        "total_s_rounds": [total(r) for r in rounds],
    }


def _token_summary(counts: list[int]) -> dict[str, float] | None:
    if not counts:
        return None
    return {"min": min(counts), "median": float(np.median(counts)), "max": max(counts)}


def _pool_shapes(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pooled = []
    for index, shape in enumerate(rounds[0].get("shapes", [])):
        samples = [ms for r in rounds for ms in r["shapes"][index]["latency_ms"]]
        pooled.append({"tokens": shape["tokens"], "latency_ms": LatencyStats.from_samples(samples).to_dict()})
    return pooled


def _pool_batches(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pooled = []
    for index, batch in enumerate(rounds[0].get("batches", [])):
        stats = LatencyStats.from_samples([ms for r in rounds for ms in r["batches"][index]["latency_ms"]])
        size = batch["batch_size"]
        pooled.append({"batch_size": size, "latency_ms": stats.to_dict(), "throughput_per_s": size * 1000 / stats.mean})
    return pooled
