"""`edgekit convert`: a recipe (or the flags that stand for one) into an artifact or a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.choices import CalibrationMethod, Exporter, Quantize, value
from edgekit.cli.common import OnnxLabelsOption, OnnxTokenizerOption, console, err_console, given, user_errors
from edgekit.errors import RecipeError


@user_errors
def convert(
    recipe: Annotated[Path | None, typer.Argument(help="Recipe YAML; flags below override its fields.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="HF checkpoint directory or hub id; an ONNX file or Optimum ONNX export folder."
        ),
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="Task; default: read from the checkpoint's config.json (architectures).")
    ] = None,
    tokenizer: OnnxTokenizerOption = None,
    labels: OnnxLabelsOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Artifact folder to write.")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="Target profile name or YAML path.")] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", "-d", help="TSV/CSV/JSONL (text, label): inputs for parity, calibration and the gate."),
    ] = None,
    exporter: Annotated[Exporter | None, typer.Option(help="ONNX exporter (default optimum).")] = None,
    atol: Annotated[float | None, typer.Option(help="Max abs logit difference allowed (default 1e-4).")] = None,
    max_length: Annotated[int | None, typer.Option(help="Truncation length for the runtime.")] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision (branch, tag, commit).")] = None,
    variants: Annotated[
        str | None, typer.Option(help="Comma-separated variants to build, gate and benchmark (listed above).")
    ] = None,
    quantize: Annotated[
        Quantize | None,
        typer.Option("--quantize", "-q", help="Shorthand: adds ort-int8-dynamic or ort-int8-static."),
    ] = None,
    calibration_method: Annotated[CalibrationMethod | None, typer.Option(help="Calibration method.")] = None,
    calibration_samples: Annotated[int | None, typer.Option(help="Calibration texts (default 100).")] = None,
    max_accuracy_drop: Annotated[
        float | None, typer.Option(help="Accuracy points a variant may lose (default: target budget, else 1.0).")
    ] = None,
    bench: Annotated[bool, typer.Option(help="Benchmark the variants to pick the recommended one.")] = True,
    distill_layers: Annotated[
        str | None, typer.Option(help="Distil first: a layer count (e.g. 3) or teacher layers (e.g. 0,2,4).")
    ] = None,
    distill_data: Annotated[
        Path | None, typer.Option(help="Training texts for distillation (labels optional).")
    ] = None,
    distill_epochs: Annotated[float | None, typer.Option(help="Distillation epochs (default 1).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted distillation from its checkpoint.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even if the artifact is up to date.")] = False,
    record_source_path: Annotated[
        bool,
        typer.Option(
            help="Also record the source model's absolute local path in the manifests "
            "(by default only its name and weights sha256 are recorded)."
        ),
    ] = False,
) -> None:
    """Convert a fine-tuned model into an artifact: ONNX export, parity gate, manifest.

    With several variants the output folder holds one artifact per variant, each gated on
    your data against the FP32 reference and benchmarked on the target; `summary.md` names
    the recommended one (the fastest that passed). Variants: {variants}.

    **Examples:**

    `edgekit convert recipe.yaml`

    `edgekit convert --model ./my-bert --task text-classification --out artifacts/my-bert --data dev.tsv`

    `edgekit convert --model ./my-bert --out artifacts/my-bert --data dev.tsv --quantize dynamic`

    `edgekit convert -m ./my-bert -o artifacts/my-bert -d dev.tsv -t x86-avx2-box -q static`

    `edgekit convert --model ./my-bert --out artifacts/my-bert --data dev.tsv --target x86-avx2-box
    --variants onnx-fp32,ort-int8-dynamic,ort-int8-static,ov-fp32,ov-int8`

    `edgekit convert --model model.onnx --tokenizer ./tok --labels neg,pos --out artifacts/onnx --data dev.tsv
    --quantize dynamic`

    `edgekit convert --model ./my-bert --out artifacts/student --data dev.tsv --distill-layers 3
    --distill-data train.tsv --quantize dynamic`
    """
    from edgekit.convert.pipeline import convert as run_convert
    from edgekit.convert.recipe import build_recipe, load_recipe
    from edgekit.progress import ConsoleReporter

    fields: dict = load_recipe(recipe).model_dump(exclude_unset=True) if recipe else {}
    overrides = {"model": model, "task": task, "out": out, "target": target, "revision": revision,
                 "record_source_path": record_source_path or None}  # fmt: skip
    fields.update({k: v for k, v in overrides.items() if v is not None})
    if data is not None:  # keep the recipe's column names and format; only the file changes
        fields["data"] = {**(fields.get("data") or {}), "path": data}
    if exporter is not None or max_length is not None:
        fields["export"] = {**fields.get("export", {}), **given(exporter=value(exporter), max_length=max_length)}
    if atol is not None:
        fields["parity"] = {**fields.get("parity", {}), "atol": atol}
    _apply_variant_flags(fields, variants, value(quantize))
    calibration = given(method=value(calibration_method), samples=calibration_samples)
    if calibration:
        quantization = fields.setdefault("quantization", {})
        quantization["calibration"] = {**quantization.get("calibration", {}), **calibration}
    if max_accuracy_drop is not None:
        fields["gate"] = {**fields.get("gate", {}), "max_accuracy_drop": max_accuracy_drop}
    if not bench:
        fields["bench"] = {**fields.get("bench", {}), "enabled": False}
    _apply_distill_flags(fields, distill_layers, distill_data, distill_epochs)
    if "model" not in fields:
        raise RecipeError("Say which model to convert: pass a recipe file or --model PATH_OR_HUB_ID.")
    _apply_onnx_flags(fields, tokenizer, labels)
    _pick_task(fields)
    recipe_ = build_recipe(fields, origin="The conversion settings")
    result = run_convert(recipe_, ConsoleReporter(err_console), force, resume)
    manifest = result.manifest
    verb = "Reused" if result.reused else "Wrote"
    if result.summary is None:
        reference = f"{manifest.parity['reference']}, " if "reference" in manifest.parity else ""
        accuracy = manifest.metrics.get("accuracy", {}).get("accuracy")
        console.print(
            f"{verb} {result.artifact_dir} ({manifest.engine}, {manifest.precision}, "
            f"{len(manifest.labels)} labels); {reference}parity max |Δlogit| {manifest.parity['max_abs_diff']:.2e}"
            + (f"; accuracy {accuracy:.4f}." if accuracy is not None else ".")
        )
        _print_pin(result.artifact_dir)
        return
    from edgekit.convert.summary import rich_table

    summary = result.summary
    console.print(rich_table(summary))
    rejected = summary.rejected
    if rejected:
        console.print(
            f"[bold red]Rejected by the accuracy gate:[/] {', '.join(rejected)} "
            f"(kept under {result.out}/rejected/ for inspection; do not deploy them)."
        )
    for name, reason in summary.not_runnable.items():
        console.print(f"[yellow]Built but not runnable here, so neither gated nor benchmarked:[/] {name} ({reason}).")
    console.print(
        f"{verb} {result.out}. [bold]Recommended: {summary.recommended}[/] — {summary.recommended_because}.\n"
        f"Load it with EdgeModel.load('{result.out}') or use {result.artifact_dir}. Details: {result.out}/summary.md"
    )
    _print_pin(result.artifact_dir)


def _print_pin(artifact_dir: Path) -> None:
    """The manifest's sha256: an app that pins it loads exactly this artifact and nothing else."""
    from edgekit.artifact import MANIFEST_NAME, sha256_file

    digest = sha256_file(artifact_dir / MANIFEST_NAME)
    console.print(f"Pin it in an app: EdgeModel.load(..., manifest_sha256='{digest}')")


