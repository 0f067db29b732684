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
    source_info = describe_model(recipe.model)
    if source_info["kind"] not in ("hf-dir", "module"):
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
            source = task.load_source(recipe.model, recipe.revision, recipe.trust_remote_code, record)
    distillation = None
    if recipe.distill is not None:
        source, distillation = distill_source(source, recipe, data, out, reporter, resume)
    with atomic_directory(out, "bundle" if recipe.is_bundle else "artifact", inputs) as staging:
        reference_dir = staging / REFERENCE if recipe.is_bundle else staging
        manifest = build_reference(source, reference_dir, recipe, target, parity_texts, reporter, distillation)
        summary = None
        if recipe.is_bundle:
            assert data is not None  # checked by _check_data_for_variants
            summary = build_variants(source, staging, recipe, target, data, parity_texts, reporter)
            manifest = read_manifest(staging / summary.locations[summary.recommended])
    artifact_dir = out / summary.locations[summary.recommended] if summary else out
    return ConvertResult(artifact_dir, manifest, False, time.perf_counter() - started, summary)


def _check_data_for_variants(recipe: Recipe, data: TextDataset | None) -> None:
    if recipe.is_bundle and data is None:
        raise RecipeError(
            f"Variants {recipe.variant_names} are each gated against the FP32 reference on real data: "
            "pass --data FILE (labelled, to gate on accuracy) or set `data:` in the recipe."
        )
    needs_calibration = [name for name in recipe.variant_names if get_variant(name).needs_calibration]
    if needs_calibration and data is None and recipe.quantization.calibration.data is None:
        raise RecipeError(f"Variants {needs_calibration} need calibration data: pass --data FILE.")
