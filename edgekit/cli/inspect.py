"""`edgekit inspect MODEL`: what `convert` would make of a model, without converting it.

A checkpoint folder: the task read from its config.json and why, its labels and weight files.
An ONNX file or Optimum export folder: every graph check `convert` runs (inputs and their
runtime names, the logits output, opset, external data, input length), then a probe run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.common import OnnxLabelsOption, OnnxTokenizerOption, console, user_errors
from edgekit.errors import SourceError


@user_errors
def inspect(
    model: Annotated[str, typer.Argument(help="HF checkpoint folder, ONNX file or Optimum ONNX export folder.")],
    tokenizer: OnnxTokenizerOption = None,
    labels: OnnxLabelsOption = None,
) -> None:
    """Say which task a model is for and what `convert` checks, without writing anything.

    **Examples:** `edgekit inspect ./my-bert` · `edgekit inspect model.onnx --tokenizer ./tok --labels neg,pos`
    """
    from edgekit.convert.onnx_source import OnnxSpec, onnx_spec

    spec = onnx_spec(model)
    if spec is None and (tokenizer is not None or labels is not None):
        spec = OnnxSpec(onnx=Path(model))
    if spec is not None:
        names = [name.strip() for name in labels.split(",") if name.strip()] if labels else None
        updates = {"tokenizer": tokenizer} if tokenizer is not None else {}
        _inspect_onnx(spec.model_copy(update={**updates, "labels": names or spec.labels}))
        return
    _inspect_checkpoint(Path(model).expanduser())


def _inspect_checkpoint(folder: Path) -> None:
    from edgekit.convert.sources import weight_files
    from edgekit.tasks.detect import explain_task, read_config

    if not folder.is_dir():
        raise SourceError(f"{folder} is not a local folder; `inspect` reads a checkpoint's config.json (no hub).")
    task, reason = explain_task(read_config(folder))
    weights = ", ".join(p.name for p in weight_files(folder)) or "none"
    console.print(f"task: {task}\nwhy: {reason}\nweights: {weights}")


def _inspect_onnx(spec) -> None:
    from edgekit.convert.onnx_source import load_onnx_source

    source = load_onnx_source(spec)  # every check convert runs, and a probe run under ONNX Runtime
    facts, info = source.model.facts, source.info
    renamed = info.get("renamed_inputs") or {}
    inputs = ", ".join(f"{name} -> {new}" if name in renamed else name for name, new in facts.input_map.items())
    console.print(
        f"task: {source.task} (an ONNX graph: the FP32 reference itself)\n"
        f"labels: {', '.join(source.labels)}\ninputs: {inputs}\noutput: {facts.output_name}\n"
        f"opset: {facts.opset}\nmax length: {source.max_length}"
        f" (graph positions: {facts.max_positions or 'not found'})\n"
        f"files: {', '.join(info['weights_files'])} (sha256 {info['weights_sha256'][:16]}…)\n"
        f"producer: {info.get('producer', 'unknown')}\nchecks: passed"
    )
