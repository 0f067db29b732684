"""Benchmark variants: each in its own process, alternated variant by variant over rounds.

Alternating spreads slow drifts of the machine (thermal, other load) over all variants
instead of charging them to whichever ran last; fresh processes keep one engine's thread
pool from slowing the next. Accuracy is computed once, in the first round.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgekit.bench.stats import LatencyStats, accuracy, agreement, macro_f1
from edgekit.bench.worker import WorkerSpec
from edgekit.data import TextDataset
from edgekit.errors import EdgekitError

_WORKER_TIMEOUT_S = 1800


class BenchError(EdgekitError):
    """A variant could not be benchmarked."""


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


def latency_inputs(data: TextDataset, runs: int, seed: int) -> list[str]:
    """``runs`` texts drawn from the data (all lengths), repeating the data if it is short."""
    sample = data.sample(runs, seed=seed).texts
    repeated = (sample * (runs // len(sample) + 1))[:runs]
    return repeated


def _run_worker(spec: WorkerSpec, extra_env: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as scratch:
        spec_path, out_path = Path(scratch) / "spec.json", Path(scratch) / "out.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **dict(extra_env)}
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "edgekit.bench.worker", str(spec_path), str(out_path)],
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
                raise BenchError(f"Variant '{spec.variant}': {result['error']}")
            if proc.returncode == 0:
                return result
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BenchError(f"The benchmark worker for '{spec.variant}' failed (exit {proc.returncode}):\n{tail}")


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


def run_benchmark(
    variants: list[Variant],
    data: TextDataset,
    settings: BenchSettings,
    on_progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every variant; returns one summary dict per variant, in the order given."""
    if not variants:
        raise BenchError("Nothing to benchmark: no variants given.")
    inputs = latency_inputs(data, settings.runs, settings.seed)
    raw: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    for round_index in range(settings.rounds):
        for variant in variants:
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
            )
            raw[variant.name].append(_run_worker(spec, variant.env))
    reference = raw[variants[0].name][0]
    floor = bare_interpreter_rss_mb()
    summaries = [summarise(raw[v.name], reference) for v in variants]
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
        "path": first["path"],
        "engine": first["engine"],
        "precision": first["precision"],
        "threads": first["threads"],
        "model_size_mb": round(first["model_size_mb"], 2),
        "batch_size": 1,
        "latency_ms": stats.to_dict(),
        "tokenize_ms": LatencyStats.from_samples([ms for r in rounds for ms in r["tokenize_ms"]]).to_dict(),
        "throughput_per_s": 1000.0 / stats.mean,
        "round_medians_ms": round_medians,
        "round_spread_pct": 100.0 * (max(round_medians) - min(round_medians)) / min(round_medians),
        "cold_start": {
            "import_s": first["import_s"],
            "load_s": first["load_s"],
            "first_inference_ms": first["first_inference_ms"],
        },
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        "accuracy": None,
        "macro_f1": None,
        "agreement_with_reference": None,
        "eval_rows": len(first["predictions"]),
    }
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
