"""ONNX export through ``torch.onnx.export(dynamo=True)``.

Parity is as good as Optimum's, but ORT fuses less of this graph (no Attention fusion),
so it is 5-15% slower at sequence 128 on CPU (docs/stack-findings.md); it is the fallback.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from edgekit.convert.sources import LoadedSource
from edgekit.errors import ExportError

_EXAMPLE_TEXTS = ["a short example", "a somewhat longer example sentence for tracing dynamic shapes"]


def export_with_dynamo(source: LoadedSource, workdir: Path, opset: int | None) -> Path:
    import torch

    input_names = list(source.tokenizer.model_input_names)

    class LogitsOnly(torch.nn.Module):
        """Positional inputs in a fixed order, logits out: what the ONNX graph exposes."""

        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(input_names, tensors, strict=True))).logits

    encoded = source.tokenizer(_EXAMPLE_TEXTS, padding=True, return_tensors="pt")
    example = tuple(encoded[name] for name in input_names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    # One entry for the *tensors varargs, holding one spec per tensor.
    dynamic_shapes = (tuple({0: batch, 1: sequence} for _ in input_names),)
    path = workdir / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                LogitsOnly(source.model),
                example,
                str(path),
                dynamo=True,
                input_names=input_names,
                output_names=["logits"],
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
        except Exception as exc:  # torch.export raises many kinds of errors
            raise ExportError(f"torch.onnx.export(dynamo=True) failed: {exc}") from exc
    return path
