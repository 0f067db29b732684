"""Classification metrics shared by the accuracy gate, the benchmark and training: one definition each.

numpy only, so the slim runtime install (which runs ``edgekit bench``) can use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(predictions: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def macro_f1(predictions: list[int], labels: list[int]) -> float:
    """Unweighted mean of per-class F1 over the classes present in labels or predictions."""
    pred, gold = np.asarray(predictions), np.asarray(labels)
    scores = []
    for cls in np.union1d(pred, gold):
        true_pos = np.sum((pred == cls) & (gold == cls))
        precision_den, recall_den = np.sum(pred == cls), np.sum(gold == cls)
        if true_pos == 0:
            scores.append(0.0)
            continue
        precision, recall = true_pos / precision_den, true_pos / recall_den
        scores.append(float(2 * precision * recall / (precision + recall)))
    return float(np.mean(scores))


def agreement(predictions: list, reference: list) -> float:
    """Share of inputs on which two variants predict the same label."""
    return accuracy(predictions, reference)
