"""Work per input of an ONNX graph: FLOPs and bytes moved per op, at a concrete batch and length.

The graph's symbolic input axes are fixed (axis 0 = batch, every other symbolic axis = the
sequence length) and ``onnx.shape_inference`` propagates them, so each MatMul, Gemm and Conv
gets exact dimensions. Weights are counted at their stored dtype, so an INT8 graph moves
about a quarter of the FP32 bytes. Ops whose shapes stay unknown are listed, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError

# FLOPs per output element of the non-matrix ops that do arithmetic. Rough, and small next to
# the matrix products of a transformer (they are reported apart, as "other").
_ELEMENT_FLOPS = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Sqrt": 1, "Relu": 1, "Tanh": 4, "Sigmoid": 4,
    "Erf": 8, "Gelu": 8, "FastGelu": 8, "Softmax": 5, "LayerNormalization": 8, "ReduceMean": 1,
    "Where": 1, "Max": 1, "Min": 1, "Clip": 1, "Exp": 4, "Log": 4, "BiasGelu": 9, "SkipLayerNormalization": 9,
}  # fmt: skip
# Ops that only move data (no arithmetic) but still read and write their tensors.
_DATA_MOVES = {"Transpose", "Gather", "Concat", "Slice", "Split", "Expand", "Cast", "Tile", "Pad"}
_MATMULS = {"MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "DynamicQuantizeMatMul", "MatMulNBits"}
_CONVS = {"Conv", "ConvInteger", "QLinearConv"}
_INT8_OPS = {"MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv", "DynamicQuantizeMatMul"}
_INT8_TYPES = {"int8", "uint8"}


class GraphCostError(EdgekitError):
    """A graph could not be costed."""


@dataclass(frozen=True)
class OpCost:
    name: str
    op_type: str
    op_class: str  # "matmul", "conv", "other"
    precision: str  # "fp32", "fp16", "int8": the arithmetic the op runs in
    flops: float
    bytes: float  # inputs read + outputs written, weights at their stored dtype
    weight_bytes: float = 0.0  # the part of ``bytes`` that is weights (read from DRAM every inference)


@dataclass(frozen=True)
class GraphCost:
    """Totals for one inference at (batch, seq_len)."""

    source: str  # the graph that was costed (file name)
    batch: int
    seq_len: int
    ops: tuple[OpCost, ...]
    weight_bytes: float  # initializers at their stored dtype
    uncosted: tuple[str, ...] = ()  # op types whose shapes could not be inferred
    notes: tuple[str, ...] = field(default=())

    @property
    def flops(self) -> float:
        return sum(op.flops for op in self.ops)

    @property
    def bytes(self) -> float:
        return sum(op.bytes for op in self.ops)

    def flops_by(self, precision: str) -> float:
        return sum(op.flops for op in self.ops if op.precision == precision)

    def by_class(self) -> dict[tuple[str, str], tuple[float, float]]:
        """(op class, precision) -> (flops, weight bytes): the units the roofline times."""
        totals: dict[tuple[str, str], tuple[float, float]] = {}
        for op in self.ops:
            flops, moved = totals.get((op.op_class, op.precision), (0.0, 0.0))
            totals[(op.op_class, op.precision)] = (flops + op.flops, moved + op.weight_bytes)
        return totals


def _itemsize(elem_type: int) -> int:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize


def _dtype_name(elem_type: int) -> str:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def _fix_inputs(model, batch: int, seq_len: int) -> None:
    """Axis 0 of every graph input is the batch; any other symbolic axis is the sequence."""
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            dim.Clear()
            dim.dim_value = batch if axis == 0 else seq_len


def _tensor_table(model) -> dict[str, tuple[tuple[int, ...] | None, int]]:
    """name -> (shape or None when not fully known, element type)."""
    table: dict[str, tuple[tuple[int, ...] | None, int]] = {}
    graph = model.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        known = tensor.HasField("shape") and all(d is not None and d >= 0 for d in dims)
        table[value.name] = (tuple(dims) if known else None, tensor.elem_type)  # type: ignore[arg-type]
    for init in graph.initializer:
        table[init.name] = (tuple(init.dims), init.data_type)
    return table


def _nbytes(table: dict, name: str) -> float:
    shape, elem = table.get(name, (None, 0))
    if shape is None or not elem:
        return 0.0
    return float(np.prod(shape, dtype=np.float64)) * _itemsize(elem)


def _is_int8_weight(name: str, table: dict, producers: dict) -> bool:
    """A weight stored as int8/uint8: directly, or behind a DequantizeLinear (QDQ graphs)."""
    node = producers.get(name)
    if node is not None and node.op_type == "DequantizeLinear":
        name = node.input[0]
    shape_elem = table.get(name)
    return bool(shape_elem and shape_elem[1] and _dtype_name(shape_elem[1]) in _INT8_TYPES)


def _matmul_flops(node, table: dict) -> float | None:
    a = table.get(node.input[0], (None, 0))[0]
    out = table.get(node.output[0], (None, 0))[0]
    if node.op_type == "Gemm":
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        if a is None or out is None:
            return None
        k = a[0] if trans_a else a[-1]
        return 2.0 * float(np.prod(out, dtype=np.float64)) * k
    if a is None or out is None or not a:
        return None
    return 2.0 * float(np.prod(out, dtype=np.float64)) * a[-1]


def _conv_flops(node, table: dict) -> float | None:
    weight = table.get(node.input[3 if node.op_type == "QLinearConv" else 1], (None, 0))[0]
    out = table.get(node.output[0], (None, 0))[0]
    if weight is None or out is None:
        return None
    return 2.0 * float(np.prod(out, dtype=np.float64)) * float(np.prod(weight[1:], dtype=np.float64))


def _weight_bytes(node, table: dict, producers: dict, initializers: set[str]) -> float:
    """Bytes of the initializers a node reads, directly or through a DequantizeLinear."""
    total = 0.0
    for name in node.input:
        source = producers.get(name)
        if source is not None and source.op_type == "DequantizeLinear" and source.input[0] in initializers:
            name = source.input[0]
        if name in initializers:
            total += _nbytes(table, name)
    return total


def _op_cost(node, table: dict, producers: dict, initializers: set[str]) -> OpCost | None:
    """The cost of one node, or None when a shape it needs is unknown."""
    op = node.op_type
    moved = sum(_nbytes(table, n) for n in node.input if n) + sum(_nbytes(table, n) for n in node.output if n)
    weights = _weight_bytes(node, table, producers, initializers)
    if op == "Gather" and node.input[0] in initializers:  # an embedding lookup reads only its rows
        out_bytes = _nbytes(table, node.output[0])
        moved, weights = moved - weights + out_bytes, min(weights, out_bytes)
    out_shape, out_elem = table.get(node.output[0], (None, 0)) if node.output else (None, 0)
    precision = "fp16" if out_elem and _dtype_name(out_elem) == "float16" else "fp32"
    if op in _MATMULS or op == "Gemm":
        flops = _matmul_flops(node, table)
        weight_input = node.input[3] if op == "QLinearMatMul" else node.input[1]
        int8 = op in _INT8_OPS or _is_int8_weight(weight_input, table, producers)
        op_class = "matmul"
    elif op in _CONVS:
        flops = _conv_flops(node, table)
        int8 = op in _INT8_OPS or _is_int8_weight(node.input[1], table, producers)
        op_class = "conv"
    else:
        elements = None if out_shape is None else float(np.prod(out_shape, dtype=np.float64))
        per_element = _ELEMENT_FLOPS.get(op, 0)
        flops = None if (elements is None and (per_element or op in _DATA_MOVES)) else (elements or 0) * per_element
        int8, op_class = False, "other"
    if flops is None:
        return None
    return OpCost(node.name or op, op, op_class, "int8" if int8 else precision, flops, moved, weights)


def _infer_shapes(model, name: str):
    """ONNX Runtime's symbolic inference: it follows Shape -> Reshape chains (and contrib ops)
    that ``onnx.shape_inference`` leaves unknown in exported transformers; onnx's is the fallback."""
    import onnx

    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        return SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # an op it does not know: fall back, and report the ops left unknown
        pass
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        raise GraphCostError(f"ONNX shape inference failed on {name}: {exc}") from None


