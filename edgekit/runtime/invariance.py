"""Does a text get the same answer alone and inside a batch? A measurement the accuracy gate can call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def batch_consistency(model: Any, texts: Sequence[str], batch_sizes: Iterable[int] = (16, 64)) -> dict[str, Any]:
    """Compare ``predict_batch`` over consecutive slices of each size with batch-1 ``predict``.

    ``model`` is an ``EdgeModel`` (loaded as the app will load it: its ``batch_invariant``
    setting decides how batches run). Returns ``max_abs_score_diff`` (largest |Δ softmax
    score| over all rows and labels), ``label_flips`` (rows whose label differs from batch 1)
    and ``rows``, overall and ``by_batch_size``.
    """
    texts = list(texts)
    single = [model.predict(text) for text in texts]
    by_size: dict[int, dict[str, float | int]] = {}
    for size in batch_sizes:
        diff, flips = 0.0, 0
        for start in range(0, len(texts), size):
            batch = model.predict_batch(texts[start : start + size])
            for alone, batched in zip(single[start : start + size], batch, strict=True):
                diff = max(diff, max(abs(a - b) for a, b in zip(alone.scores, batched.scores, strict=True)))
                flips += alone.label_id != batched.label_id
        by_size[size] = {"max_abs_score_diff": diff, "label_flips": flips, "rows": len(texts)}
    return {
        "max_abs_score_diff": max((v["max_abs_score_diff"] for v in by_size.values()), default=0.0),
        "label_flips": max((v["label_flips"] for v in by_size.values()), default=0),
        "rows": len(texts),
        "by_batch_size": by_size,
    }
