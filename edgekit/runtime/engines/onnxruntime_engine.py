"""ONNX Runtime: runs ``model.onnx`` (and ORT Mobile's ``model.ort``); its device option is an ordered
list of execution providers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import ArtifactError
from edgekit.runtime.engines.base import EngineSpec

# Load-time fusions that make CPU inference slower, not faster. ORT's SkipLayerNormFusion swaps
# Add + LayerNormalization for a contrib kernel that is a scalar loop on CPUs, measured several times
# slower (docs/quantization.md); other providers have fast kernels for it, so it stays on there.
CPU_SLOW_FUSIONS = ["SkipLayerNormFusion"]


def disabled_fusions(providers: list[str]) -> list[str]:
    """The load-time optimizers to turn off for a session on these providers (none chosen: ORT's CPU)."""
    return list(CPU_SLOW_FUSIONS) if providers in ([], ["CPUExecutionProvider"]) else []


class OnnxRuntimeEngine:
    """An ONNX Runtime session with its options chosen on purpose, not left to defaults."""

    def __init__(self, model_path: Path, threads: int | None, providers: list[str] | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Full graph optimisation fuses attention/layer-norm kernels at load time; measured
        # to give everything an offline optimisation pass would (docs/stack-findings.md).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads is not None:
            options.intra_op_num_threads = threads
        # One model, one request at a time per call: inter-op parallelism only adds threads.
        options.inter_op_num_threads = 1
        if model_path.suffix.lower() == ".ort":
            # Say the format instead of letting ORT guess from the name. An ORT-format graph runs as it was
            # converted: the level above does not re-optimise it (checked: the same kernels at DISABLE_ALL and
            # ENABLE_ALL). Saved runtime optimisations stay off here (ORT: for trusted models only).
            options.add_session_config_entry("session.load_model_format", "ORT")
        available = ort.get_available_providers()
        chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
        try:
            self._session = ort.InferenceSession(str(model_path), options, providers=chosen or None,
                                                 disabled_optimizers=disabled_fusions(chosen))  # fmt: skip
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"ONNX Runtime could not load {model_path}: {exc}") from exc
        output = self._session.get_outputs()[0]
        self._output_name = output.name
        width = output.shape[-1] if output.shape else None
        self.output_width = width if isinstance(width, int) and width > 0 else None  # str: a symbolic axis
        self.providers = self._session.get_providers()

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self._session.run([self._output_name], feed)[0]


SPEC = EngineSpec(
    name="onnxruntime",
    title="ONNX Runtime",
    suffixes=(".onnx", ".ort"),
    module="onnxruntime",
    extra=None,
    option="providers",
    default_option=("CPUExecutionProvider",),
    factory=OnnxRuntimeEngine,
)
