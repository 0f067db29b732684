"""Prune a student: score heads and FFN neurons on a sample of the data, then cut them out.

Order matters: the FFN scores are measured on the full model, the heads pruned, then the FFN
narrowed (the two cuts touch different weights: q/k/v + attention output columns vs the FFN's
two dense layers). What was kept and why goes into the returned record, which the
distillation stage writes into distillation.json and so into the student's manifests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.train.prune.importance import Importance, measure_importance
from edgekit.train.prune.structure import check_prunable, keep_count, narrow_ffn, prune_heads


def prune_model(
    model: Any,
    tokenizer: Any,
    spec: Any,
    texts: list[str],
    targets: np.ndarray | list[int],
    max_length: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Prune ``model`` in place by ``spec`` (a PruneSpec); ``targets``: teacher logits [n, labels] or label ids."""
    layers = check_prunable(model)
    total_heads = layers[0].attention.self.num_attention_heads
    total_ffn = layers[0].intermediate.dense.out_features
    head_keep, ffn_keep = keep_count(spec.heads, total_heads), keep_count(spec.ffn, total_ffn)
    chosen = np.random.default_rng(seed).permutation(len(texts))[: spec.samples]
    soft = isinstance(targets, np.ndarray) and targets.ndim == 2
    scores = measure_importance(model, _batches(tokenizer, texts, targets, chosen, max_length, soft), soft)
    kept_heads = prune_heads(model, scores.heads, head_keep)
    narrow_ffn(model, scores.ffn, ffn_keep)
    return _record(spec, scores, kept_heads, total_heads, total_ffn, ffn_keep, soft)


def _batches(tokenizer: Any, texts: list[str], targets: Any, chosen: np.ndarray, max_length: int, soft: bool,
             size: int = 32) -> list[tuple[dict, Any]]:  # fmt: skip
    import torch

    batches = []
    for start in range(0, len(chosen), size):
        rows = chosen[start : start + size]
        encoded = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")  # fmt: skip
        picked = np.asarray(targets)[rows]
        batches.append((dict(encoded), torch.tensor(picked, dtype=torch.float32 if soft else torch.long)))
    return batches


def _record(spec: Any, scores: Importance, kept_heads: dict[int, list[int]], total_heads: int, total_ffn: int,
            ffn_keep: int, soft: bool) -> dict[str, Any]:  # fmt: skip
    # Share of each layer's FFN importance the kept neurons carry: how much the cut is expected to cost.
    retained = [float(np.sort(row)[::-1][:ffn_keep].sum() / max(row.sum(), 1e-30)) for row in scores.ffn]
    return {
        "heads_fraction": spec.heads,
        "ffn_fraction": spec.ffn,
        "samples": scores.samples,
        "scored_against": "teacher logits (KL)" if soft else "labels (cross-entropy)",
        "heads_per_layer": f"{len(kept_heads[0])} of {total_heads}",
        "kept_heads": {str(layer): heads for layer, heads in kept_heads.items()},
        "head_importance": [[round(float(v), 6) for v in row] for row in scores.heads],
        "ffn_width": f"{ffn_keep} of {total_ffn}",
        "ffn_importance_retained": [round(v, 4) for v in retained],
    }
