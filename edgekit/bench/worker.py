"""Measure one variant in this process and write the raw figures as JSON.

Run as ``python -m edgekit.bench.worker SPEC.json OUT.json`` by the harness, never
imported by a process that times anything else: ONNX Runtime's spinning intra-op threads
would otherwise steal cores from the next variant (docs/stack-findings.md: a 5.9x slow-down).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class WorkerSpec:
    variant: str
    kind: str  # "artifact" or "pytorch"
    path: str
    threads: int
    latency_texts: list[str]
    warmup: int
    eval_texts: list[str] = field(default_factory=list)
    eval_labels: list[str] | None = None
    eval_batch_size: int = 1  # accuracy as a device app sees it; padding can move quantized outputs
    max_length: int | None = None  # PyTorch adapter only
    batch_sizes: list[int] = field(default_factory=lambda: [1])  # sizes above 1 are timed for throughput
    sequence_lengths: list[int] = field(default_factory=list)  # token lengths timed at batch 1 (profile shapes)
    shape_runs: int = 0  # timed runs per shape and per batch size
    cpu_affinity: list[int] | None = None  # emulation: pin the process to these CPUs
    memory_cap_mb: int | None = None  # emulation: cap memory (a cgroup if given, else the address space)
    memory_cgroup: str | None = None  # a cgroup made by the harness for this worker
    memory_cap_label: str | None = None  # how that cgroup caps memory, for the results
    memory_scope: bool = False  # started inside a capped systemd scope: nothing left to cap here
    # The runtime's providers/devices (artifacts only): "host", or a profile's runtime defaults
    # resolved by the harness, so the worker never imports pydantic/yaml to read a profile.
    runtime_target: str | dict = "host"
    spawned_at: float | None = None  # time.time() when the harness started this process (cold start)
    mode: str = "latency"  # "throughput": `concurrency` threads call predict at once (benchmark_app -hint)
    concurrency: int = 1


def _peak_rss_mb() -> float:
    """The OS's own high-water mark of this process's resident memory, in MiB.

    Linux: VmHWM from /proc/self/status. Not ru_maxrss: on Linux that survives exec, so a
    worker started by a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def apply_limits(spec: WorkerSpec) -> str | None:
    """Imitate a smaller device: pin to its CPUs and cap memory, before anything is loaded.

    Returns how memory was capped (for the results), None when it was not. The cgroup, when
    the harness could make one, counts what RAM holds; RLIMIT_AS, the fallback, counts
    reserved virtual memory too and is stricter than the device (see ``memcap``).
    """
    from edgekit.bench import memcap  # stdlib only: loading it costs nothing measurable

    if spec.cpu_affinity:
        os.sched_setaffinity(0, spec.cpu_affinity)
    if spec.memory_scope or (spec.memory_cgroup and memcap.join_cgroup(spec.memory_cgroup)):
        return spec.memory_cap_label
    if spec.memory_cap_mb:  # no cgroup, or the kernel refused the move: the fallback
        return memcap.cap_address_space(spec.memory_cap_mb) or "memory not capped (no limit this OS enforces)"
    return None


def _time_ms(action, *args) -> float:
    t0 = time.perf_counter_ns()
    action(*args)
    return (time.perf_counter_ns() - t0) / 1e6


def text_with_tokens(adapter, tokens: int, words: list[str]) -> tuple[str, int]:
    """A text of about ``tokens`` tokens (special tokens included), built from real words.

    Returns the text and its actual token count; truncation caps it at the model's maximum.
    """
    pieces = [words[0]]
    count = adapter.token_count(words[0])
    while count < tokens and len(pieces) < 4 * tokens:
        pieces.append(words[len(pieces) % len(words)])
        grown = adapter.token_count(" ".join(pieces))
        if grown == count:  # truncation reached: the model takes no more tokens
            pieces.pop()
            break
        count = grown
    return " ".join(pieces), count


def _cpu_seconds() -> float:
    """CPU time of this process, every thread, user + system. ``time.process_time`` reads the
    process CPU clock in nanoseconds where the OS has one; ``os.times`` ticks only every 10 ms."""
    return time.process_time()


def _time_latency(adapter, spec: WorkerSpec) -> tuple[list[float], dict]:
    """The timed runs, one after another (latency) or from ``concurrency`` threads (throughput).

    Beside the samples: wall time, process CPU time, and their ratio (cores kept busy on
    average: above 1 when the engine's threads run in parallel), and inferences per second.
    """
    texts = spec.latency_texts
    concurrency = max(1, spec.concurrency) if spec.mode == "throughput" else 1
    samples: list[float] = [0.0] * len(texts)
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    if concurrency == 1:
        samples = [_time_ms(adapter.predict_one, text) for text in texts]
    else:
        from concurrent.futures import ThreadPoolExecutor

        def run_share(start: int) -> None:  # thread k takes requests k, k+N, ...: the same texts in total
            for index in range(start, len(texts), concurrency):
                samples[index] = _time_ms(adapter.predict_one, texts[index])

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(run_share, range(concurrency)))
    wall_s, cpu_s = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    usage = {"mode": spec.mode, "concurrency": concurrency, "requests": len(texts), "wall_s": wall_s,
             "cpu_s": cpu_s, "cpu_utilisation": cpu_s / wall_s if wall_s > 0 else None,
             "inferences_per_s": len(texts) / wall_s if wall_s > 0 else None}  # fmt: skip
    return samples, usage


