"""Export a loaded PyTorch model to ONNX, behind one interface for every exporter.

``optimum`` (default) uses Optimum's exporter, whose graphs ONNX Runtime fuses fully
(Attention, EmbedLayerNorm, SkipLayerNorm). ``dynamo`` uses ``torch.onnx.export(dynamo=True)``,
kept so the project can move when the TorchScript-based exporter is retired.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.convert.recipe import ExportSpec
from edgekit.convert.sources import LoadedSource
from edgekit.export.graph import ExportedGraph, describe_onnx

__all__ = ["ExportedGraph", "export_onnx"]


def export_onnx(source: LoadedSource, workdir: Path, spec: ExportSpec) -> ExportedGraph:
    """Write ``model.onnx`` (dynamic batch and sequence axes) into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    if source.preprocessing is not None:  # an image classifier: pixel_values in, logits out
        from edgekit.export.onnx_image import export_image_classifier

        model_path = export_image_classifier(source, workdir, spec.opset, dynamo=spec.exporter == "dynamo")
        return describe_onnx(model_path, exporter="torchscript" if spec.exporter == "optimum" else "dynamo")
    if spec.exporter == "optimum":
        from edgekit.export.onnx_optimum import export_with_optimum

        model_path = export_with_optimum(source, workdir, spec.opset)
    else:
        from edgekit.export.onnx_dynamo import export_with_dynamo

        model_path = export_with_dynamo(source, workdir, spec.opset)
    return describe_onnx(model_path, exporter=spec.exporter)
