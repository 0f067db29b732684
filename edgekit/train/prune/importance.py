"""Importance of attention heads and FFN neurons, measured on the user's data.

- Heads: the expected |dL/d m_h| for a head mask m of ones (Michel et al. 2019, "Are Sixteen
  Heads Really Better than One?"), i.e. the first-order loss change if the head were removed.
  The mask has one entry per example (shape [layers, batch, heads, 1, 1]), so the absolute
  value is taken per example before averaging, as the expectation in the paper reads.
- FFN neurons: the first-order Taylor estimate |sum over tokens of a * dL/da| of the
  activation a after the FFN's non-linearity (Molchanov et al.), per example, averaged.

The loss is the KL to the teacher's logits when given (what the distillation then recovers),
else cross-entropy on the labels. Summed over the batch, so each example's gradient is its own.
No maintained library scores heads and neurons of a Hugging Face BERT this way here
(torch.nn.utils.prune only masks weights and keeps dense shapes), hence these few lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Importance:
    heads: np.ndarray  # [layers, heads]
    ffn: np.ndarray  # [layers, intermediate width]
    samples: int


def measure_importance(model: Any, batches: list[tuple[dict, Any]], soft_targets: bool) -> Importance:
    """``batches``: (tokenized inputs, targets) pairs; targets are teacher logits or label ids."""
    import torch

    from edgekit.train.prune.structure import encoder_layers

    layers = encoder_layers(model)
    heads = np.zeros((len(layers), layers[0].attention.self.num_attention_heads))
    ffn = np.zeros((len(layers), layers[0].intermediate.dense.out_features))
    activations: dict[int, torch.Tensor] = {}

    def keep(index: int):
        def hook(_module, _inputs, output):
            output.retain_grad()  # the FFN activation's gradient is what the Taylor score needs
            activations[index] = output

        return hook

    was_training = model.training
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    handles = [layer.intermediate.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
    model.eval()  # no dropout: scores of the model as it predicts
    seen = 0
    try:
        for p, _ in frozen:
            p.requires_grad_(False)  # gradients only for the mask and activations: less work
        with torch.enable_grad():
            for inputs, targets in batches:
                batch = inputs["input_ids"].shape[0]
                mask = torch.ones(len(layers), batch, heads.shape[1], 1, 1, requires_grad=True)
                logits = model(**inputs, head_mask=mask).logits
                _loss(logits, targets, soft_targets).backward()
                heads += mask.grad.abs().sum(dim=1)[..., 0, 0].numpy()
                tokens = inputs["attention_mask"].unsqueeze(-1).to(logits.dtype)  # padding does not count
                for i, a in activations.items():
                    ffn[i] += ((a * a.grad * tokens).sum(dim=1)).abs().sum(dim=0).detach().numpy()
                activations.clear()
                seen += batch
    finally:
        for handle in handles:
            handle.remove()
        for p, flag in frozen:
            p.requires_grad_(flag)
        model.train(was_training)
    return Importance(heads / max(seen, 1), ffn / max(seen, 1), seen)


def _loss(logits: Any, targets: Any, soft_targets: bool) -> Any:
    import torch.nn.functional as F

    if soft_targets:
        teacher = F.softmax(targets.to(logits.dtype), dim=-1)
        return F.kl_div(F.log_softmax(logits, dim=-1), teacher, reduction="sum")
    return F.cross_entropy(logits, targets, reduction="sum")
