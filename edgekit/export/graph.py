"""Describe an exported ONNX graph: its inputs and outputs with dtypes and dynamic axes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import helper

from edgekit.artifact import TensorSpec
from edgekit.errors import ExportError


@dataclass(frozen=True)
class ExportedGraph:
    model_path: Path
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    exporter: str
    opset: int

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]


def _tensor_specs(values: list[onnx.ValueInfoProto]) -> list[TensorSpec]:
    specs = []
    for value in values:
        tensor_type = value.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        shape: list[str | int] = [
            dim.dim_param if dim.dim_param else int(dim.dim_value) for dim in tensor_type.shape.dim
        ]
        specs.append(TensorSpec(name=value.name, dtype=dtype, shape=shape))
    return specs


def describe_onnx(model_path: Path, exporter: str) -> ExportedGraph:
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others
        raise ExportError(f"The exporter wrote {model_path}, but it is not a readable ONNX file: {exc}") from exc
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    inputs = _tensor_specs(list(model.graph.input))
    outputs = _tensor_specs(list(model.graph.output))
    for spec in inputs:
        if spec.name == "pixel_values":  # images: dynamic batch, fixed channels and size
            fixed = all(isinstance(d, int) for d in spec.shape[1:])
            if len(spec.shape) != 4 or isinstance(spec.shape[0], int) or not fixed:
                raise ExportError(f"Input 'pixel_values' has shape {spec.shape}; expected [batch, C, H, W].")
            continue
        if len(spec.shape) != 2 or any(isinstance(dim, int) for dim in spec.shape):
            raise ExportError(
                f"Input '{spec.name}' has shape {spec.shape}; expected dynamic (batch, sequence) axes. "
                "The export did not keep its dynamic axes."
            )
    return ExportedGraph(model_path, inputs, outputs, exporter, opset)
