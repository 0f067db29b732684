"""Distillation loss terms. Each takes student and teacher outputs and returns a scalar.

- ``soft_kl``: KL(teacher ‖ student) on temperature-softened logits, times T² (Hinton et al.).
- ``hard_ce``: cross-entropy against the true labels, when the data has them.
- ``hidden_mse``: MSE between mapped hidden states (embeddings and each student layer
  against its teacher layer), where the hidden sizes match.
- ``attention_kl``: KL between the last layers' attention distributions (MiniLM), where
  the head counts match; padded positions are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    kl: float = 1.0
    ce: float = 0.5
    hidden: float = 0.0
    attention: float = 0.0

    @property
    def needs_teacher_internals(self) -> bool:
        return self.hidden > 0 or self.attention > 0


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probs = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(student_log_probs, teacher_probs, reduction="batchmean") * temperature**2


def hard_ce(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(student_logits, labels)


def hidden_mse(
    student_hidden: tuple[torch.Tensor, ...], teacher_hidden: tuple[torch.Tensor, ...], layer_map: list[int],
    attention_mask: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """hidden_states[0] is the embedding output; student layer m pairs with teacher layer layer_map[m]."""
    pairs = [(0, 0)] + [(m + 1, t + 1) for m, t in enumerate(layer_map)]
    mask = attention_mask.unsqueeze(-1).to(student_hidden[0].dtype)
    total = student_hidden[0].new_zeros(())
    for s, t in pairs:
        squared = (student_hidden[s] - teacher_hidden[t]) ** 2 * mask
        total = total + squared.sum() / (mask.sum() * student_hidden[s].shape[-1])
    return total / len(pairs)


def attention_kl(
    student_attention: torch.Tensor, teacher_attention: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Both (batch, heads, query, key); rows of padded queries are ignored."""
    eps = 1e-12
    kl = teacher_attention * (torch.log(teacher_attention + eps) - torch.log(student_attention + eps))
    per_query = kl.sum(-1)  # (batch, heads, query)
    mask = attention_mask[:, None, :].to(per_query.dtype)
    return (per_query * mask).sum() / (mask.sum() * student_attention.shape[1])
