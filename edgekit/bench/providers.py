"""Execution providers / devices chosen on the command line (``--provider`` of ``bench`` and ``serve``,
like ``onnxruntime_perf_test -e`` and ``benchmark_app -d``), as the runtime's ``engines`` settings.

Values: ``ENGINE:VALUE[,VALUE…]`` (``onnxruntime:CUDAExecutionProvider,CPUExecutionProvider``,
``openvino:GPU``), or a bare value: ``cpu`` (every engine on the CPU), an ONNX Runtime provider
(``CUDAExecutionProvider`` or its short name ``cuda``) or an OpenVINO device (``GPU``, ``NPU``, ``AUTO``).
They land where a manifest's or a target's ``runtime`` section puts each engine's device option.
"""

from __future__ import annotations

from edgekit.errors import RecipeError
from edgekit.runtime.settings import with_providers  # noqa: F401  (re-exported: bench and serve use it)

# Short ONNX Runtime provider names, as onnxruntime_perf_test -e spells them.
_ORT_SHORT = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "dnnl": "DnnlExecutionProvider",
              "openvino": "OpenVINOExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
              "coreml": "CoreMLExecutionProvider", "xnnpack": "XnnpackExecutionProvider",
              "qnn": "QNNExecutionProvider", "rocm": "ROCMExecutionProvider"}  # fmt: skip
_OV_DEVICES = ("CPU", "GPU", "NPU", "AUTO", "HETERO", "MULTI")


def _ort_value(value: str) -> str:
    return _ORT_SHORT.get(value.lower(), value)


def parse_providers(values: list[str] | None) -> dict[str, dict[str, list[str]]]:
    """``--provider`` values → ``{engine: {option name: [values]}}`` (a runtime's ``engines`` section)."""
    from edgekit.runtime.engines import ENGINES, engine_names

    chosen: dict[str, dict[str, list[str]]] = {}

    def put(engine: str, items: list[str]) -> None:
        spec = ENGINES[engine]
        if engine == "onnxruntime":
            items = [_ort_value(item) for item in items]
        elif engine == "openvino":
            items = [item.upper() for item in items]
        listed = chosen.setdefault(engine, {}).setdefault(spec.option, [])
        listed.extend(item for item in items if item and item not in listed)  # order is preference

    names = engine_names()
    for raw in values or []:
        text = raw.strip()
        engine, sep, rest = text.partition(":")
        if sep and engine in names:
            items = [part.strip() for part in rest.split(",") if part.strip()]
            if not items:
                raise RecipeError(f"--provider '{raw}' names no value after '{engine}:'; e.g. {engine}:CPU.")
            put(engine, items)
        elif text.lower() == "cpu":
            put("onnxruntime", ["CPUExecutionProvider"])
            if "openvino" in names:
                put("openvino", ["CPU"])
        elif text.lower() in _ORT_SHORT or text.endswith("ExecutionProvider"):
            put("onnxruntime", [text])
        elif text.upper().split(".")[0].split(":")[0] in _OV_DEVICES and "openvino" in names:
            put("openvino", [text])
        else:
            raise RecipeError(
                f"--provider '{raw}' is not an execution provider or device edgekit knows. Write ENGINE:VALUE "
                f"with ENGINE one of {', '.join(names)} (e.g. onnxruntime:CPUExecutionProvider, openvino:GPU), "
                f"or one of: cpu, {', '.join(sorted(_ORT_SHORT))}, {', '.join(_OV_DEVICES)}."
            )
    return chosen
