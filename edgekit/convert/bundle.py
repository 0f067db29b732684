"""Build, gate and benchmark the reduced-precision and OpenVINO variants of a bundle.

Called by ``pipeline.convert`` once the FP32 ONNX reference is packaged in
``staging/onnx-fp32``. Every variant is gated against that reference on the evaluation
data; all are benchmarked on the target (rejected ones too, for the record) and the
fastest one that passed is recommended.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from edgekit.artifact import SUMMARY_NAME, manifest_digests, read_manifest
from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.results import new_document, write_results
from edgekit.convert.gate import EvalSet, batch1_logits, reference_stability
from edgekit.convert.recipe import Recipe
from edgekit.convert.recommend import VariantRecord, check_outlook_against_measurement, choose_recommended
from edgekit.convert.sources import LoadedSource, public_name
from edgekit.convert.summary import BundleSummary, markdown
from edgekit.convert.variant_build import VariantBuilder, folder_size_mb
from edgekit.convert.variants import REFERENCE, BuildContext, get_variant
from edgekit.data import TextDataset
from edgekit.metrics import accuracy
from edgekit.outputs import seal
from edgekit.progress import Reporter
from edgekit.targets.emulation import target_run
from edgekit.targets.preflight import Outlook, outlook
from edgekit.targets.profiles import TargetProfile
from edgekit.tasks import get_task

BENCH_NAME = "bench.json"  # the full benchmark results document (schema edgekit.bench/1)
REJECTED_DIR = "rejected"


def _eval_set(data: TextDataset, recipe: Recipe, labels: list[str]) -> EvalSet:
    sample = data.sample(recipe.gate.samples, seed=0)
    ids = sample.label_ids(labels) if sample.has_labels else None
    return EvalSet(sample.texts, ids, data.source)


def _calibration_texts(recipe: Recipe, data: TextDataset) -> list[str]:
    spec = recipe.quantization.calibration
    pool = get_task(recipe.task).read_dataset(spec.data) if spec.data is not None else data
    return pool.sample(spec.samples, seed=1).texts


def _evaluate_reference(
    reference_dir: Path, evaluation: EvalSet, recipe: Recipe, reporter: Reporter
) -> tuple[Any, float | None, dict | None]:
    """The reference's batch-1 logits, its accuracy (labelled data) and, where the task has an unnoticed
    change (images: a JPEG save), its agreement with itself under it: the gate's noise floor."""
    with reporter.stage(f"Evaluating the FP32 reference on {len(evaluation.texts)} rows"):
        reference_logits = batch1_logits(reference_dir, evaluation.texts)
    reference_accuracy = None
    if evaluation.label_ids is not None:
        reference_accuracy = accuracy(reference_logits.argmax(-1), evaluation.label_ids)
    task = get_task(recipe.task)
    if task.unnoticed_change is None:
        return reference_logits, reference_accuracy, None
    with reporter.stage(f"FP32 reference against itself, {task.unnoticed_change_name}"):
        stability = reference_stability(reference_dir, evaluation.texts, reference_logits, task.unnoticed_change,
                                        task.unnoticed_change_name)  # fmt: skip
    return reference_logits, reference_accuracy, stability


