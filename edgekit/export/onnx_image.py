"""ONNX export of an image classifier: input ``pixel_values`` float32 [batch, C, H, W] (batch
dynamic, the image size fixed by the pre-processing), output ``logits``.

``torch.onnx.export`` serves both kinds of source (a plain ``nn.Module`` and a Hugging Face image
classifier): TorchScript (``exporter: optimum``, the same exporter Optimum drives, without its
dynamic height/width axes, which the manifest's fixed input size does not want) or
``dynamo``. Parity on real images decides whether the result is kept (convert/packaging.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from edgekit.convert.sources import LoadedSource
from edgekit.errors import ExportError


def export_image_classifier(source: LoadedSource, workdir: Path, opset: int | None, dynamo: bool) -> Path:
    import torch

    from edgekit.convert.image_sources import image_logits, input_size

    class LogitsOnly(torch.nn.Module):
        """pixel_values in, logits out, whatever the module returns (a tensor, a tuple, an HF output)."""

        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return image_logits(self.model, pixel_values)

    assert source.preprocessing is not None
    example = torch.zeros((2, *input_size(source.preprocessing)), dtype=torch.float32)
    wrapper = LogitsOnly(source.model).eval()
    path = workdir / "model.onnx"
    names = {"input_names": ["pixel_values"], "output_names": ["logits"]}
    if dynamo:
        axes = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)}
    else:
        axes = {"dynamic_axes": {"pixel_values": {0: "batch"}, "logits": {0: "batch"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(wrapper, (example,), str(path), dynamo=dynamo, opset_version=opset or 17,
                              external_data=False, verbose=False, **names, **axes)  # fmt: skip
        except Exception as exc:  # both exporters raise many kinds of errors
            raise ExportError(f"torch.onnx.export ({'dynamo' if dynamo else 'TorchScript'}) failed: {exc}") from exc
        finally:
            wrapper.eval()  # the exporter may leave the module tree in training mode (dropout, batch norm)
            source.model.eval()
    return path
