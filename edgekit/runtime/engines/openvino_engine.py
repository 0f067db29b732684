"""OpenVINO: runs IR (``model.xml`` + ``.bin``) and ONNX files; its device option is an ordered device list."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgekit.errors import ArtifactError
from edgekit.runtime.engines.base import EngineSpec


class OpenVinoEngine:
    """An OpenVINO compiled model; one infer request per thread, so sharing the engine is safe."""

    def __init__(self, model_path: Path, threads: int | None, devices: list[str] | None = None):
        try:
            import openvino as ov
        except ImportError:
            raise ArtifactError(
                f"This artifact runs on OpenVINO, which is not installed. Install it with {SPEC.install_hint()}."
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
        shape = self._output.get_partial_shape()
        last = shape[shape.rank.get_length() - 1] if shape.rank.is_static and shape.rank.get_length() else None
        self.output_width = last.get_length() if last is not None and last.is_static else None
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


SPEC = EngineSpec(
    name="openvino",
    title="OpenVINO",
    suffixes=(".xml", ".onnx"),  # OpenVINO also reads ONNX files directly
    module="openvino",
    extra="openvino",
    option="devices",
    default_option=("CPU",),
    factory=OpenVinoEngine,
)