def _time_shapes(adapter, spec: WorkerSpec) -> list[dict]:
    words = " ".join(spec.latency_texts).split() or ["text"]
    shapes = []
    for wanted in spec.sequence_lengths:
        text, tokens = text_with_tokens(adapter, wanted, words)
        for _ in range(min(spec.warmup, 5)):
            adapter.predict_one(text)
        samples = [_time_ms(adapter.predict_one, text) for _ in range(spec.shape_runs)]
        shapes.append({"tokens_requested": wanted, "tokens": tokens, "latency_ms": samples})
    return shapes


def _time_batches(adapter, spec: WorkerSpec) -> list[dict]:
    """Whole-batch latency for each batch size above 1: consecutive data texts, padded together."""
    texts = spec.latency_texts
    results = []
    for size in (b for b in spec.batch_sizes if b > 1):
        batches = [[texts[(start + i) % len(texts)] for i in range(size)] for start in range(0, len(texts), size)]
        batches = (batches * (spec.shape_runs // len(batches) + 1))[: spec.shape_runs]
        for batch in batches[:2]:
            adapter.predict_many(batch)
        results.append({"batch_size": size, "latency_ms": [_time_ms(adapter.predict_many, b) for b in batches]})
    return results


def measure(spec: WorkerSpec) -> dict:
    entered_at, started = time.time(), time.perf_counter()
    from edgekit.bench.adapters import adapter_for
    from edgekit.data import TextDataset

    adapter_cls = adapter_for(spec.kind, Path(spec.path))
    adapter_cls.import_engine(Path(spec.path))
    imported = time.perf_counter()
    adapter = adapter_cls(Path(spec.path), spec.threads, spec.max_length, spec.runtime_target)
    loaded = time.perf_counter()
    adapter.predict_one(spec.latency_texts[0])
    first_done = time.perf_counter()

    for text in spec.latency_texts[: spec.warmup]:
        adapter.predict_one(text)
    # Images: each input is a file path, so latency covers reading, decoding and pre-processing,
    # and tokenize_ms times those alone (the same files, after the model's runs: a warm page cache).
    latency_ms, usage = _time_latency(adapter, spec)
    token_counts = [adapter.token_count(text) for text in spec.latency_texts] if adapter.is_text else []
    tokenize_ms = [_time_ms(adapter.tokenize_one, text) for text in spec.latency_texts]
    shapes = _time_shapes(adapter, spec) if spec.shape_runs and adapter.is_text else []
    batches = _time_batches(adapter, spec) if spec.shape_runs else []

    predictions: list[int] = []
    label_ids: list[int] | None = None
    if spec.eval_texts:
        size = spec.eval_batch_size
        for start in range(0, len(spec.eval_texts), size):
            predictions.extend(adapter.predict_many(spec.eval_texts[start : start + size]))
        if spec.eval_labels is not None:
            label_ids = TextDataset(spec.eval_texts, spec.eval_labels, "eval").label_ids(adapter.labels)

    # Interpreter start-up: from the harness starting this process to this module running.
    startup_s = None if spec.spawned_at is None else entered_at - spec.spawned_at
    return {
        "variant": spec.variant,
        "kind": spec.kind,
        "path": spec.path,
        "engine": adapter.engine,
        "precision": adapter.precision,
        "input_kind": "text" if adapter.is_text else "image",  # what tokenize_ms timed: tokenizing, or decoding
        "labels": adapter.labels,
        "threads": spec.threads,
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "model_size_mb": adapter.size_mb(),
        "startup_s": startup_s,
        "import_s": imported - started,
        "load_s": loaded - imported,
        "first_inference_ms": (first_done - loaded) * 1e3,
        "latency_ms": latency_ms,
        "usage": usage,
        "token_counts": token_counts,
        "tokenize_ms": tokenize_ms,
        "shapes": shapes,
        "batches": batches,
        "predictions": predictions,
        "label_ids": label_ids,
        "peak_rss_mb": _peak_rss_mb(),
    }


def main(argv: list[str]) -> int:
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    spec = WorkerSpec(**json.loads(spec_path.read_text()))
    memory_cap = apply_limits(spec)
    from edgekit.errors import EdgekitError

    try:
        result = {**measure(spec), "memory_cap": memory_cap}
    except EdgekitError as exc:  # a user-fixable problem: hand the message back to the harness
        out_path.write_text(json.dumps({"error": str(exc), "error_type": type(exc).__name__}))
        return 2
    except MemoryError:
        cap = f"the emulated memory cap of {spec.memory_cap_mb} MB" if spec.memory_cap_mb else "memory"
        out_path.write_text(json.dumps({"error": f"ran out of {cap}", "error_type": "MemoryError"}))
        return 3
    out_path.write_text(json.dumps(result))
    return 0


def spec_to_json(spec: WorkerSpec) -> str:
    return json.dumps(asdict(spec))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
