"""Package what the exporter wrote into an artifact: tokenizer, manifest, parity gate.

The reference (FP32 ONNX) is checked against PyTorch through the runtime itself, so a
tokenizer difference fails the gate as well as a graph difference. Variants reuse the
reference's tokenizer and manifest fields (``package_variant``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.artifact import Manifest, read_manifest
from edgekit.convert.hf_files import copy_hf_files, write_hf_files
from edgekit.convert.onnx_source import KIND as ONNX_KIND
from edgekit.convert.onnx_source import REFERENCE_NOTE, write_reference
from edgekit.convert.recipe import Recipe
from edgekit.convert.sources import LoadedSource
from edgekit.convert.toolchain import toolchain
from edgekit.convert.variants import VariantKind
from edgekit.errors import ParityError
from edgekit.export import export_onnx
from edgekit.export.parity import ParityReport, check_parity
from edgekit.outputs import seal
from edgekit.progress import Reporter
from edgekit.targets.profiles import TargetProfile, runtime_defaults

TOKENIZER_FILE = "tokenizer.json"
_GIVEN_PARITY = "the artifact (runtime, tokenizer.json) vs ONNX Runtime on the given file with the source tokenizer"


def build_reference(
    source: LoadedSource,
    folder: Path,
    recipe: Recipe,
    target: TargetProfile,
    parity_texts: list[str],
    reporter: Reporter,
    distillation: dict[str, Any] | None = None,
) -> Manifest:
    folder.mkdir(parents=True, exist_ok=True)
    exporter = recipe.export.exporter
    if source.preprocessing is not None:  # image classifiers: torch.onnx (export/onnx_image.py)
        exporter = "dynamo" if exporter == "dynamo" else "torchscript"
    given = source.info.get("kind") == ONNX_KIND  # an ONNX file made elsewhere: copied, not exported
    with reporter.stage("Copying the given ONNX graph" if given else f"Exporting ONNX ({exporter})"):
        graph = write_reference(source, folder) if given else export_onnx(source, folder, recipe.export)
    with reporter.stage("Packaging the artifact"):
        manifest = package_reference(source, folder, graph, recipe, target)
        if distillation is not None:
            manifest.metrics["distillation"] = distillation
    with reporter.stage(f"Checking parity on {len(parity_texts)} real inputs"):
        report = check_parity(source, folder, parity_texts, recipe.parity.batch_sizes, recipe.parity.atol)
        manifest.parity = report.to_dict()
        if given:  # what was compared: the packaging and the tokenizer, not an export
            manifest.parity.update(reference=REFERENCE_NOTE, compared=_GIVEN_PARITY)
        seal(folder, manifest)
    reporter.note((f"{REFERENCE_NOTE}; " if given else "") + describe_parity(report))
    if not report.passed and given:
        raise ParityError(
            f"The packaged artifact does not reproduce the given ONNX graph: max |Δlogit| {report.max_abs_diff:.3e} "
            f"(allowed {report.atol:.1e}), {report.tokenizer_mismatches} texts tokenized differently by the "
            "artifact's tokenizer.json and the tokenizer folder. Nothing was written. Check that --tokenizer is "
            "the tokenizer the model was trained with, saved by a transformers *TokenizerFast."
        )
    if not report.passed:
        raise ParityError(
            f"The exported model does not match PyTorch: max |Δlogit| {report.max_abs_diff:.3e} "
            f"(allowed {report.atol:.1e}), {report.tokenizer_mismatches} pre-processing mismatches. "
            "Nothing was written. Try the other exporter (--exporter), or raise parity.atol in the "
            "recipe if this difference is acceptable for your use."
        )
    return manifest


def describe_parity(report: ParityReport) -> str:
    return (
        f"parity: max |Δlogit| {report.max_abs_diff:.2e} (allowed {report.atol:.0e}), "
        f"label agreement {report.label_agreement:.3f}, "
        + (f"token lengths {report.token_lengths}" if report.token_lengths else f"{report.texts} images")
    )


def _tokenizer_fields(source: LoadedSource, staging: Path, recipe: Recipe) -> dict[str, Any] | None:
    """Text: write tokenizer.json and describe it. Image tasks have no tokenizer (``preprocessing`` instead)."""
    tokenizer = source.tokenizer
    if tokenizer is None:
        return None
    tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
    max_length = min(recipe.export.max_length or source.max_length, source.max_length)
    return {
        "file": TOKENIZER_FILE,
        "max_length": max_length,
        "pad_id": tokenizer.pad_token_id,
        "pad_token": tokenizer.pad_token,
        "truncation_side": tokenizer.truncation_side,
    }


def package_reference(source: LoadedSource, staging: Path, graph, recipe: Recipe, target: TargetProfile) -> Manifest:
    manifest = Manifest(
        task=source.task,
        labels=source.labels,
        engine="onnxruntime",
        precision="fp32",
        model_file=graph.model_path.name,
        inputs=graph.inputs,
        outputs=graph.outputs,
        tokenizer=_tokenizer_fields(source, staging, recipe),
        preprocessing=source.preprocessing,
        source=source.info,
        recipe_hash=recipe.content_hash(),
        edgekit_version=__version__,
        toolchain=toolchain(recipe.variant_names),
        target=target.name,
        exporter=f"{graph.exporter} (opset {graph.opset})",
        runtime=runtime_defaults(target),
        batch_invariant=True,  # FP32 graph: a row's logits do not depend on its batch-mates (padding is masked)
    )
    if manifest.tokenizer is not None:  # config.json + tokenizer side files: Optimum opens the folder as it is
        write_hf_files(source, staging, source.labels, manifest.tokenizer["max_length"])
    return seal(staging, manifest)


def package_variant(reference_dir: Path, folder: Path, kind: VariantKind, model_file: str) -> Manifest:
    """A variant's artifact: its model file(s) plus the reference's tokenizer and manifest fields."""
    reference = read_manifest(reference_dir)
    if reference.tokenizer is not None:  # image artifacts carry their pre-processing in the manifest
        shutil.copy2(reference_dir / TOKENIZER_FILE, folder / TOKENIZER_FILE)
        copy_hf_files(reference_dir, folder, model_file)
    fields = {**reference.__dict__, "engine": kind.engine, "precision": kind.precision, "model_file": model_file,
              "batch_invariant": kind.batch_invariant}  # fmt: skip
    kept = {k: v for k, v in reference.metrics.items() if k == "distillation"}  # a property of the weights
    fields.update(parity=None, metrics=kept, notes=[], files={})
    return seal(folder, Manifest(**fields))
