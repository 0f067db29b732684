"""The accuracy gate: does a reduced-precision variant still do the FP32 model's job?

Each variant is run at batch 1 (as a device app runs it) over the evaluation texts and
compared with the FP32 reference artifact: accuracy and macro-F1 against the labels,
prediction agreement and logit differences against the reference. A variant passes when
its accuracy drop is within the allowed number of points; without labels, the share of
inputs whose prediction changed stands in for the drop (it bounds it from above).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.metrics import accuracy, agreement, macro_f1
from edgekit.runtime import EdgeModel


@dataclass(frozen=True)
class EvalSet:
    texts: list[str]
    label_ids: list[int] | None  # in the model's label order
    source: str


@dataclass(frozen=True)
class GateReport:
    variant: str
    basis: str  # "accuracy" or "agreement"
    allowed_drop_points: float
    drop_points: float
    passed: bool
    accuracy: float | None
    reference_accuracy: float | None
    macro_f1: float | None
    agreement: float
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    rows: int
    # The same texts through predict_batch at the target's and the server's batch sizes, as an
    # app or `edgekit serve` runs them: a label that changes with the batch fails the gate.
    batch_consistency: dict | None = None
    # Heads with more than 5 labels (ImageNet-style): the mean share of the reference's top-5 labels
    # that stay in the variant's top-5. Reported, not gated: near-ties at rank 5 swap under any change
    # to the input, FP32's own too (docs/images.md, "How stable is FP32's own top-5?").
    top5_overlap: float | None = None

    @property
    def batch_label_flips(self) -> int:
        return int(self.batch_consistency["label_flips"]) if self.batch_consistency else 0

    def to_dict(self) -> dict:
        return asdict(self)

    def with_batch_consistency(self, result: dict) -> GateReport:
        flips = int(result["label_flips"])
        return replace(self, batch_consistency=result, passed=self.passed and flips == 0)

    def summary(self) -> str:
        if self.basis == "accuracy":
            change = (self.accuracy - self.reference_accuracy) * 100
            figures = f"accuracy {self.accuracy:.4f} vs {self.reference_accuracy:.4f} ({change:+.2f} pts)"
        else:
            figures = f"{self.drop_points:.2f}% of predictions changed (no labels)"
        if self.batch_label_flips:
            figures += f"; {self.batch_label_flips} label(s) changed with the batch"
        verdict = "passed" if self.passed else "REJECTED"
        top5 = "" if self.top5_overlap is None else f", top-5 overlap {self.top5_overlap:.4f}"
        return (
            f"{self.variant}: {verdict}: {figures}, allowed {self.allowed_drop_points:.2f} pts; "
            f"agreement {self.agreement:.4f}{top5}, max |Δlogit| {self.max_abs_logit_diff:.3f}"
        )


def batch1_logits(artifact_dir: Path, texts: Iterable[Any], threads: int | None = None) -> np.ndarray:
    """Logits at batch 1, one input at a time (``texts`` may be a generator: memory stays bounded)."""
    model = EdgeModel.load(artifact_dir, threads=threads)
    return np.concatenate([model.logits([text]) for text in texts]).astype(np.float64)


def reference_stability(
    reference_dir: Path, inputs: list[Any], reference_logits: np.ndarray, change: Callable, name: str
) -> dict[str, Any]:
    """The FP32 reference against itself when every input goes through ``change`` (a change no user would
    notice): how many of its own predictions (and top-5 labels) such a change moves, the noise floor a
    variant's agreement is read against. Reported, not gated."""
    changed = batch1_logits(reference_dir, change(reference_dir, inputs))
    stability = {
        "change": name,
        "agreement": agreement(changed.argmax(-1).tolist(), reference_logits.argmax(-1).tolist()),
    }
    if reference_logits.shape[-1] > 5:
        stability["top5_overlap"] = top_k_overlap(changed, reference_logits, 5)
    return stability


def judge(
    variant: str, logits: np.ndarray, reference: np.ndarray, label_ids: list[int] | None, allowed_drop_points: float
) -> GateReport:
    predictions = logits.argmax(-1).tolist()
    reference_predictions = reference.argmax(-1).tolist()
    agree = agreement(predictions, reference_predictions)
    diff = np.abs(logits - reference)
    acc = ref_acc = f1 = None
    if label_ids is not None:
        acc, ref_acc = accuracy(predictions, label_ids), accuracy(reference_predictions, label_ids)
        f1 = macro_f1(predictions, label_ids)
        basis, drop = "accuracy", max(0.0, (ref_acc - acc) * 100)
    else:
        basis, drop = "agreement", (1 - agree) * 100
    return GateReport(
        variant=variant,
        basis=basis,
        allowed_drop_points=allowed_drop_points,
        drop_points=drop,
        passed=drop <= allowed_drop_points,
        accuracy=acc,
        reference_accuracy=ref_acc,
        macro_f1=f1,
        agreement=agree,
        max_abs_logit_diff=float(diff.max()),
        mean_abs_logit_diff=float(diff.mean()),
        rows=len(predictions),
        top5_overlap=top_k_overlap(logits, reference, 5) if logits.shape[-1] > 5 else None,
    )


def top_k_overlap(logits: np.ndarray, reference: np.ndarray, k: int) -> float:
    """Mean share of the reference's k highest labels that are among the variant's k highest (order ignored)."""
    if len(logits) == 0:
        return 1.0
    ours = np.argpartition(-logits, k - 1, axis=-1)[:, :k]
    theirs = np.argpartition(-reference, k - 1, axis=-1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ours.tolist(), theirs.tolist(), strict=True)]))


BATCH_CHECK_ROWS = 128  # enough rows to fill the largest batch twice; the check is about the runtime, not accuracy


def batch_consistency_of(artifact_dir: Path, texts: list[str], batch_sizes: list[int]) -> dict:
    """Labels and scores at each batch size vs batch 1, loaded the way an app loads the artifact."""
    from edgekit.runtime.invariance import batch_consistency

    model = EdgeModel.load(artifact_dir)
    return batch_consistency(model, texts[:BATCH_CHECK_ROWS], sorted(set(batch_sizes)))
