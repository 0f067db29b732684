"""Inference engines behind one small interface: ``run(feed) -> logits``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from edgekit.errors import ArtifactError


class Engine(Protocol):
    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray: ...


class OnnxRuntimeEngine:
    """An ONNX Runtime session with its options chosen on purpose, not left to defaults."""

    def __init__(self, model_path: Path, threads: int | None, providers: list[str] | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Full graph optimisation fuses attention/layer-norm kernels at load time; measured
        # to give everything an offline optimisation pass would (STACK-NOTES).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads is not None:
            options.intra_op_num_threads = threads
        # One model, one request at a time per call: inter-op parallelism only adds threads.
        options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
        try:
            self._session = ort.InferenceSession(str(model_path), options, providers=chosen or None)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"ONNX Runtime could not load {model_path}: {exc}") from exc
        self._output_name = self._session.get_outputs()[0].name
        self.providers = self._session.get_providers()

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self._session.run([self._output_name], feed)[0]


def create_engine(engine: str, model_path: Path, threads: int | None) -> Engine:
    if engine == "onnxruntime":
        return OnnxRuntimeEngine(model_path, threads)
    raise ArtifactError(
        f"This artifact needs the '{engine}' engine, which this edgekit runtime does not provide. "
        "Supported: onnxruntime."
    )
