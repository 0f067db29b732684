"""PyTorch → ExecuTorch ``.pte`` with the XNNPACK delegate, FP32 or INT8 (PT2E quantization).

``torch.export`` traces a small wrapper that takes the manifest's inputs positionally and
returns the logits; the batch and sequence axes stay dynamic (sequence up to the manifest's
``tokenizer.max_length``, so the runtime's truncation keeps every input inside the range the
program accepts). The edge program is lowered with ``XnnpackPartitioner`` and serialized.
Everything imports executorch/torch inside functions: the variant registry stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ExportError

# The order the wrapper takes its inputs in, and the engine feeds them in: the runtime's own
# order for text feeds, then any other input in the manifest's order.
CANONICAL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def positional_order(names: Sequence[str]) -> list[str]:
    """``names`` in the order the exported program takes them (shared with the runtime engine)."""
    known = [name for name in CANONICAL_INPUTS if name in names]
    return known + [name for name in names if name not in CANONICAL_INPUTS]


@dataclass(frozen=True)
class ExportPlan:
    """What the program takes: positional input names and the sequence range."""

    input_names: list[str]
    max_length: int
    # ExecuTorch plans memory for the largest shape the program accepts, so the batch axis is
    # bounded too: max_batch x max_length tokens is what the arena is sized for.
    max_batch: int
    min_length: int = 2


def _wrapper(model: Any, input_names: list[str]) -> Any:
    import torch

    class LogitsOnly(torch.nn.Module):
        """Positional inputs in ``input_names`` order → logits (what the manifest's output is)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(input_names, tensors, strict=True))).logits

    # eval() on the outer module: an exporter may have left train mode on (dropout) recursively.
    return LogitsOnly().eval()


def _example(plan: ExportPlan, batch: int, length: int) -> tuple[Any, ...]:
    import torch

    ids = torch.full((batch, length), 5, dtype=torch.long)
    parts = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    return tuple(parts.get(name, torch.zeros_like(ids)) for name in plan.input_names)


def _dynamic_shapes(plan: ExportPlan, module: Any) -> tuple[Any, ...]:
    import torch
    from torch.export import Dim

    batch = Dim("batch", min=1, max=plan.max_batch)
    seq = Dim("seq", min=plan.min_length, max=plan.max_length)
    specs = tuple({0: batch, 1: seq} for _ in plan.input_names)
    # The wrapper takes ``*tensors`` (one nested entry); a PT2E-converted graph takes them flat.
    return specs if isinstance(module, torch.fx.GraphModule) else (specs,)


def _export(module: Any, plan: ExportPlan) -> Any:
    import torch

    # A batch of 2 and a mid-range length: neither specializes to 1 (which export would fix).
    example = _example(plan, 2, max(plan.min_length + 1, min(8, plan.max_length)))
    try:
        with torch.no_grad():
            return torch.export.export(module, example, dynamic_shapes=_dynamic_shapes(plan, module), strict=False)
    except Exception as exc:  # torch.export raises many error types (UserError, constraint violations)
        raise ExportError(
            f"torch.export could not trace the model with dynamic batch and sequence axes: {exc}. "
            "Use an ONNX variant for this model, or report the architecture."
        ) from exc


def quantize_pt2e(
    module: Any, plan: ExportPlan, feeds: list[dict[str, np.ndarray]], *, dynamic: bool, per_channel: bool
) -> Any:
    """PT2E INT8 with ``XNNPACKQuantizer``; static mode calibrates on ``feeds`` (runtime-tokenized)."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=per_channel, is_dynamic=dynamic))
    prepared = prepare_pt2e(_export(module, plan).module(), quantizer)
    calibration = feeds if not dynamic else feeds[:1]  # dynamic: one pass only to run the observers' placeholders
    with torch.no_grad():
        for feed in calibration:
            prepared(*(torch.from_numpy(np.ascontiguousarray(feed[name])) for name in plan.input_names))
    return convert_pt2e(prepared)


def lower_to_pte(module: Any, plan: ExportPlan, destination: Path) -> dict[str, Any]:
    """Export ``module`` (a wrapper or a PT2E-converted graph), lower to XNNPACK, write ``destination``."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = _export(module, plan)
    try:
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        program = edge.to_executorch()
    except Exception as exc:  # lowering errors come from many executorch layers
        raise ExportError(f"ExecuTorch could not lower the model to XNNPACK: {exc}") from exc
    targets = [_op_name(n.target) for n in edge.exported_program().graph_module.graph.nodes if n.op == "call_function"]
    destination.write_bytes(program.buffer)
    delegated = targets.count("executorch_call_delegate")
    # Ops left to ExecuTorch's portable kernels (embeddings, layer norm, masks): the phone build must include them.
    undelegated = sorted({t for t in targets if t not in ("executorch_call_delegate", "getitem")})
    return {"xnnpack_partitions": delegated, "portable_ops": undelegated}


def _op_name(target: Any) -> str:
    """``aten.embedding.default`` for an edge op, the function name otherwise (no addresses, no schemas)."""
    name = getattr(target, "_name", None) or getattr(target, "__name__", None) or str(target)
    return str(name).split(" ")[0]


def wrap(model: Any, plan: ExportPlan) -> Any:
    return _wrapper(model, plan.input_names)
