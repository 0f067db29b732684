"""Parity: does the packaged artifact, run by the edgekit runtime, match PyTorch?

The comparison covers the whole path a device will take: the artifact's own tokenizer
file and the ONNX graph under ONNX Runtime, against the transformers tokenizer and the
PyTorch model, on real texts of several lengths in several (padded) batch sizes.

For images, PyTorch runs on the tensors the runtime's ``ImagePreprocessor`` makes from the raw
images (the one implementation of the manifest's pre-processing), while the artifact is given
the raw images themselves: decoding, resizing and normalisation are inside the comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.sources import LoadedSource
from edgekit.data import PROBE_TEXTS

__all__ = ["PROBE_TEXTS", "ParityReport", "check_parity", "pick_parity_texts"]


@dataclass(frozen=True)
class ParityReport:
    max_abs_diff: float
    mean_abs_diff: float
    atol: float
    label_agreement: float
    texts: int  # inputs compared (texts or images)
    batch_sizes: list[int]
    token_lengths: list[int]  # [shortest, longest] after tokenization; [] for images
    tokenizer_mismatches: int  # texts whose token ids differ between the two tokenizers (0 for images)

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol and self.tokenizer_mismatches == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def pick_parity_texts(texts: list[Any], n: int) -> list[Any]:
    """``n`` inputs: texts spread evenly over the length range, so short and long inputs are both
    tried; other inputs (images as paths or arrays) spread evenly over the list, in its order."""
    if not all(isinstance(text, str) for text in texts):
        positions = np.linspace(0, len(texts) - 1, min(n, len(texts))).round().astype(int)
        return [texts[i] for i in sorted(set(positions.tolist()))]
    unique = sorted(set(texts), key=len)
    if len(unique) <= n:
        return unique
    positions = np.linspace(0, len(unique) - 1, n).round().astype(int)
    return [unique[i] for i in positions]


def check_parity(
    source: LoadedSource, artifact_dir: Path, texts: list[str], batch_sizes: list[int], atol: float
) -> ParityReport:
    import torch

    from edgekit.runtime import EdgeModel

    edge = EdgeModel.load(artifact_dir, verify=True)
    if source.preprocessing is not None:
        return _image_parity(source, edge, texts, batch_sizes, atol)
    max_length = edge.manifest.tokenizer["max_length"]
    diffs: list[np.ndarray] = []
    agree = total = mismatches = 0
    lengths: list[int] = []
    for batch_size in batch_sizes:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            encoded = source.tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            with torch.inference_mode():
                reference = source.model(**encoded).logits.float().numpy()
            runtime_feed = edge._preprocess(batch)
            mismatches += _count_token_mismatches(encoded, runtime_feed)
            candidate = edge.logits(batch)
            diffs.append(np.abs(candidate - reference).ravel())
            agree += int((candidate.argmax(-1) == reference.argmax(-1)).sum())
            total += len(batch)
            lengths.extend(int(n) for n in encoded["attention_mask"].sum(-1))
    all_diffs = np.concatenate(diffs)
    return ParityReport(
        max_abs_diff=float(all_diffs.max()),
        mean_abs_diff=float(all_diffs.mean()),
        atol=atol,
        label_agreement=agree / total,
        texts=len(texts),
        batch_sizes=list(batch_sizes),
        token_lengths=[min(lengths), max(lengths)],
        tokenizer_mismatches=mismatches,
    )


def _image_parity(
    source: LoadedSource, edge: Any, images: list[Any], batch_sizes: list[int], atol: float
) -> ParityReport:
    import torch

    from edgekit.convert.image_sources import image_logits
    from edgekit.runtime.image_preprocess import ImagePreprocessor
    from edgekit.tasks.image_classification import parity_tolerance

    preprocess = ImagePreprocessor.for_artifact(edge.root, edge.manifest)
    diffs: list[np.ndarray] = []
    references: list[np.ndarray] = []
    agree = total = 0
    for batch_size in batch_sizes:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            pixels = torch.from_numpy(preprocess(batch)["pixel_values"])
            with torch.inference_mode():
                reference = image_logits(source.model, pixels).float().numpy()
            references.append(reference)
            candidate = edge.logits(batch)
            diffs.append(np.abs(candidate - reference).ravel())
            agree += int((candidate.argmax(-1) == reference.argmax(-1)).sum())
            total += len(batch)
    all_diffs = np.concatenate(diffs)
    # A CNN's logits differ from PyTorch's by float summation order, growing with their scale: the
    # allowed difference is relative to the largest logit when that is above atol (docs/images.md).
    allowed = parity_tolerance(atol, np.concatenate([r.ravel() for r in references]))
    return ParityReport(float(all_diffs.max()), float(all_diffs.mean()), allowed, agree / total, len(images),
                        list(batch_sizes), [], 0)  # fmt: skip


def _count_token_mismatches(reference: dict, runtime_feed: dict[str, np.ndarray]) -> int:
    ref_ids = reference["input_ids"].numpy()
    run_ids = runtime_feed["input_ids"]
    if ref_ids.shape != run_ids.shape:
        return ref_ids.shape[0]
    return int((ref_ids != run_ids).any(axis=1).sum())
