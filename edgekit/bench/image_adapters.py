"""The PyTorch baseline for image classifiers, timed as an app would run it.

Latency includes reading and decoding the image file and the pre-processing (the runtime's
``ImagePreprocessor``, numpy + Pillow, with the same ``preprocessing`` the artifacts carry), then
the eager fp32 forward pass; ``tokenize_one`` times the decoding and pre-processing alone.

The source is a fine-tuned factory checkpoint (a folder with ``model.json`` and its weights,
as ``train/finetune_image.py`` writes it, or the weights file inside it) or a Hugging Face
``AutoModelForImageClassification`` folder with its image processor config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_SPEC = "model.json"  # what train/finetune_image.py writes next to the weights


def _factory_folder(path: Path) -> Path | None:
    folder = path if path.is_dir() else path.parent
    return folder if (folder / MODEL_SPEC).is_file() else None


def is_image_source(path: Path) -> bool:
    """A factory checkpoint, or an HF folder whose architecture is an image classifier."""
    if _factory_folder(path) is not None:
        return True
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return any(str(a).endswith("ForImageClassification") for a in config.get("architectures") or [])


def _load(path: Path) -> Any:
    """A LoadedSource (model in eval mode, labels, preprocessing), loaded as ``convert`` loads it."""
    from edgekit.convert.image_sources import FactorySpec, load_factory_source, load_hf_image_classifier

    folder = _factory_folder(path)
    if folder is None:
        return load_hf_image_classifier(str(path))
    mapping = json.loads((folder / MODEL_SPEC).read_text())
    if mapping.get("weights"):  # relative to the folder (a fine-tuned checkpoint) or absolute (a recipe's)
        mapping["weights"] = str(folder / mapping["weights"])
    return load_factory_source(FactorySpec(**mapping))


def write_factory_source(spec: Any, folder: Path) -> Path:
    """A recipe's ``model: {factory: ...}`` as a folder the PyTorch baseline's worker loads (``model.json``,
    weights named by absolute path, or none when the factory loads its own)."""
    mapping = spec.model_dump(mode="json")
    if spec.weights is not None:
        mapping["weights"] = str(Path(spec.weights).resolve())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_SPEC).write_text(json.dumps(mapping, indent=2) + "\n")
    return folder


class ImagePyTorchAdapter:
    """An image classifier run eagerly by PyTorch in fp32, behind the runtime's pre-processing."""

    is_text = False

    @staticmethod
    def import_engine(path: Path) -> None:
        import PIL.Image  # noqa: F401
        import torch  # noqa: F401

    def __init__(self, path: Path, threads: int, max_length: int | None = None, runtime_target: str | dict = "host"):
        import torch  # max_length, runtime_target: not used by images on PyTorch's CPU path

        from edgekit.runtime.image_preprocess import ImagePreprocessor

        torch.set_num_threads(threads)
        self._torch = torch
        source = _load(path)
        self._model = source.model.eval()
        self._preprocess = ImagePreprocessor.from_config(source.preprocessing)
        self.engine, self.precision, self.labels = "pytorch", "fp32", list(source.labels)
        folder = _factory_folder(path)
        weights = json.loads((folder / MODEL_SPEC).read_text()).get("weights") if folder else None
        found = [folder / weights] if folder and weights else []
        self._files = found or list((folder or path).glob("*.safetensors")) + list((folder or path).glob("*.bin"))

    def _logits(self, images: list[Any]) -> Any:
        from edgekit.convert.image_sources import image_logits

        pixels = self._torch.from_numpy(self._preprocess(self._preprocess.check(images))["pixel_values"])
        with self._torch.inference_mode():
            return image_logits(self._model, pixels)

    def predict_one(self, image: Any) -> int:
        return int(self._logits([image]).softmax(-1).argmax(-1)[0])

    def predict_many(self, images: list[Any]) -> list[int]:
        return [int(i) for i in self._logits(images).argmax(-1)]

    def tokenize_one(self, image: Any) -> object:
        return self._preprocess([image])

    def token_count(self, image: Any) -> int:
        return 0  # images have no tokens; the worker skips token statistics for them

    def size_mb(self) -> float:
        on_disk = sum(p.stat().st_size for p in self._files if p.is_file())
        if on_disk:
            return on_disk / 2**20
        # No weights file (a factory that loads weights shipped inside its package): the tensors' own size.
        state = self._model.state_dict().values()
        return sum(t.numel() * t.element_size() for t in state) / 2**20
