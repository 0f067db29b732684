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
        core = ov.Core()
        self.skipped: list[str] = []  # devices tried before the one used, and why they were not
        for device in _candidate_devices(devices or [], core.available_devices):
            try:
                self._compiled = core.compile_model(str(model_path), device, _openvino_config(device, threads))
                break
            except Exception as exc:  # openvino raises RuntimeError subclasses with long messages
                if device == "CPU":
                    raise ArtifactError(f"OpenVINO could not load {model_path}: {exc}") from exc
                self.skipped.append(f"{device}: {str(exc).splitlines()[0][:200]}")
        self._output = self._compiled.outputs[0]
        self._local = threading.local()
        self.providers = [f"OpenVINO:{device}"]

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request.infer(feed)[self._output].copy()


def _candidate_devices(wanted: list[str], available: list[str]) -> list[str]:
    """The wanted devices this machine has, in order (``GPU`` matches ``GPU.0``), then CPU."""
    present = [d for d in wanted if any(a == d or a.startswith(f"{d}.") for a in available)]
    return [d for d in present if d != "CPU"] + ["CPU"]


def _openvino_config(device: str, threads: int | None) -> dict[str, object]:
    config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
    if device == "CPU":
        # Keep fp32 arithmetic: on CPUs with bf16 support OpenVINO may otherwise pick bf16
        # on its own, which changes the numbers that parity and the accuracy gate measured.
        config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
    return config


ENGINES = ("onnxruntime", "openvino")


def create_engine(settings: RuntimeSettings, model_path: Path) -> Engine:
    if settings.engine == "onnxruntime":
        return OnnxRuntimeEngine(model_path, settings.threads, settings.providers)
    if settings.engine == "openvino":
        return OpenVinoEngine(model_path, settings.threads, settings.devices)
    raise ArtifactError(
        f"Unknown engine '{settings.engine}': this edgekit runtime does not provide it. "
        f"Supported: {', '.join(ENGINES)}; pass engine= one of them."
    )
