"""Run a recipe: load → export → package → parity gate → [variants → accuracy gate → bench].

With the default ``variants: [onnx-fp32]`` the output folder *is* the artifact. With more
variants it is a bundle: ``out/<variant>/`` for each artifact that passed,
``out/rejected/<variant>/`` for those the accuracy gate refused, and ``summary.json`` /
``summary.md`` naming the recommended one. Either way everything is built in a temporary
folder and renamed into place only when complete.

A run is keyed by the recipe's hash and the source weights' sha256: when the output with
the same key already exists and verifies, it is reused.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.artifact import (
    MANIFEST_NAME,
    Manifest,
    atomic_directory,
    load_manifest,
    read_manifest,
    read_summary,
    seal,
)
from edgekit.data import PROBE_TEXTS, TextDataset, read_text_dataset
from edgekit.errors import ArtifactError, ParityError, RecipeError
from edgekit.export import export_onnx
from edgekit.export.parity import ParityReport, check_parity, pick_parity_texts
from edgekit.progress import Reporter, SilentReporter
from edgekit.recipe import DataSpec, Recipe
from edgekit.sources import LoadedSource, load_text_classifier, resolve_reference
from edgekit.targets import TargetProfile, load_target, runtime_defaults
from edgekit.variants import REFERENCE, VARIANTS

TOKENIZER_FILE = "tokenizer.json"
REJECTED_DIR = "rejected"


@dataclass(frozen=True)
class ConvertResult:
    artifact_dir: Path  # the artifact, or for a bundle the recommended variant's folder
    manifest: Manifest
    reused: bool
    seconds: float
    summary: dict[str, Any] | None = field(default=None)  # bundles only

    @property
    def out(self) -> Path:
        return self.artifact_dir.parent if self.summary else self.artifact_dir


def read_data_spec(spec: DataSpec) -> TextDataset:
    return read_text_dataset(spec.path, spec.text_column, spec.label_column, spec.format)


def _reusable(out: Path, recipe: Recipe) -> ConvertResult | None:
    """The existing output at ``out`` if it was made from this recipe and these weights."""
    _, source_info = resolve_reference(recipe.model)
    if source_info["kind"] != "hf-dir":
        return None  # a hub model may have changed upstream: rebuild
    try:
        if recipe.is_bundle:
            summary = read_summary(out)
            artifact_dir = out / summary["locations"][summary["recommended"]]
            for name in summary["built"]:
                load_manifest(out / summary["locations"][name], verify=True)
            key = (summary["recipe_hash"], summary["weights_sha256"])
        else:
            summary, artifact_dir = None, out
            manifest = load_manifest(out, verify=True)
            origin = manifest.source.get("teacher", manifest.source)  # a distilled student names its teacher
            key = (manifest.recipe_hash, origin.get("weights_sha256"))
        manifest = read_manifest(artifact_dir)
    except (OSError, KeyError, ArtifactError):
        return None
    if source_info.get("weights_sha256") is None or key != (recipe.content_hash(), source_info["weights_sha256"]):
        return None  # no fingerprint of the weights: never assume they are unchanged
    return ConvertResult(artifact_dir, manifest, True, 0.0, summary)


def convert(
    recipe: Recipe, reporter: Reporter | None = None, force: bool = False, resume: bool = False
) -> ConvertResult:
    """Convert the recipe's model into an artifact (or a bundle of variants) at ``recipe.out``.

    With ``recipe.distill`` the model is first distilled into a student, which is then what
    gets exported; ``resume`` continues an interrupted distillation from its last checkpoint.
    """
    reporter = reporter or SilentReporter()
    started = time.perf_counter()
    if recipe.out is None:
        raise RecipeError("The recipe has no `out:` folder; set one in the recipe or pass --out DIR.")
    out = Path(recipe.out)
    target = load_target(recipe.target)  # fail on an unknown target before any slow work
    if not force and (existing := _reusable(out, recipe)) is not None:
        reporter.note(f"{out} is up to date with this recipe and model; reusing it (--force rebuilds).")
        return existing

    data = read_data_spec(recipe.data) if recipe.data is not None else None
    _check_data_for_variants(recipe, data)
    parity_texts = pick_parity_texts(data.texts if data else PROBE_TEXTS, recipe.parity.samples)

    with reporter.stage(f"Loading {recipe.model}"):
        source = load_text_classifier(recipe.model, recipe.revision, recipe.trust_remote_code)
    distillation = None
    if recipe.distill is not None:
        source, distillation = distill_source(source, recipe, data, out, reporter, resume)
    with atomic_directory(out) as staging:
        reference_dir = staging / REFERENCE if recipe.is_bundle else staging
        manifest = _build_reference(source, reference_dir, recipe, target, parity_texts, reporter, distillation)
        summary = None
        if recipe.is_bundle:
            from edgekit.convert_variants import build_variants

            assert data is not None  # checked by _check_data_for_variants
            summary = build_variants(source, staging, recipe, target, data, parity_texts, reporter)
            manifest = read_manifest(staging / summary["locations"][summary["recommended"]])
    artifact_dir = out / summary["locations"][summary["recommended"]] if summary else out
    return ConvertResult(artifact_dir, manifest, False, time.perf_counter() - started, summary)


def _check_data_for_variants(recipe: Recipe, data: TextDataset | None) -> None:
    if recipe.is_bundle and data is None:
        raise RecipeError(
            f"Variants {recipe.variants} are each gated against the FP32 reference on real data: "
            "pass --data FILE (labelled, to gate on accuracy) or set `data:` in the recipe."
        )
    needs_calibration = [name for name in recipe.variants if VARIANTS[name].needs_calibration]
    if needs_calibration and data is None and recipe.quantization.calibration.data is None:
        raise RecipeError(f"Variants {needs_calibration} need calibration data: pass --data FILE.")


def distill_source(
    teacher: LoadedSource, recipe: Recipe, data: TextDataset | None, out: Path, reporter: Reporter, resume: bool
) -> tuple[LoadedSource, dict[str, Any]]:
    """Distil the recipe's model; return the student as the new source, and what was done."""
    from edgekit.distill.stage import run_distillation

    spec = recipe.distill
    assert spec is not None
    train = read_data_spec(spec.data)
    evaluation = read_data_spec(spec.eval_data) if spec.eval_data is not None else data
    if evaluation is None:
        raise RecipeError("Distillation picks its best checkpoint on dev data: set distill.eval_data or data.")
    work = spec.work_dir or out.parent / ".edgekit-work" / out.name
    result = run_distillation(teacher, spec, train, evaluation, work / "distill", reporter, resume)
    record = {k: v for k, v in result.record.items() if k != "cache_key"}
    reporter.note(describe_distillation(record))
    student = load_text_classifier(str(result.checkpoint))
    student.info = {**student.info, "distilled": True, "teacher": teacher.info}
    return student, record


