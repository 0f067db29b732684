"""One ``edgekit bench`` run: resolve the artifacts, imitate the target, time them, and
return the results document. Torch-free unless a PyTorch baseline is asked for (and then
only inside that variant's worker process)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgekit.artifact import expand_bundle, read_manifest
from edgekit.bench.budgets import BudgetVerdict, check_budgets
from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.providers import with_providers
from edgekit.bench.results import new_document
from edgekit.data import PROBE_TEXTS, TextDataset, read_text_dataset
from edgekit.estimate.for_bench import estimated_section, host_label, needs_estimates
from edgekit.targets.emulation import target_run
from edgekit.targets.host import detect_host
from edgekit.targets.profiles import load_target, runtime_defaults


def benchmark_artifacts(
    artifacts: list[Path],
    data: Path | None = None,
    pytorch: Path | None = None,
    target: str = "host",
    threads: int | None = None,
    runs: int = 200,
    warmup: int = 20,
    rounds: int = 1,
    shapes: bool = True,
    on_device: bool = False,
    on_progress: Callable[[str], None] | None = None,
    *,
    providers: dict[str, dict[str, list[str]]] | None = None,
    mode: str = "latency",
    concurrency: int = 1,
    on_step: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """``providers``: engine options (``--provider``) over the target's; ``mode="throughput"``: each
    worker sends ``concurrency`` requests at once; ``on_step(done, total, label)``: progress."""
    profile = load_target(target)
    folders = [found for path in artifacts for found in expand_bundle(path)]
    engines = {folder: read_manifest(folder).engine for folder in folders}  # fails fast on a bad folder
    skipped = _unavailable(engines)  # e.g. a Core ML or .pte variant on a Linux host: not run, still estimated
    runnable = [f for f in folders if f not in skipped]
    dataset = _dataset(data, read_manifest(folders[0]).task if folders else "text-classification")
    # Off the device the profile is imitated as far as honestly possible; the label says how.
    run = target_run(profile, threads, on_device)
    variants = [Variant(f.name or str(f), "artifact", f, run.env_for(engines[f])) for f in runnable]
    if pytorch is not None:  # truncate as the artifacts do, so the comparison is like for like
        max_length = (read_manifest(folders[0]).tokenizer or {}).get("max_length") if folders else None
        variants.insert(0, Variant("pytorch-fp32", "pytorch", pytorch, max_length=max_length))
    if not variants and skipped:
        from edgekit.bench.harness import BenchError

        reasons = "; ".join(f"{f.name}: {r}" for f, r in skipped.items())
        raise BenchError(f"No artifact can run on this machine ({reasons}). Benchmark them on the device (--remote).")
    if len({v.name for v in variants}) != len(variants):  # e.g. two bundles' onnx-fp32: name the bundle too
        variants = [replace(v, name=f"{v.path.parent.name}/{v.name}") if v.kind == "artifact" else v for v in variants]
    if len({v.name for v in variants}) != len(variants):
        variants = [replace(v, name=f"{i}:{v.name}") for i, v in enumerate(variants)]
    settings = BenchSettings(
        threads=run.threads,
        runs=runs,
        warmup=warmup,
        rounds=rounds,
        batch_sizes=tuple(profile.benchmark.batch_sizes),
        sequence_lengths=tuple(profile.benchmark.sequence_lengths) if shapes else (),
        shape_runs=max(10, runs // 4) if shapes else 0,
        cpu_affinity=run.cpu_affinity,
        memory_cap_mb=run.memory_cap_mb,
        runtime_target=with_providers("host" if run.plan else runtime_defaults(profile), providers or {}),
        mode=mode,
        concurrency=concurrency if mode == "throughput" else 1,
    )
    misfits: list[dict[str, str]] = []  # variants over the emulated memory: a finding, the others still run

    def note_misfit(name: str, reason: str) -> None:
        misfits.append({"name": name, "reason": reason})

    summaries = run_benchmark(variants, dataset, settings, on_progress=on_progress, on_misfit=note_misfit,
                              on_step=on_step)  # fmt: skip
    document = new_document(run.target_info(profile.name), {**settings.__dict__, "data": dataset.source}, summaries)
    judge_latency = run.plan is None or run.plan.latency_representative
    verdicts = check_budgets(summaries, profile.budgets, judge_latency)
    verdicts += [BudgetVerdict(m["name"], "fits_memory_cap_mb", float(run.memory_cap_mb or 0), None, False)
                 for m in misfits]  # fmt: skip
    document["budgets"] = [v.to_dict() for v in verdicts]
    document["did_not_fit"] = misfits
    document["skipped"] = [{"name": f.name, "reason": f"skipped: {reason}"} for f, reason in skipped.items()]
    host = detect_host()
    if needs_estimates(profile, host, on_device):  # host timings cannot stand for this device
        document["target"]["host_label"] = host_label(host, run.threads)
        document["estimated"] = estimated_section(profile, host, run.threads, folders, summaries)
    return document


def _unavailable(engines: dict[Path, str]) -> dict[Path, str]:
    """Artifacts whose engine cannot run on this machine at all, with the engine's reason."""
    from edgekit.runtime.engines import get_engine

    reasons = {}
    for folder, name in engines.items():
        check = getattr(get_engine(name), "unavailable_reason", None)  # optional in an EngineSpec
        reason = check() if callable(check) else None
        if reason:
            reasons[folder] = reason
    return reasons


def _dataset(data: Path | None, task: str) -> Any:
    """The inputs to time: the user's data (texts, or images for an image model), else built-in probe texts."""
    if task == "image-classification":
        from edgekit.image_data import read_image_dataset

        if data is None:
            from edgekit.bench.harness import BenchError

            raise BenchError("An image model is benchmarked on real images: pass --data FOLDER (or a CSV of paths).")
        return read_image_dataset(data)
    return read_text_dataset(data) if data else TextDataset(list(PROBE_TEXTS), None, "built-in probe texts")
