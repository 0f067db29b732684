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

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.artifact import Manifest, load_manifest, read_manifest
from edgekit.convert.bundle import build_variants
from edgekit.convert.distillation import distill_source
from edgekit.convert.image_sources import describe_model
from edgekit.convert.onnx_source import KIND as ONNX_KIND
from edgekit.convert.onnx_source import OnnxSpec, describe, load_onnx_source, onnx_spec, refuse_pytorch_stages
from edgekit.convert.packaging import build_reference
from edgekit.convert.recipe import Recipe, recipe_inputs, record_source_path
from edgekit.convert.sources import LoadedSource
from edgekit.convert.summary import BundleSummary
from edgekit.convert.variants import REFERENCE, get_variant
from edgekit.data import TextDataset
from edgekit.errors import ArtifactError, RecipeError
from edgekit.export.parity import pick_parity_texts
from edgekit.outputs import atomic_directory, check_destination
from edgekit.progress import Reporter, SilentReporter
from edgekit.targets.profiles import load_target
from edgekit.tasks import get_task


@dataclass(frozen=True)
class ConvertResult:
    artifact_dir: Path  # the artifact, or for a bundle the recommended variant's folder
    manifest: Manifest
    reused: bool
    seconds: float
    summary: BundleSummary | None = field(default=None)  # bundles only

    @property
    def out(self) -> Path:
        return self.artifact_dir.parent if self.summary else self.artifact_dir


def _reusable(out: Path, recipe: Recipe) -> ConvertResult | None:
    """The existing output at ``out`` if it was made from this recipe and these weights."""
    source_info = describe(recipe.model) if isinstance(recipe.model, OnnxSpec) else describe_model(recipe.model)
    if source_info["kind"] not in ("hf-dir", "module", ONNX_KIND):
        return None  # a hub model may have changed upstream: rebuild
    try:
        if recipe.is_bundle:
            summary = BundleSummary.read(out)
            artifact_dir = summary.variant_dir(out, summary.recommended)
            for name in summary.built:
                load_manifest(summary.variant_dir(out, name), verify=True)
            key = (summary.recipe_hash, summary.weights_sha256)
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
    recipe: Recipe,
    reporter: Reporter | None = None,
    force: bool = False,
    resume: bool = False,
    source: LoadedSource | None = None,
) -> ConvertResult:
    """Convert the recipe's model into an artifact (or a bundle of variants) at ``recipe.out``.

    ``source``: a model already in memory (``convert.module_api.convert_module``); it is never reused
    from an earlier run, since nothing fingerprints an in-memory module.

    With ``recipe.distill`` the model is first distilled into a student, which is then what
    gets exported; ``resume`` continues an interrupted distillation from its last checkpoint.
    """
    reporter = reporter or SilentReporter()
    started = time.perf_counter()
    if recipe.out is None:
        raise RecipeError("The recipe has no `out:` folder; set one in the recipe or pass --out DIR.")
    out = Path(recipe.out)
    recipe = _onnx_recipe(recipe) if source is None else recipe
    target = load_target(recipe.target)  # fail on an unknown target before any slow work
    inputs = recipe_inputs(recipe, out)
    check_destination(out, inputs)  # before any slow work: never a folder edgekit did not write, nor an input
    if source is None and not force and (existing := _reusable(out, recipe)) is not None:
        reporter.note(f"{out} is up to date with this recipe and model; reusing it (--force rebuilds).")
        return existing

    task = get_task(recipe.task)
    data = task.read_dataset(recipe.data) if recipe.data is not None else None
    _check_data_for_variants(recipe, data)
    parity_texts = pick_parity_texts(data.texts if data else list(task.probe_inputs), recipe.parity.samples)

    if source is None:
        with reporter.stage(f"Loading {recipe.model}"):
            record = record_source_path(recipe)
            if isinstance(recipe.model, OnnxSpec):  # a graph made elsewhere: it is the FP32 reference
                source = load_onnx_source(recipe.model, record)
            else:
                source = task.load_source(recipe.model, recipe.revision, recipe.trust_remote_code, record)
    distillation = None
    if recipe.distill is not None:
        source, distillation = distill_source(source, recipe, data, out, reporter, resume)
    with atomic_directory(out, "bundle" if recipe.is_bundle else "artifact", inputs) as staging:
        reference_dir = staging / REFERENCE if recipe.is_bundle else staging
        manifest = build_reference(source, reference_dir, recipe, target, parity_texts, reporter, distillation)
        if source.info.get("kind") == ONNX_KIND and not recipe.is_bundle and data is not None and data.has_labels:
            manifest = _reference_accuracy(reference_dir, manifest, data, recipe, reporter)  # a bundle does its own
        summary = None
        if recipe.is_bundle:
            assert data is not None  # checked by _check_data_for_variants
            summary = build_variants(source, staging, recipe, target, data, parity_texts, reporter)
            manifest = read_manifest(staging / summary.locations[summary.recommended])
    artifact_dir = out / summary.locations[summary.recommended] if summary else out
    return ConvertResult(artifact_dir, manifest, False, time.perf_counter() - started, summary)


def _onnx_recipe(recipe: Recipe) -> Recipe:
    """An ONNX file (or an export folder without PyTorch weights) as the recipe's model: refuse what
    needs PyTorch before any work, and time no PyTorch row (there is no PyTorch model to time)."""
    spec = onnx_spec(recipe.model)
    if spec is None:
        return recipe
    refuse_pytorch_stages(recipe)
    bench = recipe.bench.model_copy(update={"pytorch_baseline": False})
    return recipe.model_copy(update={"model": spec, "bench": bench})


def _reference_accuracy(
    folder: Path, manifest: Manifest, data: TextDataset, recipe: Recipe, reporter: Reporter
) -> Manifest:
    """The given graph's accuracy on the labelled data, at batch 1 through the runtime (as the gate measures)."""
    from edgekit.convert.gate import batch1_logits
    from edgekit.metrics import accuracy, macro_f1
    from edgekit.outputs import seal

    sample = data.sample(recipe.gate.samples, seed=0)
    labels = sample.label_ids(manifest.labels)
    with reporter.stage(f"Evaluating the FP32 reference on {len(sample.texts)} rows"):
        predicted = batch1_logits(folder, sample.texts).argmax(-1)
    manifest.metrics["accuracy"] = {"accuracy": accuracy(predicted, labels), "macro_f1": macro_f1(predicted, labels),
                                    "rows": len(sample.texts)}  # fmt: skip
    reporter.note(f"FP32 reference accuracy {manifest.metrics['accuracy']['accuracy']:.4f} on {len(labels)} rows")
    return seal(folder, manifest)


def _check_data_for_variants(recipe: Recipe, data: TextDataset | None) -> None:
    if recipe.is_bundle and data is None:
        raise RecipeError(
            f"Variants {recipe.variant_names} are each gated against the FP32 reference on real data: "
            "pass --data FILE (labelled, to gate on accuracy) or set `data:` in the recipe."
        )
    needs_calibration = [name for name in recipe.variant_names if get_variant(name).needs_calibration]
    if needs_calibration and data is None and recipe.quantization.calibration.data is None:
        raise RecipeError(f"Variants {needs_calibration} need calibration data: pass --data FILE.")
