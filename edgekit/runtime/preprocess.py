"""Text pre-processing for the runtime: the artifact's ``tokenizer.json`` via `tokenizers`.

Raw input is checked here (a list of non-empty ``str``), encoded without padding (so batching
can sort rows by length), and collated into the int64 arrays the model expects, padded to the
longest row of each engine call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer

from edgekit.artifact import artifact_file
from edgekit.errors import ArtifactError, InputError

_SURROGATE = re.compile("[\ud800-\udfff]")
_FEEDS = ("input_ids", "attention_mask", "token_type_ids")


class TextPreprocessor:
    """Turns texts into the int64 arrays the model expects, padded to the batch's longest."""

    probe_input = "edgekit"  # a text any tokenizer encodes: the model's load-time shape probe

    def __init__(self, tokenizer_file: Path, config: dict[str, Any], input_names: list[str]):
        if not tokenizer_file.is_file():
            raise ArtifactError(f"Tokenizer file {tokenizer_file} is missing from the artifact.")
        self.max_length = int(config["max_length"])
        direction = config.get("truncation_side", "right")
        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
            self._tokenizer.enable_truncation(max_length=self.max_length, direction=direction)
        except Exception as exc:  # tokenizers raises bare Exceptions for unreadable or foreign files
            raise ArtifactError(
                f"The artifact's tokenizer file {tokenizer_file.name} is not a usable tokenizers JSON file ({exc}); "
                "re-convert the model, or restore the file the manifest lists."
            ) from None
        self._tokenizer.no_padding()  # padding is per engine call, to that call's longest row (collate)
        self._pad_id = int(config["pad_id"])
        # A text that encodes to no more than the tokens the template adds ([CLS] [SEP]) holds
        # nothing the model can read (control or zero-width characters only).
        self._template_tokens = self._tokenizer.num_special_tokens_to_add(False)
        unknown = [name for name in input_names if name not in _FEEDS]
        if unknown:
            raise ArtifactError(
                f"The model takes inputs {unknown} that a text tokenizer does not produce (it makes {list(_FEEDS)}); "
                "this artifact is not a text model edgekit can feed."
            )
        self._input_names = input_names

    @classmethod
    def for_artifact(cls, root: Path, manifest: Any) -> TextPreprocessor:
        """The pre-processing an artifact's manifest describes (``manifest``: artifact.Manifest)."""
        path = artifact_file(root, manifest, manifest.tokenizer["file"])  # listed, hashed, inside the folder
        return cls(path, manifest.tokenizer, [spec.name for spec in manifest.inputs])

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The model's feed for ``texts`` as one batch, padded to its longest row."""
        return self.collate(self.encode(texts))

    # -- raw input checks -------------------------------------------------------------------

    @staticmethod
    def check_one(text: object, index: int = 0) -> str:
        if not isinstance(text, str):
            hint = "; decode it first (e.g. .decode('utf-8'))" if isinstance(text, bytes | bytearray) else ""
            raise InputError(f"Input {index} is a {type(text).__name__}, not a str; pass text{hint}.")
        if not text.strip():
            raise InputError(f"Input {index} is empty or whitespace; pass some text to classify.")
        return text

    def check(self, texts: object) -> list[str]:
        """The caller's batch as a list of checked texts, in the caller's order."""
        if isinstance(texts, str | bytes | bytearray):
            raise InputError("predict_batch takes a list of texts; for one text call predict(text).")
        if isinstance(texts, Mapping):
            raise InputError(
                "predict_batch got a dict; pass a list of texts, e.g. list(d.values()) "
                "(iterating a dict gives its keys, which would be classified)."
            )
        if isinstance(texts, Set):
            raise InputError("predict_batch got a set, which has no order to match results to; pass a list of texts.")
        if not isinstance(texts, Iterable):
            raise InputError(f"predict_batch takes a list of texts, not a {type(texts).__name__}.")
        batch = list(texts)
        if not batch:
            raise InputError("predict_batch got an empty list; pass at least one text.")
        for index, text in enumerate(batch):
            self.check_one(text, index)
        return batch

    # -- encoding and collation -------------------------------------------------------------

    def encode(self, texts: list[str], first_index: int = 0) -> list[Encoding]:
        """Unpadded, truncated encodings; ``first_index`` numbers inputs in error messages."""
        try:
            # One text (the batch-1 path of an app): `encode` stays on this thread, while
            # `encode_batch` hands work to the tokenizers thread pool for nothing.
            encodings = [self._tokenizer.encode(texts[0])] if len(texts) == 1 else self._tokenizer.encode_batch(texts)
        except TypeError:  # tokenizers refuses strings that are not valid Unicode, without saying which
            for index, text in enumerate(texts):
                if isinstance(text, str) and (found := _SURROGATE.search(text)):
                    raise InputError(
                        f"Input {first_index + index} has an unpaired surrogate (U+{ord(found.group()):04X}) at "
                        f"character {found.start()}: it is not valid Unicode text. Decode bytes with "
                        "errors='replace', or fix the source."
                    ) from None
            raise
        for index, encoding in enumerate(encodings):
            if len(encoding) <= self._template_tokens:
                raise InputError(
                    f"Input {first_index + index} has nothing the model can read: it tokenizes to special tokens only "
                    "(control, zero-width or other ignored characters). Pass some text to classify."
                )
        return encodings

    @staticmethod
    def size(encoding: Encoding) -> int:
        """Tokens a row takes unpadded (what chunking sorts and bounds by)."""
        return len(encoding)

    def collate(self, encodings: list[Encoding]) -> dict[str, np.ndarray]:
        """Pad to the longest row (right side: pad id, mask 0, type 0, as the tokenizer pads)."""
        if len(encodings) == 1:  # nothing to pad
            single = encodings[0]
            columns = {"input_ids": single.ids, "attention_mask": single.attention_mask,
                       "token_type_ids": single.type_ids}  # fmt: skip
            return {name: np.asarray([columns[name]], dtype=np.int64) for name in self._input_names}
        width = max(len(e) for e in encodings)
        feed = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in self._input_names}
        if self._pad_id and "input_ids" in feed:
            feed["input_ids"].fill(self._pad_id)
        for row, encoding in enumerate(encodings):
            length = len(encoding)
            if "input_ids" in feed:
                feed["input_ids"][row, :length] = encoding.ids
            if "attention_mask" in feed:
                feed["attention_mask"][row, :length] = 1
            if "token_type_ids" in feed:
                feed["token_type_ids"][row, :length] = encoding.type_ids
        return feed