def describe_distillation(record: dict[str, Any]) -> str:
    if record["student_accuracy"] is None:
        quality = f"agreement with the teacher {record['agreement_with_teacher']:.4f}"
    else:
        drop = (record["teacher_accuracy"] - record["student_accuracy"]) * 100
        quality = (
            f"student accuracy {record['student_accuracy']:.4f} vs teacher {record['teacher_accuracy']:.4f} "
            f"({-drop:+.2f} pts), agreement {record['agreement_with_teacher']:.4f}"
        )
    return (
        f"distilled {record['student_layers']} layers {record['layer_map']} in {record['steps']} steps "
        f"({record['train_seconds']:.0f}s): {quality}"
    )


def _build_reference(
    source: LoadedSource,
    folder: Path,
    recipe: Recipe,
    target: TargetProfile,
    parity_texts: list[str],
    reporter: Reporter,
    distillation: dict[str, Any] | None = None,
) -> Manifest:
    folder.mkdir(parents=True, exist_ok=True)
    with reporter.stage(f"Exporting ONNX ({recipe.export.exporter})"):
        graph = export_onnx(source, folder, recipe.export)
    with reporter.stage("Packaging the artifact"):
        manifest = _package(source, folder, graph, recipe, target)
        if distillation is not None:
            manifest.metrics["distillation"] = distillation
    with reporter.stage(f"Checking parity on {len(parity_texts)} real texts"):
        report = check_parity(source, folder, parity_texts, recipe.parity.batch_sizes, recipe.parity.atol)
        manifest.parity = report.to_dict()
        seal(folder, manifest)
    reporter.note(describe_parity(report))
    if not report.passed:
        raise ParityError(
            f"The exported model does not match PyTorch: max |Δlogit| {report.max_abs_diff:.3e} "
            f"(allowed {report.atol:.1e}), {report.tokenizer_mismatches} tokenizer mismatches. "
            "Nothing was written. Try the other exporter (--exporter), or raise parity.atol in the "
            "recipe if this difference is acceptable for your use."
        )
    return manifest


def describe_parity(report: ParityReport) -> str:
    return (
        f"parity: max |Δlogit| {report.max_abs_diff:.2e} (allowed {report.atol:.0e}), "
        f"label agreement {report.label_agreement:.3f}, token lengths {report.token_lengths}"
    )


def _package(source: LoadedSource, staging: Path, graph, recipe: Recipe, target: TargetProfile) -> Manifest:
    tokenizer = source.tokenizer
    tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
    max_length = min(recipe.export.max_length or source.max_length, source.max_length)
    manifest = Manifest(
        task=source.task,
        labels=source.labels,
        engine="onnxruntime",
        precision="fp32",
        model_file=graph.model_path.name,
        inputs=graph.inputs,
        outputs=graph.outputs,
        tokenizer={
            "file": TOKENIZER_FILE,
            "max_length": max_length,
            "pad_id": tokenizer.pad_token_id,
            "pad_token": tokenizer.pad_token,
            "truncation_side": tokenizer.truncation_side,
        },
        source=source.info,
        recipe_hash=recipe.content_hash(),
        edgekit_version=__version__,
        target=target.name,
        exporter=f"{graph.exporter} (opset {graph.opset})",
        runtime=runtime_defaults(target),
    )
    return seal(staging, manifest)


def package_variant(reference_dir: Path, folder: Path, engine: str, precision: str, model_file: str) -> Manifest:
    """A variant's artifact: its model file(s) plus the reference's tokenizer and manifest fields."""
    reference = read_manifest(reference_dir)
    shutil.copy2(reference_dir / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    fields = {**reference.__dict__, "engine": engine, "precision": precision, "model_file": model_file}
    kept = {k: v for k, v in reference.metrics.items() if k == "distillation"}  # a property of the weights
    fields.update(parity=None, metrics=kept, notes=[], files={})
    return seal(folder, Manifest(**fields))


def manifest_path(folder: Path) -> Path:
    return folder / MANIFEST_NAME
