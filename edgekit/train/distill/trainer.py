"""``DistillationTrainer``: Hugging Face ``Trainer`` with a distillation ``compute_loss``.

Checkpointing, resume, evaluation, mixed precision and multi-GPU/multi-node runs (under
``accelerate launch`` or ``torchrun``) all come from ``Trainer``; only the loss is ours.
Teacher logits arrive with each batch (computed once, cached); the teacher itself runs
per step only when the hidden-state or attention terms are switched on.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from edgekit.train.distill.losses import LossWeights, attention_kl, hard_ce, hidden_mse, soft_kl

TEACHER_LOGITS = "teacher_logits"


class DistillationTrainer(Trainer):
    def __init__(
        self,
        *args: Any,
        teacher: torch.nn.Module | None,
        weights: LossWeights,
        temperature: float,
        layer_map: list[int],
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.teacher = teacher
        self.weights = weights
        self.temperature = temperature
        self.layer_map = layer_map
        if teacher is not None:
            teacher.eval().requires_grad_(False).to(self.args.device)
        self._parts: dict[str, float] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher_logits = inputs.pop(TEACHER_LOGITS)
        labels = inputs.pop("labels", None)
        internals = self.weights.needs_teacher_internals and model.training
        outputs = model(**inputs, output_hidden_states=internals, output_attentions=internals)
        parts = {"kl": soft_kl(outputs.logits, teacher_logits, self.temperature)}
        if labels is not None and self.weights.ce > 0:
            parts["ce"] = hard_ce(outputs.logits, labels)
        if internals:
            parts.update(self._internal_terms(inputs, outputs))
        weights = {"kl": self.weights.kl, "ce": self.weights.ce, "hidden": self.weights.hidden,
                   "attention": self.weights.attention}  # fmt: skip
        loss = sum(weights[name] * value for name, value in parts.items())
        if model.training:
            self._parts = {name: float(value.detach()) for name, value in parts.items()}
        if labels is not None:
            inputs["labels"] = labels  # Trainer reads labels back for evaluation metrics
        return (loss, outputs) if return_outputs else loss

    def _internal_terms(self, inputs: dict, outputs: Any) -> dict[str, torch.Tensor]:
        assert self.teacher is not None, "hidden/attention terms need the teacher model"
        with torch.no_grad():
            reference = self.teacher(**inputs, output_hidden_states=True, output_attentions=True)
        mask = inputs["attention_mask"]
        terms: dict[str, torch.Tensor] = {}
        same_width = outputs.hidden_states[0].shape[-1] == reference.hidden_states[0].shape[-1]
        if self.weights.hidden > 0 and same_width:
            terms["hidden"] = hidden_mse(outputs.hidden_states, reference.hidden_states, self.layer_map, mask)
        same_heads = outputs.attentions[-1].shape[1] == reference.attentions[-1].shape[1]
        if self.weights.attention > 0 and same_heads:
            terms["attention"] = attention_kl(outputs.attentions[-1], reference.attentions[-1], mask)
        return terms

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and self._parts:  # training logs also show each loss term
            logs = {**logs, **{f"loss_{name}": round(value, 4) for name, value in self._parts.items()}}
        super().log(logs, *args, **kwargs)