def build_variants(
    source: LoadedSource,
    staging: Path,
    recipe: Recipe,
    target: TargetProfile,
    data: TextDataset,
    parity_texts: list[str],
    reporter: Reporter,
) -> BundleSummary:
    reference_dir = staging / REFERENCE
    labels = read_manifest(reference_dir).labels
    evaluation = _eval_set(data, recipe, labels)
    allowed = recipe.gate.max_accuracy_drop
    if allowed is None:
        allowed = target.budgets.max_accuracy_drop if target.budgets.max_accuracy_drop is not None else 1.0
    outlooks = _preflight(recipe, target, reporter)

    reference_logits, reference_accuracy, stability = _evaluate_reference(reference_dir, evaluation, recipe, reporter)

    def validation(rows: int) -> tuple[list[str], list[int]] | None:
        if not data.has_labels:
            return None
        sample = data.sample(rows, seed=2)
        return sample.texts, sample.label_ids(labels)

    context = BuildContext(reference_dir, target, _calibration_texts(recipe, data), validation, source, recipe.task)
    builder = VariantBuilder(context, source, staging, recipe, evaluation, reference_logits, allowed, parity_texts,
                             outlooks, reporter)  # fmt: skip
    records = [VariantRecord(REFERENCE, "onnxruntime", "fp32", folder_size_mb(reference_dir), gate=None)]
    for name in recipe.variant_names:
        if name == REFERENCE:
            continue
        records.append(builder.build(name))

    bench_info, bench_document = None, None
    if recipe.bench.enabled:
        bench_info, source_record, bench_document = _benchmark(records, staging, recipe, target, evaluation, reporter)
        if source_record is not None:
            records.insert(0, source_record)
    remarks = check_outlook_against_measurement(records)
    recommended, because = choose_recommended(records, outlooks)
    artifacts = [r for r in records if not r.is_source]
    locations = _place(artifacts, staging)
    summary = BundleSummary(**{
        # str(): a factory model without weights has no file to name: its factory (public_name returns it as given)
        "source": str(public_name(recipe.model, "path" in source.info.get("teacher", source.info))),  # no local paths
        "target": target.name,
        "recipe_hash": recipe.content_hash(),
        "weights_sha256": source.info.get("teacher", source.info).get("weights_sha256"),
        "distillation": read_manifest(reference_dir).metrics.get("distillation"),
        "recommended": recommended,
        "recommended_because": because,
        "reference_accuracy": reference_accuracy,
        "gate": {
            "allowed_drop_points": allowed,
            "rows": len(evaluation.texts),
            "data": public_name(evaluation.source),
            "labelled": evaluation.label_ids is not None,
            **({"reference_under_change": stability} if stability else {}),
        },  # fmt: skip
        "bench": bench_info,
        "preflight": [o.to_dict() for o in outlooks],
        "preflight_vs_measured": remarks,
        "built": [r.name for r in artifacts],
        "locations": locations,
        "variants": [r.to_dict() for r in records],
    })  # fmt: skip
    _annotate_manifests(artifacts, staging, locations, recommended, bench_info)
    _write_bundle_files(summary, staging, bench_document, recipe.model, source.info)
    if recommended == REFERENCE and len(artifacts) > 1:
        reporter.note("No faster variant passed the accuracy gate; the FP32 reference is recommended.")
    for remark in remarks:
        reporter.note(f"note: {remark}")
    return summary


def _preflight(recipe: Recipe, target: TargetProfile, reporter: Reporter) -> list[Outlook]:
    """What the pre-flight expects on the target for the engines and precisions asked for."""
    kinds = [get_variant(name) for name in recipe.variant_names]
    engines = sorted({kind.engine for kind in kinds})
    requested = {(kind.engine, kind.precision) for kind in kinds}
    found = outlook(target.arch, target.isa_features, engines, recipe.task)  # CNN advice differs from transformers'
    outlooks = [o for o in found if (o.engine, o.precision) in requested]
    for item in outlooks:
        reporter.note(f"pre-flight ({target.name}): {item.engine} {item.precision} {item.verdict}: {item.reason}")
    return outlooks


def _write_bundle_files(summary: BundleSummary, staging: Path, bench_document: dict[str, Any] | None, model: str,
                        source_info: dict[str, Any]) -> None:  # fmt: skip
    """summary.json (with the variants' manifest digests, once every manifest is final), summary.md, bench.json."""
    summary.manifest_sha256 = manifest_digests(staging, summary.locations)
    if bench_document is not None:
        pytorch = str(public_name(str(model), "path" in source_info.get("teacher", source_info)))  # no local paths
        for row in bench_document["variants"]:  # paths relative to the bundle, where they end up
            row["path"] = summary.locations.get(row["name"], pytorch if row["kind"] == "pytorch" else row["name"])
        write_results(bench_document, staging / BENCH_NAME)
    write_results(summary.to_dict(), staging / SUMMARY_NAME)
    (staging / "summary.md").write_text(markdown(summary), encoding="utf-8")


def _pytorch_source(recipe: Recipe, scratch: Path) -> Path:
    """What the PyTorch baseline's worker loads: the checkpoint folder or hub id, or for a recipe's
    ``model: {factory: ...}`` mapping a folder holding it (the worker takes a path)."""
    from edgekit.bench.image_adapters import write_factory_source
    from edgekit.convert.image_sources import FactorySpec

    if isinstance(recipe.model, FactorySpec):
        return write_factory_source(recipe.model, scratch / "pytorch-source")
    return Path(recipe.model)


