"""Tokenized texts as a map-style dataset for Hugging Face ``Trainer``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TokenizedRows:
    """Texts tokenized once, plus per-row columns (labels, teacher logits, ...).

    Padding is left to the collator, so each batch is padded to its own longest text.
    Columns given as ``None`` are left out.
    """

    def __init__(self, tokenizer: Any, texts: list[str], max_length: int, **columns: Sequence | None):
        self._encodings = tokenizer(texts, truncation=True, max_length=max_length)
        self._columns = {name: values for name, values in columns.items() if values is not None}
        self._length = len(texts)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {key: values[index] for key, values in self._encodings.items()}
        item.update({name: values[index] for name, values in self._columns.items()})
        return item
