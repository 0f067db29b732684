"""What an engine is: ``run(feed) -> outputs`` behind one small interface, and how it is declared."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


class Engine(Protocol):
    """A loaded model. ``run`` must be safe to call from several threads at once."""

    providers: list[str]  # what it really runs on, e.g. ["CPUExecutionProvider"] or ["OpenVINO:CPU"]

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray: ...


# An engine may also expose ``output_width: int | None``, the static size of the output's last
# axis; the model checks the label count against it at load (None or absent: a probe runs).

EngineFactory = Callable[[Path, "int | None", list[str]], Engine]  # (model file, threads, device option)


@dataclass(frozen=True)
class EngineSpec:
    """Everything edgekit needs to know about an engine, without importing it.

    ``option`` names the engine's own device choice (ONNX Runtime: ``providers``, OpenVINO:
    ``devices``), the key a manifest's ``runtime.engines.<name>`` and a target profile use;
    ``default_option`` is what it runs on when nothing is said.
    """

    name: str
    title: str  # for messages: "ONNX Runtime"
    suffixes: tuple[str, ...]  # model files it loads: (".onnx",)
    module: str  # the Python module it imports: "onnxruntime"
    extra: str | None  # pip extra that installs it ("openvino"); None: the base install has it
    option: str
    default_option: tuple[str, ...]
    factory: EngineFactory
    # Why this machine cannot run the engine at all (Core ML on Linux), or None: convert still
    # builds such a variant but skips its gate, never recommends it, and the bench leaves it out.
    unavailable_reason: Callable[[], str | None] = lambda: None

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def install_hint(self) -> str:
        if self.extra:
            return f"`pip install 'edgekit[{self.extra}]'` (or `pip install {self.module}`)"
        return f"`pip install {self.module}`"

    def loads(self, model_file: Path | str) -> bool:
        return Path(model_file).suffix.lower() in self.suffixes
