"""Classification post-processing: logits -> ``Prediction`` (softmax scores in label order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prediction:
    label: str
    label_id: int
    scores: tuple[float, ...]  # softmax probabilities, in the order of ``EdgeModel.labels``

    @property
    def confidence(self) -> float:
        return self.scores[self.label_id]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def predictions(logits: np.ndarray, labels: Sequence[str]) -> list[Prediction]:
    """One ``Prediction`` per row of ``logits`` (shape: rows x len(labels))."""
    probabilities = softmax(logits.astype(np.float64))
    results = []
    for row in probabilities:
        best = int(row.argmax())
        results.append(Prediction(labels[best], best, tuple(float(p) for p in row)))
    return results
