"""Where the prunable parts of a BERT-family encoder are, and cutting them out.

Supported: models whose base has ``encoder.layer[i]`` with ``attention.self`` (query/key/value),
``attention.prune_heads`` and ``intermediate.dense`` / ``output.dense`` (BERT, MiniLM, RoBERTa,
XLM-R, ELECTRA). Every layer keeps the same number of heads and the same FFN width, so the
result is described by the config alone (``pruned_heads``, ``intermediate_size``) and reloads
with plain ``from_pretrained``.
"""

from __future__ import annotations

from typing import Any

from edgekit.errors import RecipeError


def encoder_layers(model: Any) -> list[Any]:
    """The transformer layers, or a RecipeError saying which families pruning knows."""
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    ok = layers is not None and len(layers) > 0 and all(_is_bert_layer(layer) for layer in layers)
    if not ok or "head_mask" not in _forward_arguments(model):
        raise RecipeError(
            f"Structured pruning does not support a {type(model).__name__} "
            f"({getattr(model.config, 'model_type', 'unknown')}): it prunes BERT-family encoders "
            "(BERT, MiniLM, RoBERTa, XLM-R, ELECTRA: encoder.layer[i].attention.self and "
            "intermediate/output.dense). Remove distill.prune, or distil into a smaller student checkpoint "
            "(distill.student) instead."
        )
    return list(layers)


def check_prunable(model: Any) -> list[Any]:
    """The layers of a supported, not yet pruned model (pruning twice would renumber heads)."""
    layers = encoder_layers(model)
    if getattr(model.config, "pruned_heads", None):
        raise RecipeError(
            "This model already has pruned heads (config.pruned_heads); edgekit prunes a full model once. "
            "Start from the unpruned checkpoint, or remove distill.prune."
        )
    return layers


def _is_bert_layer(layer: Any) -> bool:
    attention = getattr(layer, "attention", None)
    own = getattr(attention, "self", None)
    return (
        all(hasattr(own, name) for name in ("query", "key", "value", "num_attention_heads"))
        and hasattr(attention, "prune_heads")
        and hasattr(getattr(layer, "intermediate", None), "dense")
        and hasattr(getattr(layer, "output", None), "dense")
    )


def _forward_arguments(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


def keep_count(fraction: float, total: int) -> int:
    """How many of ``total`` units a kept ``fraction`` means: rounded, at least one, at most all."""
    if not 0 < fraction <= 1:
        raise RecipeError(f"A kept fraction must be in (0, 1]; got {fraction}. Use e.g. 0.5 to keep half.")
    return min(total, max(1, round(fraction * total)))


def prune_heads(model: Any, scores: Any, keep: int) -> dict[int, list[int]]:
    """Remove the lowest-scoring heads of every layer so ``keep`` remain; returns the kept heads."""
    import numpy as np

    removed, kept = {}, {}
    for layer, row in enumerate(np.asarray(scores)):
        order = np.argsort(row, kind="stable")  # ascending: the least important first
        removed[layer] = sorted(int(h) for h in order[: len(row) - keep])
        kept[layer] = sorted(int(h) for h in order[len(row) - keep :])
    if any(removed.values()):
        model.prune_heads(removed)  # records config.pruned_heads, so from_pretrained rebuilds the same shapes
    return kept


def narrow_ffn(model: Any, scores: Any, keep: int) -> None:
    """Keep the ``keep`` highest-scoring FFN neurons of every layer (dense rows in, columns out)."""
    import numpy as np
    import torch
    from transformers.pytorch_utils import prune_linear_layer

    layers = encoder_layers(model)
    if keep == layers[0].intermediate.dense.out_features:
        return
    for layer, row in zip(layers, np.asarray(scores), strict=True):
        chosen = torch.as_tensor(np.sort(np.argsort(row, kind="stable")[-keep:]), dtype=torch.long)
        layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, chosen, dim=0)
        layer.output.dense = prune_linear_layer(layer.output.dense, chosen, dim=1)
    model.config.intermediate_size = keep  # every layer has this width: the config alone rebuilds it
