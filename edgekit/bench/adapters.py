"""What the worker can time: an edgekit artifact (via the runtime) or a PyTorch checkpoint.

Text and image models share the interface: ``predict_one`` takes what an app passes (a text, or
an image file path: reading, decoding and pre-processing are then part of the latency), and
``tokenize_one`` times the pre-processing alone (tokenizing, or decoding + resizing + normalizing).

Each adapter is constructed inside the worker process, so that imports, loading and
threads belong to the variant being measured and to nothing else.
"""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path
from typing import Protocol

from edgekit.artifact import model_size_mb


class Adapter(Protocol):
    engine: str
    precision: str
    labels: list[str]
    is_text: bool  # token statistics and sequence-length shapes apply to text models only

    def predict_one(self, text: str) -> int: ...

    def predict_many(self, texts: list[str]) -> list[int]: ...

    def tokenize_one(self, text: str) -> object: ...

    def token_count(self, text: str) -> int: ...

    def size_mb(self) -> float: ...


def _files_size_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file()) / 2**20


class ArtifactAdapter:
    """An edgekit artifact through ``EdgeModel``: what a device app runs."""

    @staticmethod
    def import_engine(path: Path) -> None:
        """Import the artifact's engine library, so cold start can tell import from load."""
        from edgekit.artifact import read_manifest
        from edgekit.errors import ArtifactError
        from edgekit.runtime.engines import get_engine

        with contextlib.suppress(ImportError, ArtifactError):  # loading then says what is wrong
            importlib.import_module(get_engine(read_manifest(path).engine).module)

    def __init__(self, path: Path, threads: int, max_length: int | None = None, runtime_target: str | dict = "host"):
        from edgekit.runtime import EdgeModel  # max_length: the manifest's applies

        self._model = EdgeModel.load(path, threads=threads, target=runtime_target)
        manifest = self._model.manifest
        self.engine, self.precision, self.labels = manifest.engine, manifest.precision, manifest.labels
        self.is_text = manifest.tokenizer is not None
        self._path = path

    def predict_one(self, text: str) -> int:
        return self._model.predict(text).label_id

    def predict_many(self, texts: list[str]) -> list[int]:
        return [p.label_id for p in self._model.predict_batch(texts)]

    def tokenize_one(self, text: str) -> object:
        return self._model.features([text])  # the engine's feed: tokens, or decoded and normalized pixels

    def token_count(self, text: str) -> int:
        return int(self._model.tokenize([text])["input_ids"].shape[1]) if self.is_text else 0

    def size_mb(self) -> float:
        return model_size_mb(self._model.root, self._model.manifest)


class PyTorchAdapter:
    """A Hugging Face checkpoint run eagerly by PyTorch in fp32: the usual baseline."""

    is_text = True

    @staticmethod
    def import_engine(path: Path) -> None:
        import torch  # noqa: F401
        import transformers  # noqa: F401

    def __init__(self, path: Path, threads: int, max_length: int | None = None, runtime_target: str | dict = "host"):
        import torch  # runtime_target: PyTorch runs on the CPU here
        import transformers

        torch.set_num_threads(threads)
        self._torch = torch
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(path, use_fast=True)
        self._model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
        config = self._model.config
        limits = [config.max_position_embeddings, self._tokenizer.model_max_length]
        self._max_length = max_length or min(v for v in limits if isinstance(v, int) and v > 0)
        self.engine, self.precision = "pytorch", "fp32"
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self._path = path

    def _encode(self, texts: list[str]):
        return self._tokenizer(texts, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt")

    def predict_one(self, text: str) -> int:
        with self._torch.inference_mode():
            logits = self._model(**self._encode([text])).logits
        return int(logits.softmax(-1).argmax(-1)[0])

    def predict_many(self, texts: list[str]) -> list[int]:
        with self._torch.inference_mode():
            logits = self._model(**self._encode(texts)).logits
        return [int(i) for i in logits.argmax(-1)]

    def tokenize_one(self, text: str) -> object:
        return self._encode([text])

    def token_count(self, text: str) -> int:
        return int(self._encode([text])["input_ids"].shape[1])

    def size_mb(self) -> float:
        return _files_size_mb([self._path / "model.safetensors", self._path / "pytorch_model.bin"])


ADAPTERS: dict[str, type[ArtifactAdapter] | type[PyTorchAdapter]] = {
    "artifact": ArtifactAdapter,
    "pytorch": PyTorchAdapter,
}


def adapter_for(kind: str, path: Path) -> type:
    """The adapter class for a variant: an image source's PyTorch baseline gets the image adapter."""
    if kind == "pytorch":
        from edgekit.bench.image_adapters import ImagePyTorchAdapter, is_image_source

        if is_image_source(path):
            return ImagePyTorchAdapter
    return ADAPTERS[kind]
