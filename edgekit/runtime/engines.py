"""Inference engines behind one small interface: ``run(feed) -> logits``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from edgekit.errors import ArtifactError
from edgekit.runtime.settings import RuntimeSettings


class Engine(Protocol):
    providers: list[str]

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


class OpenVinoEngine:
    """An OpenVINO compiled model; one infer request per thread, so sharing the engine is safe."""

    def __init__(self, model_path: Path, threads: int | None, devices: list[str] | None = None):
        try:
            import openvino as ov
        except ImportError:
            raise ArtifactError(
                "This artifact runs on OpenVINO, which is not installed. Install it with "
                "`pip install 'edgekit[openvino]'` (or `pip install openvino`)."
            ) from None
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            # Keep fp32 arithmetic: on CPUs with bf16 support OpenVINO may otherwise pick bf16
            # on its own, which changes the numbers that parity and the accuracy gate measured.
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        # The first wanted device this machine has; CPU when none is (e.g. a profile's NPU here).
        device = next((d for d in devices or [] if d in core.available_devices), "CPU")
        try:
            self._compiled = core.compile_model(str(model_path), device, config)
        except Exception as exc:  # openvino raises RuntimeError subclasses with long messages
            raise ArtifactError(f"OpenVINO could not load {model_path}: {exc}") from exc
        self._output = self._compiled.outputs[0]
        self._local = threading.local()
        self.providers = [f"OpenVINO:{device}"]

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request.infer(feed)[self._output].copy()


ENGINES = ("onnxruntime", "openvino")


def create_engine(settings: RuntimeSettings, model_path: Path) -> Engine:
    if settings.engine == "onnxruntime":
        return OnnxRuntimeEngine(model_path, settings.threads, settings.providers)
    if settings.engine == "openvino":
        return OpenVinoEngine(model_path, settings.threads, settings.devices)
    raise ArtifactError(
        f"This artifact needs the '{settings.engine}' engine, which this edgekit runtime does not provide. "
        f"Supported: {', '.join(ENGINES)}."
    )