def _apply_onnx_flags(fields: dict, tokenizer: Path | None, labels: str | None) -> None:
    """--tokenizer / --labels make the model an ONNX source: ``model: {onnx, tokenizer, labels}``."""
    if tokenizer is None and labels is None:
        return
    model = fields["model"]
    spec = dict(model) if isinstance(model, dict) else {"onnx": str(model)}
    if "onnx" not in spec:
        raise RecipeError("--tokenizer and --labels describe an ONNX model: pass --model FILE.onnx with them.")
    if Path(spec["onnx"]).expanduser().is_dir():  # an export folder: its model.onnx, tokenizer beside it
        spec["onnx"] = str(Path(spec["onnx"]) / "model.onnx")
    if tokenizer is not None:
        spec["tokenizer"] = tokenizer
    if labels is not None:
        spec["labels"] = [name.strip() for name in labels.split(",") if name.strip()]
        if len(spec["labels"]) < 2:
            raise RecipeError(f"--labels takes two or more comma-separated names (neg,pos), not '{labels}'.")
    fields["model"] = spec


def _pick_task(fields: dict) -> None:
    """No task given: read it from a local checkpoint's config.json, and say which and why."""
    from edgekit.convert.onnx_source import onnx_spec
    from edgekit.tasks.detect import explain_task, read_config

    model = fields["model"]
    if "task" in fields or not isinstance(model, (str, Path)) or onnx_spec(str(model)) is not None:
        return  # a task given, a mapping (factory, ONNX: its own task), or an ONNX file or export folder
    folder = Path(model).expanduser()
    if not (folder / "config.json").is_file():
        return  # a hub id (no network here) or a folder the loader refuses with its own message
    task, reason = explain_task(read_config(folder))
    fields["task"] = task
    err_console.print(f"Task: {task} (detected: {reason}; --task overrides).")


def _apply_distill_flags(fields: dict, layers: str | None, data: Path | None, epochs: float | None) -> None:
    if layers is None and data is None and epochs is None:
        return
    spec = dict(fields.get("distill") or {})
    if layers is not None:
        try:
            numbers = [int(part) for part in layers.split(",")]
        except ValueError:
            raise RecipeError(
                f"--distill-layers takes a count (3) or teacher layers (0,2,4), not '{layers}'."
            ) from None
        spec["student_layers"] = numbers if "," in layers else numbers[0]
    if data is not None:
        spec["data"] = {"path": data}
    if epochs is not None:
        spec["epochs"] = epochs
    if "data" not in spec:
        raise RecipeError("Distillation needs training texts: pass --distill-data FILE.")
    fields["distill"] = spec


def _apply_variant_flags(fields: dict, variants: str | None, quantize: str | None) -> None:
    if variants is not None:
        fields["variants"] = [name.strip() for name in variants.split(",") if name.strip()]
    if quantize is None:
        return
    shorthand = {"dynamic": "ort-int8-dynamic", "static": "ort-int8-static", "none": None}
    if quantize not in shorthand:
        raise RecipeError(f"--quantize takes dynamic, static or none, not '{quantize}'.")
    chosen = list(fields.get("variants", ["onnx-fp32"]))
    if shorthand[quantize] and shorthand[quantize] not in chosen:
        chosen.append(shorthand[quantize])
    fields["variants"] = chosen


def _describe_variants() -> str:
    from edgekit.convert.variants import variants  # light: kinds import their libraries only to build

    return ", ".join(f"`{kind.name}` ({kind.description})" for kind in variants().values())


convert.__doc__ = (convert.__doc__ or "").replace("{variants}", _describe_variants())
