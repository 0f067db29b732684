"""``text-classification``: a Hugging Face sequence classifier with its fast tokenizer, on
TSV/CSV/JSONL text data. The first entry of the task registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.data import PROBE_TEXTS, TextDataset, read_text_dataset
from edgekit.tasks.registry import TaskSpec

NAME = "text-classification"


def read_dataset(spec: Any) -> TextDataset:
    """A recipe's ``DataSpec`` (path, columns, format) read as text rows."""
    return read_text_dataset(spec.path, spec.text_column, spec.label_column, spec.format)


def load_source(ref: str, revision: str | None, trust_remote_code: bool, record_path: bool) -> Any:
    from edgekit.convert.sources import load_text_classifier  # transformers: only when converting

    return load_text_classifier(ref, revision, trust_remote_code, record_path)


def calibration_feeds(reference_dir: Path, texts: list[Any]) -> list[Any]:
    from edgekit.quantize.calibration import calibration_feeds as feeds

    return feeds(reference_dir, texts)


SPEC = TaskSpec(
    name=NAME,
    description="sequence classification of text (BERT-family encoders with a classification head)",
    load_source=load_source,
    read_dataset=read_dataset,
    probe_inputs=tuple(PROBE_TEXTS),
    calibration_feeds=calibration_feeds,
)
