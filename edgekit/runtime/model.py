"""``EdgeModel``: load an artifact and predict. The one API a device app needs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifact import Manifest, load_artifact, model_file_path
from edgekit.errors import ArtifactError, InputError
from edgekit.runtime.batching import plan_chunks
from edgekit.runtime.classification import Prediction
from edgekit.runtime.engines import Engine, create_engine, get_engine
from edgekit.runtime.settings import RuntimeSettings, resolve_settings
from edgekit.runtime.tasks import Preprocessor, TaskSpec, get_task

__all__ = ["EdgeModel", "Prediction"]

# Inputs encoded at once before chunking: rows are sorted by length within this window, and
# their unpadded encodings are all that is held besides the chunk being run.
_WINDOW_CHUNKS = 16


class EdgeModel:
    """A loaded artifact. Safe to share between threads: inference holds no mutable state."""

    def __init__(
        self, root: Path, manifest: Manifest, engine: Engine, preprocess: Preprocessor, settings: RuntimeSettings,
        task: TaskSpec | None = None,
    ):  # fmt: skip
        self.root = root
        self.manifest = manifest
        self.settings = settings  # engine, threads, device option, batch bounds actually used
        self._engine = engine
        self._preprocess = preprocess
        self._task = task or get_task(manifest.task)

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
        max_batch_rows: int | None = None,
        max_batch_tokens: int | None = None,
        batch_invariant: bool | None = None,
    ) -> EdgeModel:
        """Load an artifact directory written by ``edgekit convert``.

        Given a multi-variant output folder, loads the variant it recommends.
        ``target``: a profile name or YAML path whose threads and providers are the defaults,
        or such defaults already resolved (the shape of a manifest's ``runtime``; default: the
        artifact's own).
        ``threads`` sets the engine's intra-op threads (default: the target's).
        ``engine``: a registered engine, e.g. ``onnxruntime`` or ``openvino`` (default: the
        artifact's; OpenVINO also runs ONNX files).
        ``verify`` checks every file against the sha256 in the manifest and refuses a mismatch.
        ``manifest_sha256`` pins the exact artifact: the manifest's own hash, which covers every
        file through their hashes in it (labels and tokenizer settings included).
        ``max_batch_rows`` / ``max_batch_tokens`` bound one engine call of ``predict_batch`` and
        ``logits`` (rows, and rows x padded length), so peak memory does not grow with the list.
        ``batch_invariant``: whether rows may share an engine call; default: the manifest's
        ``batch_invariant`` (absent: False for ONNX Runtime INT8, True otherwise). False runs
        every row alone, unpadded, so a text gets the same answer whatever else is in the batch.
        """
        # A bundle folder loads its recommended variant; on a bundle the pin is summary.json's sha256.
        root, manifest = load_artifact(artifact_dir, verify=verify, manifest_sha256=manifest_sha256)
        task = get_task(manifest.task)
        task.check_manifest(manifest)
        get_engine(engine or manifest.engine)  # an unknown engine is named before any file is read
        model_path = model_file_path(root, manifest)  # listed, hashed, inside the folder, no links
        settings = resolve_settings(
            manifest, model_path, target, threads, engine,
            max_batch_rows=max_batch_rows, max_batch_tokens=max_batch_tokens, batch_invariant=batch_invariant,
        )  # fmt: skip
        runner = create_engine(settings.engine, model_path, settings.threads, settings.engine_option)
        model = cls(root, manifest, runner, task.preprocessor(root, manifest), settings, task)
        model._check_output_width()
        return model

    def _check_output_width(self) -> None:
        """Refuse a manifest whose labels do not match the model's outputs now, not at every predict."""
        expected = self._task.output_width(self.manifest)
        width = getattr(self._engine, "output_width", None)
        if width is None:  # a symbolic last axis (or an engine that does not say): measure it once
            probe = self._preprocess([self._preprocess.probe_input])
            width = int(self._engine.run(probe).shape[-1])
        if width != expected:
            raise ArtifactError(
                f"manifest.json lists {expected} labels but the model outputs {width} scores per input: the manifest "
                "does not belong to this model. Re-export the artifact rather than editing its manifest."
            )

    @property
    def providers(self) -> list[str]:
        """What the engine actually runs on (a profile's accelerator may be absent here)."""
        return list(self._engine.providers)

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The arrays the model is fed for ``texts`` as one batch (truncated, padded to the longest).

        Not chunked: the arrays are len(texts) x longest (int64), what one engine call would get.
        ``predict_batch`` and ``logits`` chunk; use this to inspect inputs, not to feed big lists.
        Text artifacts only; for any artifact, ``features(inputs)`` gives the feed.
        """
        if self.manifest.tokenizer is None:
            raise InputError(
                f"tokenize() is for text models; this artifact's task is {self.manifest.task}, which has no "
                "tokenizer. Call features(inputs) for the arrays it is fed."
            )
        return self.features(texts)

    def features(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        """The model's feed for ``inputs`` as one batch (not chunked: to inspect inputs, not for big lists)."""
        return self._preprocess(self._preprocess.check(inputs))

    def logits(self, inputs: Sequence[Any]) -> np.ndarray:
        """Raw model outputs, shape (len(inputs), num_labels), in the caller's order (chunked like predict_batch)."""
        items = self._preprocess.check(inputs)
        parts = list(self._chunks(items))
        if len(parts) == 1:
            return parts[0][1]
        first = parts[0][1]
        out = np.empty((len(items), *first.shape[1:]), dtype=first.dtype)
        for indices, outputs in parts:
            out[indices] = outputs
        return out

    def predict(self, item: Any) -> Prediction:
        """One input: a text for a text artifact; for an image artifact a path, encoded bytes, a PIL
        image or an HxWxC (HxW) uint8 array."""
        # The batch-1 path of an app: no list to check, sort or chunk.
        item = self._preprocess.check_one(item)
        return self._task.postprocess(self._engine.run(self._preprocess([item])), self.manifest.labels)[0]

    def predict_batch(self, inputs: Sequence[Any]) -> list[Prediction]:
        """Predict many inputs (texts, or images as ``predict`` takes them) in bounded engine calls.

        Results are in the caller's order. Texts are sorted by length and run in chunks of at most
        ``settings.max_batch_rows`` rows and ``settings.max_batch_tokens`` padded tokens, each padded
        to its own longest row; images in chunks of at most ``max_batch_rows`` images and
        ``max_batch_tokens`` units of 1024 input values (docs/runtime.md), decoded one chunk at a
        time. Artifacts that are not batch-invariant run each row alone.
        """
        items = self._preprocess.check(inputs)
        results: list[Any] = [None] * len(items)
        for indices, outputs in self._chunks(items):
            for index, result in zip(indices, self._task.postprocess(outputs, self.manifest.labels), strict=True):
                results[index] = result
        return results

    def _chunks(self, items: list[Any]) -> Iterator[tuple[list[int], np.ndarray]]:
        """(caller's indices, engine outputs) per bounded engine call, over checked ``items``."""
        pre, settings = self._preprocess, self.settings
        if not settings.batch_invariant:  # each row alone and unpadded: no other row can change it
            for index, item in enumerate(items):
                yield [index], self._engine.run(pre.collate(pre.encode([item], index)))
            return
        window = settings.max_batch_rows * getattr(pre, "window_chunks", _WINDOW_CHUNKS)
        for start in range(0, len(items), window):
            records = pre.encode(items[start : start + window], start)
            sizes = [pre.size(record) for record in records]
            for chunk in plan_chunks(sizes, settings.max_batch_rows, settings.max_batch_tokens):
                outputs = self._engine.run(pre.collate([records[i] for i in chunk]))
                yield [start + i for i in chunk], outputs
