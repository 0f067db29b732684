"""Run a recipe: load → export → package → parity gate, writing one artifact atomically.

Each run is keyed by the recipe's hash and the source weights' sha256: when an artifact
with the same key already sits at the destination and still verifies, it is reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgekit import __version__
from edgekit.artifact import Manifest, atomic_directory, load_manifest, seal
from edgekit.data import PROBE_TEXTS, read_text_dataset
from edgekit.errors import ArtifactError, ParityError, RecipeError
from edgekit.export import export_onnx
from edgekit.export.parity import check_parity, pick_parity_texts
from edgekit.progress import Reporter, SilentReporter
from edgekit.recipe import Recipe
from edgekit.sources import LoadedSource, load_text_classifier, resolve_reference
from edgekit.targets import load_target

TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class ConvertResult:
    artifact_dir: Path
    manifest: Manifest
    reused: bool
    seconds: float


def _reusable(out: Path, recipe: Recipe) -> Manifest | None:
    """The existing artifact at ``out`` if it was made from this recipe and these weights."""
    if not (out / "manifest.json").is_file():
        return None
    try:
        manifest = load_manifest(out, verify=True)
    except ArtifactError:
        return None
    _, source_info = resolve_reference(recipe.model)
    same_weights = manifest.source.get("weights_sha256") == source_info.get("weights_sha256")
    is_local = source_info["kind"] == "hf-dir"
    if manifest.recipe_hash == recipe.content_hash() and is_local and same_weights:
        return manifest
    return None


def convert(recipe: Recipe, reporter: Reporter | None = None, force: bool = False) -> ConvertResult:
    """Convert the recipe's model into an artifact directory at ``recipe.out``."""
    reporter = reporter or SilentReporter()
    started = time.perf_counter()
    if recipe.out is None:
        raise RecipeError("The recipe has no `out:` folder; set one in the recipe or pass --out DIR.")
    out = Path(recipe.out)
    target = load_target(recipe.target)  # fail on an unknown target before any slow work
    if not force and (existing := _reusable(out, recipe)) is not None:
        reporter.note(f"{out} is up to date with this recipe and model; reusing it (--force rebuilds).")
        return ConvertResult(out, existing, True, time.perf_counter() - started)

    texts = PROBE_TEXTS
    if recipe.data is not None:
        data = read_text_dataset(
            recipe.data.path, recipe.data.text_column, recipe.data.label_column, recipe.data.format
        )
        texts = data.texts
    parity_texts = pick_parity_texts(texts, recipe.parity.samples)

    with reporter.stage(f"Loading {recipe.model}"):
        source = load_text_classifier(recipe.model, recipe.revision, recipe.trust_remote_code)
    with atomic_directory(out) as staging:
        with reporter.stage(f"Exporting ONNX ({recipe.export.exporter})"):
            graph = export_onnx(source, staging, recipe.export)
        with reporter.stage("Packaging the artifact"):
            manifest = _package(source, staging, graph, recipe, target.name)
        with reporter.stage(f"Checking parity on {len(parity_texts)} real texts"):
            report = check_parity(source, staging, parity_texts, recipe.parity.batch_sizes, recipe.parity.atol)
            manifest.parity = report.to_dict()
            seal(staging, manifest)
        reporter.note(
            f"parity: max |Δlogit| {report.max_abs_diff:.2e} (allowed {report.atol:.0e}), "
            f"label agreement {report.label_agreement:.3f}, token lengths {report.token_lengths}"
        )
        if not report.passed:
            raise ParityError(
                f"The exported model does not match PyTorch: max |Δlogit| {report.max_abs_diff:.3e} "
                f"(allowed {report.atol:.1e}), {report.tokenizer_mismatches} tokenizer mismatches. "
                "Nothing was written. Try the other exporter (--exporter), or raise parity.atol in the "
                "recipe if this difference is acceptable for your use."
            )
    return ConvertResult(out, manifest, False, time.perf_counter() - started)


def _package(source: LoadedSource, staging: Path, graph, recipe: Recipe, target: str) -> Manifest:
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
        target=target,
        exporter=f"{graph.exporter} (opset {graph.opset})",
    )
    return seal(staging, manifest)
