"""Measure one variant in this process and write the raw figures as JSON.

Run as ``python -m edgekit.bench.worker SPEC.json OUT.json`` by the harness, never
imported by a process that times anything else: ONNX Runtime's spinning intra-op threads
would otherwise steal cores from the next variant (STACK-NOTES: a 5.9x slow-down).
"""

from __future__ import annotations

import json
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


def measure(spec: WorkerSpec) -> dict:
    from edgekit.data import TextDataset

    started = time.perf_counter()
    from edgekit.bench.adapters import ADAPTERS

    adapter_cls = ADAPTERS[spec.kind]
    imported = time.perf_counter()
    adapter = adapter_cls(Path(spec.path), spec.threads, spec.max_length)
    loaded = time.perf_counter()
    adapter.predict_one(spec.latency_texts[0])
    first_done = time.perf_counter()

    for text in spec.latency_texts[: spec.warmup]:
        adapter.predict_one(text)
    latency_ms = []
    for text in spec.latency_texts:
        t0 = time.perf_counter_ns()
        adapter.predict_one(text)
        latency_ms.append((time.perf_counter_ns() - t0) / 1e6)
    tokenize_ms = []
    for text in spec.latency_texts:
        t0 = time.perf_counter_ns()
        adapter.tokenize_one(text)
        tokenize_ms.append((time.perf_counter_ns() - t0) / 1e6)

    predictions: list[int] = []
    label_ids: list[int] | None = None
    if spec.eval_texts:
        size = spec.eval_batch_size
        for start in range(0, len(spec.eval_texts), size):
            predictions.extend(adapter.predict_many(spec.eval_texts[start : start + size]))
        if spec.eval_labels is not None:
            label_ids = TextDataset(spec.eval_texts, spec.eval_labels, "eval").label_ids(adapter.labels)

    return {
        "variant": spec.variant,
        "kind": spec.kind,
        "path": spec.path,
        "engine": adapter.engine,
        "precision": adapter.precision,
        "labels": adapter.labels,
        "threads": spec.threads,
        "model_size_mb": adapter.size_mb(),
        "import_s": imported - started,
        "load_s": loaded - imported,
        "first_inference_ms": (first_done - loaded) * 1e3,
        "latency_ms": latency_ms,
        "tokenize_ms": tokenize_ms,
        "predictions": predictions,
        "label_ids": label_ids,
        "peak_rss_mb": _peak_rss_mb(),
    }


def main(argv: list[str]) -> int:
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    spec = WorkerSpec(**json.loads(spec_path.read_text()))
    from edgekit.errors import EdgekitError

    try:
        result = measure(spec)
    except EdgekitError as exc:  # a user-fixable problem: hand the message back to the harness
        out_path.write_text(json.dumps({"error": str(exc), "error_type": type(exc).__name__}))
        return 2
    out_path.write_text(json.dumps(result))
    return 0


def spec_to_json(spec: WorkerSpec) -> str:
    return json.dumps(asdict(spec))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
