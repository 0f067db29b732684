"""ONNX export through Optimum's exporter (TorchScript-based, fully fused by ORT)."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

from edgekit.convert.sources import LoadedSource
from edgekit.errors import ExportError


def export_with_optimum(source: LoadedSource, workdir: Path, opset: int | None) -> Path:
    from optimum.exporters.onnx import onnx_export_from_model

    # Optimum writes config and tokenizer files beside the graph; keep only the graph.
    with tempfile.TemporaryDirectory(dir=workdir) as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation and tracer warnings, known and harmless
        try:
            onnx_export_from_model(
                source.model,
                output=scratch,
                task=source.task,
                opset=opset,
                do_validation=False,  # edgekit runs its own parity check on real inputs
            )
        except Exception as exc:  # optimum raises many types for unsupported models
            raise ExportError(
                f"Optimum could not export this {type(source.model).__name__}: {exc}. "
                "Try `exporter: dynamo` in the recipe (or --exporter dynamo)."
            ) from exc
        produced = sorted(Path(scratch).glob("*.onnx*"))
        if not any(p.name == "model.onnx" for p in produced):
            raise ExportError(f"Optimum finished but wrote no model.onnx (found {[p.name for p in produced]}).")
        for path in produced:  # model.onnx and, for large models, its external-data file
            shutil.move(str(path), workdir / path.name)
    return workdir / "model.onnx"
