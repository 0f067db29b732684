"""``EdgeModel``: load an artifact and predict. The one API a device app needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifact import Manifest, load_manifest, resolve_artifact_dir
from edgekit.errors import InputError
from edgekit.runtime.engines import Engine, create_engine
from edgekit.runtime.preprocess import TextPreprocessor
from edgekit.runtime.settings import RuntimeSettings, resolve_settings


@dataclass(frozen=True)
class Prediction:
    label: str
    label_id: int
    scores: tuple[float, ...]  # softmax probabilities, in the order of ``EdgeModel.labels``

    @property
    def confidence(self) -> float:
        return self.scores[self.label_id]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class EdgeModel:
    """A loaded artifact. Safe to share between threads: inference holds no mutable state."""

    def __init__(
        self, root: Path, manifest: Manifest, engine: Engine, preprocess: TextPreprocessor, settings: RuntimeSettings
    ):
        self.root = root
        self.manifest = manifest
        self.settings = settings  # the engine, threads and providers actually used
        self._engine = engine
        self._preprocess = preprocess

    @classmethod
    def load(
        cls,
        artifact_dir: str | Path,
        *,  # keyword-only: a positional `threads` from older code must not become a target name
        target: str | Mapping[str, Any] | None = None,
        threads: int | None = None,
        engine: str | None = None,
        verify: bool = True,
        manifest_sha256: str | None = None,
    ) -> EdgeModel:
        """Load an artifact directory written by ``edgekit convert``.

        Given a multi-variant output folder, loads the variant it recommends.
        ``target``: a profile name or YAML path whose threads and providers are the defaults,
        or such defaults already resolved (the shape of a manifest's ``runtime``; default: the
        artifact's own).
        ``threads`` sets the engine's intra-op threads (default: the target's).
        ``engine``: ``onnxruntime`` or ``openvino`` (default: the artifact's; OpenVINO also runs ONNX files).
        ``verify`` checks every file against the sha256 in the manifest and refuses a mismatch.
        ``manifest_sha256`` pins the exact artifact: the manifest's own hash, which covers every
        file through their hashes in it (labels and tokenizer settings included).
        """
        root = resolve_artifact_dir(artifact_dir)  # a bundle folder loads its recommended variant
        manifest = load_manifest(root, verify=verify, manifest_sha256=manifest_sha256)
        model_path = root / manifest.model_file
        settings = resolve_settings(manifest, model_path, target, threads, engine)
        runner = create_engine(settings, model_path)
        return cls(root, manifest, runner, TextPreprocessor.for_artifact(root, manifest), settings)

    @property
    def providers(self) -> list[str]:
        """What the engine actually runs on (a profile's accelerator may be absent here)."""
        return list(self._engine.providers)

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The arrays the model is fed for ``texts`` (truncated, padded to the batch's longest)."""
        return self._preprocess(_check_texts(texts))

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw model outputs for a batch, shape (len(texts), num_labels)."""
        return self._engine.run(self.tokenize(texts))

    def predict(self, text: str) -> Prediction:
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        """Predict a batch; it is padded to its longest text, not to a fixed length."""
        probabilities = _softmax(self.logits(texts).astype(np.float64))
        labels = self.manifest.labels
        results = []
        for row in probabilities:
            best = int(row.argmax())
            results.append(Prediction(labels[best], best, tuple(float(p) for p in row)))
        return results


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InputError("predict_batch takes a list of texts; for one text call predict(text).")
    batch = list(texts)
    if not batch:
        raise InputError("predict_batch got an empty list; pass at least one text.")
    for index, text in enumerate(batch):
        if not isinstance(text, str):
            raise InputError(f"Input {index} is a {type(text).__name__}, not a str; pass text.")
        if not text.strip():
            raise InputError(f"Input {index} is empty or whitespace; pass some text to classify.")
    return batch