def _benchmark(
    records: list[VariantRecord], staging: Path, recipe: Recipe, target: TargetProfile, evaluation: EvalSet,
    reporter: Reporter,
) -> tuple[dict[str, Any], VariantRecord | None, dict[str, Any]]:  # fmt: skip
    run = target_run(target, recipe.bench.threads)
    settings = BenchSettings(
        threads=run.threads,
        runs=recipe.bench.runs,
        warmup=recipe.bench.warmup,
        rounds=recipe.bench.rounds,
        cpu_affinity=run.cpu_affinity,
        memory_cap_mb=run.memory_cap_mb,
        batch_sizes=tuple(target.benchmark.batch_sizes),
    )  # the profile's, as `edgekit bench`
    for record in records:  # an engine this machine cannot run (Core ML on Linux) is never timed here
        if record.not_runnable:
            reporter.note(f"{record.name}: not benchmarked: not runnable here ({record.not_runnable})")
    runnable = [r for r in records if not r.not_runnable]
    variants = [Variant(r.name, "artifact", staging / r.name, run.env_for(r.engine)) for r in runnable]
    reference = read_manifest(staging / REFERENCE)
    source_record = None
    scratch = tempfile.TemporaryDirectory(prefix="edgekit-bench-source-")  # never part of the bundle
    if recipe.bench.pytorch_baseline:
        name = "pytorch-fp32-teacher" if recipe.distill else "pytorch-fp32"
        max_length = reference.tokenizer["max_length"] if reference.tokenizer else None  # images: no tokens
        variants.insert(0, Variant(name, "pytorch", _pytorch_source(recipe, Path(scratch.name)), max_length=max_length))
        source_record = VariantRecord(name, "pytorch", "fp32", 0.0, gate=None, is_source=True)
    # The labels only serve the PyTorch row's accuracy; the artifacts' accuracy is the gate's (batch 1).
    ids = evaluation.label_ids
    inputs = TextDataset(
        evaluation.texts, None if ids is None else [reference.labels[i] for i in ids], evaluation.source
    )
    title = f"Benchmarking {len(variants)} variants on {target.name} ({run.threads} threads, {settings.rounds} rounds)"
    with reporter.stage(title), scratch:
        summaries = run_benchmark(variants, inputs, settings, on_progress=reporter.note)
    timed = ([source_record] if source_record else []) + runnable
    for record, summary in zip(timed, summaries, strict=True):
        record.latency_ms = {k: summary["latency_ms"][k] for k in ("median", "p90", "p99", "mean")}
        if record.is_source:
            record.size_mb, record.accuracy = summary["model_size_mb"], summary["accuracy"]
    caveats = run.plan.caveats if run.plan else []
    info = {"threads": run.threads, "runs": settings.runs, "rounds": settings.rounds, "mode": run.description,
            "caveats": caveats}  # fmt: skip
    for caveat in caveats:
        reporter.note(f"emulation caveat: {caveat}")
    document = new_document(
        target=run.target_info(target.name),
        settings={**settings.__dict__, "data": f"{public_name(evaluation.source)} ({len(evaluation.texts)} rows)"},
        variants=summaries,
    )
    return info, source_record, document


def _place(records: list[VariantRecord], staging: Path) -> dict[str, str]:
    """Move rejected variants under rejected/, so nobody deploys them by mistake. A variant this
    machine cannot run was not rejected: it keeps its own folder, its manifest saying it is unchecked."""
    locations = {}
    for record in records:
        if record.passed or record.not_runnable:
            locations[record.name] = record.name
            continue
        (staging / REJECTED_DIR).mkdir(exist_ok=True)
        shutil.move(str(staging / record.name), staging / REJECTED_DIR / record.name)
        locations[record.name] = f"{REJECTED_DIR}/{record.name}"
    return locations


def _annotate_manifests(
    records: list[VariantRecord], staging: Path, locations: dict[str, str], recommended: str, bench: dict | None
) -> None:
    for record in records:
        folder = staging / locations[record.name]
        manifest = read_manifest(folder)
        manifest.metrics["recommended"] = record.name == recommended
        manifest.metrics["gate_passed"] = record.passed
        if record.latency_ms and bench:
            manifest.metrics["bench"] = {**bench, "latency_ms": record.latency_ms}
        if record.outlook is not None:
            manifest.notes.append(f"pre-flight: {record.outlook.verdict} than fp32 expected ({record.outlook.reason})")
        manifest.notes += record.notes
        seal(folder, manifest)
