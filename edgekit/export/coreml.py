"""PyTorch → Core ML ``.mlpackage`` (ML program) with coremltools, FP16 or INT8 weights.

Converts on Linux from ``torch.export`` after ``run_decompositions({})`` (the ATen dialect
coremltools reads). Batch is 1 (an app classifies one text at a time; the runtime runs rows
one by one) and the sequence is a ``RangeDim`` from 2 ([CLS] [SEP]) to the manifest's
``tokenizer.max_length``, so the runtime's truncation keeps every input in range. Core ML takes
no int64 inputs, so token ids are int32; logits are cast back to float32, as the manifest says.
The package cannot be compiled or run on Linux: nothing here claims parity.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgekit.errors import ExportError

MIN_SEQUENCE = 2  # [CLS] [SEP]: the shortest encoding the tokenizer produces
DEPLOYMENT_TARGET = "iOS16"  # ML programs with int8 weight compression (constexpr ops) need iOS 16 / macOS 13


@dataclass(frozen=True)
class CoremlPlan:
    input_names: list[str]  # the manifest's inputs, in its order
    max_length: int
    precision: Literal["fp16", "int8"]


def _wrapper(model: Any, names: list[str]) -> Any:
    import torch

    class LogitsOnly(torch.nn.Module):
        """Named inputs → logits. Named, not *args: torch.export matches dynamic shapes per argument."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Any:
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.model(**{name: given[name] for name in names}).logits

    return LogitsOnly().eval()


def _exported(model: Any, plan: CoremlPlan) -> Any:
    import torch
    from torch.export import Dim

    length = max(MIN_SEQUENCE + 1, min(8, plan.max_length))  # not 1 or 2: export would specialise it
    ids = torch.full((1, length), 5, dtype=torch.long)
    parts = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    sequence = Dim("sequence", min=MIN_SEQUENCE, max=plan.max_length)
    with torch.no_grad():
        program = torch.export.export(
            _wrapper(model, plan.input_names),
            args=(),
            kwargs={name: parts[name] for name in plan.input_names},
            dynamic_shapes={name: {1: sequence} for name in plan.input_names},
        )
    return program.run_decompositions({})


def export_coreml(model: Any, plan: CoremlPlan, target: Path) -> dict[str, Any]:
    """Write ``target`` (a ``.mlpackage`` folder); return the settings to record in the manifest."""
    import coremltools as ct
    import numpy as np

    unknown = [name for name in plan.input_names if name not in ("input_ids", "attention_mask", "token_type_ids")]
    if unknown:
        raise ExportError(f"Core ML export takes input_ids, attention_mask and token_type_ids, not {unknown}.")
    sequence = ct.RangeDim(lower_bound=MIN_SEQUENCE, upper_bound=plan.max_length, default=min(8, plan.max_length))
    inputs = [ct.TensorType(name=name, shape=(1, sequence), dtype=np.int32) for name in plan.input_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # coremltools warns about untested torch versions on every call
        try:
            mlmodel = ct.convert(
                _exported(model, plan),
                inputs=inputs,
                outputs=[ct.TensorType(name="logits", dtype=np.float32)],
                minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
                convert_to="mlprogram",
                compute_precision=ct.precision.FLOAT16,
            )
            if plan.precision == "int8":
                mlmodel = _int8_weights(mlmodel)
            mlmodel.save(str(target))
        except ExportError:
            raise
        except Exception as exc:  # torch.export and coremltools raise many kinds of errors
            raise ExportError(f"Core ML conversion failed: {type(exc).__name__}: {exc}") from exc
    return {
        "tool": f"coremltools {ct.__version__}",
        "convert_to": "mlprogram",
        "minimum_deployment_target": DEPLOYMENT_TARGET,
        "compute_precision": "fp16",
        "weights": "int8 (linear symmetric, per channel)" if plan.precision == "int8" else "fp16",
        "input_dtype": "int32",
        "batch": 1,
        "sequence": [MIN_SEQUENCE, plan.max_length],
    }


def _int8_weights(mlmodel: Any) -> Any:
    """Weight-only INT8 (activations stay FP16): coremltools.optimize's linear quantizer."""
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    config = OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"))
    return linear_quantize_weights(mlmodel, config=config)
