"""Core ML: runs a ``.mlpackage`` with coremltools on macOS. On any other system it refuses to
load, saying where the artifact does run: Core ML exists only on Apple platforms."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from edgekit.errors import ArtifactError
from edgekit.runtime.engines.base import EngineSpec


def unavailable_reason() -> str | None:
    if platform.system() == "Darwin":
        return None
    return f"Core ML runs only on Apple platforms (macOS 13+ / iOS 16+); this machine is {platform.system()}"


class CoremlEngine:
    """``coremltools.models.MLModel(...).predict`` row by row (the package takes batch 1).

    Not run by edgekit's tests: they run on Linux, where Core ML does not exist (docs/mobile.md
    says how to check parity on a Mac). Thread safety of ``MLModel.predict`` is Apple's.
    """

    def __init__(self, model_path: Path, threads: int | None, units: list[str] | None = None):
        why = unavailable_reason()
        if why:
            raise ArtifactError(
                f"{model_path.name} is a Core ML package: {why}. Load it in an iOS app (docs/mobile.md) or "
                "on a Mac with `pip install 'edgekit[coreml]'`; on this machine use the bundle's ONNX variants."
            )
        import coremltools as ct

        chosen = (units or ["ALL"])[0]
        try:
            self._model = ct.models.MLModel(str(model_path), compute_units=getattr(ct.ComputeUnit, chosen))
        except Exception as exc:  # coremltools raises its own untyped errors
            raise ArtifactError(f"Core ML could not load {model_path}: {exc}") from exc
        self.providers = [f"CoreML:{chosen}"]
        self.output_width = None

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        rows = next(iter(feed.values())).shape[0]
        outputs = []
        mask = feed.get("attention_mask")
        for row in range(rows):  # unpadded (the runtime pads on the right), int32: Core ML takes no int64
            length = int(mask[row].sum()) if mask is not None else next(iter(feed.values())).shape[1]
            single = {name: value[row : row + 1, :length].astype(np.int32) for name, value in feed.items()}
            outputs.append(np.asarray(self._model.predict(single)["logits"], dtype=np.float32))
        return np.concatenate(outputs)


SPEC = EngineSpec(
    name="coreml",
    title="Core ML",
    suffixes=(".mlpackage",),
    module="coremltools",
    extra="coreml",
    option="compute_units",
    default_option=("ALL",),
    factory=CoremlEngine,
    unavailable_reason=unavailable_reason,
)
