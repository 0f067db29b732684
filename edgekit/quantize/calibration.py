"""Calibration inputs: real texts tokenized exactly as the runtime will tokenize them (or, for an
image artifact, real images pre-processed by the runtime's ``ImagePreprocessor``).

Each text is its own batch of one, so padding never enters the activation ranges that a
static quantizer records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifact import read_manifest
from edgekit.errors import DataError
from edgekit.runtime.preprocess import TextPreprocessor

Feed = dict[str, np.ndarray]


def calibration_feeds(reference_artifact: Path, texts: list[Any]) -> list[Feed]:
    if not texts:
        raise DataError(
            "The calibration set is empty. Static INT8 and NNCF INT8 need real inputs: "
            "pass --data FILE (or set quantization.calibration.data in the recipe)."
        )
    manifest = read_manifest(reference_artifact)
    if manifest.preprocessing is not None:  # an image artifact: decode, resize, crop, normalise
        from edgekit.runtime.image_preprocess import ImagePreprocessor

        return [ImagePreprocessor.for_artifact(reference_artifact, manifest)([image]) for image in texts]
    preprocess = TextPreprocessor.for_artifact(reference_artifact, manifest)
    return [preprocess([text]) for text in texts]


class FeedReader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over a list of feeds."""

    def __init__(self, feeds: list[Feed]):
        self._feeds = feeds
        self._position = 0

    def get_next(self) -> Feed | None:
        if self._position >= len(self._feeds):
            return None
        self._position += 1
        return self._feeds[self._position - 1]

    def rewind(self) -> None:
        self._position = 0