def graph_cost(onnx_file: Path | str, batch: int = 1, seq_len: int = 128) -> GraphCost:
    """FLOPs and bytes of one inference of ``onnx_file`` at ``batch`` x ``seq_len`` tokens."""
    import onnx

    path = Path(onnx_file)
    try:
        # Weights' dims and dtypes are in the graph; their data (maybe external) is not needed.
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise GraphCostError(f"Cannot read the ONNX graph {path.name} to cost it: {exc}") from None
    if not model.graph.node:  # an empty or foreign protobuf can parse as an empty model
        raise GraphCostError(f"{path.name} holds no ONNX graph to cost (no nodes); is it an ONNX model?")
    _fix_inputs(model, batch, seq_len)
    model = _infer_shapes(model, path.name)
    table = _tensor_table(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    initializers = {t.name for t in model.graph.initializer}
    ops, uncosted = [], []
    for node in model.graph.node:
        cost = _op_cost(node, table, producers, initializers)
        if cost is None:
            uncosted.append(node.op_type)
        else:
            ops.append(cost)
    weights = sum(_nbytes(table, t.name) for t in model.graph.initializer)
    return GraphCost(path.name, batch, seq_len, tuple(ops), weights, tuple(sorted(set(uncosted))))


def as_precision(cost: GraphCost, precision: str, why: str) -> GraphCost:
    """The same math run at another precision (an OpenVINO INT8 IR costed from its ONNX reference).

    Matrix ops move to ``precision`` and their bytes (weights and activations alike, a
    simplification) scale with its item size; other ops are unchanged. ``why`` is kept in the
    notes, so the output says what was costed.
    """
    size = {"fp32": 4, "fp16": 2, "int8": 1}[precision]
    ops = []
    for op in cost.ops:
        if op.op_class in {"matmul", "conv"} and op.precision != precision:
            scale = size / {"fp32": 4, "fp16": 2, "int8": 1}[op.precision]
            ops.append(
                OpCost(op.name, op.op_type, op.op_class, precision, op.flops, op.bytes * scale, op.weight_bytes * scale)
            )
        else:
            ops.append(op)
    ratio = size / 4
    return GraphCost(cost.source, cost.batch, cost.seq_len, tuple(ops), cost.weight_bytes * ratio,
                     cost.uncosted, (*cost.notes, why))  # fmt: skip
