"""Text pre-processing for the runtime: the artifact's ``tokenizer.json`` via `tokenizers`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from edgekit.errors import ArtifactError


class TextPreprocessor:
    """Turns texts into the int64 arrays the model expects, padded to the batch's longest."""

    def __init__(self, tokenizer_file: Path, config: dict[str, Any], input_names: list[str]):
        if not tokenizer_file.is_file():
            raise ArtifactError(f"Tokenizer file {tokenizer_file} is missing from the artifact.")
        self.max_length = int(config["max_length"])
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        direction = config.get("truncation_side", "right")
        self._tokenizer.enable_truncation(max_length=self.max_length, direction=direction)
        self._tokenizer.enable_padding(pad_id=int(config["pad_id"]), pad_token=str(config["pad_token"]))
        self._input_names = input_names

    @classmethod
    def for_artifact(cls, root: Path, manifest: Any) -> TextPreprocessor:
        """The pre-processing an artifact's manifest describes (``manifest``: artifact.Manifest)."""
        return cls(root / manifest.tokenizer["file"], manifest.tokenizer, [spec.name for spec in manifest.inputs])

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        # One text (the batch-1 path of an app): `encode` stays on this thread, while
        # `encode_batch` hands work to the tokenizers thread pool for nothing.
        encodings = [self._tokenizer.encode(texts[0])] if len(texts) == 1 else self._tokenizer.encode_batch(texts)
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        return {name: np.asarray(columns[name], dtype=np.int64) for name in self._input_names}
