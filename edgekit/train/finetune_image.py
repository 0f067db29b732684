"""Fine-tune an image classifier (a PyTorch module from a factory, or a Hugging Face one) with ``Trainer``.

The training tensors come from the runtime's own ``ImagePreprocessor`` (decode, resize, crop,
rescale, normalise), built from the same ``preprocessing`` the artifact's manifest will carry, so
the network is trained on exactly what it will see on the device (``tests/test_image_finetune.py``
compares the two on real images). The optional augmentation is applied to the decoded image
before that pipeline: a random rotation of up to ±8° and a shift of up to 6% of each side, with
black fill (the digits' background), as Pillow's ``Image.rotate`` does it.

``head_only=True`` trains only the classification head (the module named by ``head`` for a
factory model, everything outside ``base_model`` for a Hugging Face one); the frozen backbone
also keeps its batch-norm statistics (it stays in eval mode), so it is the pretrained network
unchanged. Otherwise the whole network is trained.

Like the text fine-tuning the result is cached: ``training.json`` records a key made of the
base weights, the images' bytes and labels, and the settings; the same inputs reuse it.
The checkpoint is what ``convert`` reads: for a factory model ``weights.safetensors`` plus
``model.json`` (the recipe's ``{factory, arguments, weights, input, labels, preprocessing}``),
for a Hugging Face model ``save_pretrained`` plus its image processor's config.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import DataError
from edgekit.metrics import accuracy
from edgekit.outputs import atomic_directory, check_destination
from edgekit.progress import Reporter, SilentReporter
from edgekit.train.finetune import FinetuneResult
from edgekit.train.hf_progress import progress_bar_only, transformers_errors_only
from edgekit.train.trainer_setup import TRAINING_RECORD, read_record, training_arguments

MODEL_SPEC = "model.json"  # a factory checkpoint's recipe mapping
WEIGHTS = "weights.safetensors"


@dataclass(frozen=True)
class ImageFinetuneConfig:
    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_ratio: float = 0.1
    head_only: bool = False  # train the classification head only (the backbone stays as pretrained)
    augment: bool = False  # light random rotation and shift (see the module docstring)
    seed: int = 0
    # None: torch's default. Small CNNs train far faster on one thread on a busy 2-core machine (measured:
    # 0.03 vs 0.57 CPU-s per step of tiny_mobilenet, two threads spinning against each other and other jobs).
    threads: int | None = None


@dataclass(frozen=True)
class ModuleBase:
    """A plain PyTorch classifier to fine-tune: the factory builds it, pretrained weights included."""

    factory: str  # "package.module:function"
    input: tuple[int, int, int]  # [channels, height, width]
    arguments: dict[str, Any] = field(default_factory=dict)
    classes_argument: str = "num_classes"  # the factory argument that sets the number of classes
    head: str = "classifier"  # attribute path of the head (trained alone when head_only)
    preprocessing: dict[str, Any] = field(default_factory=dict)  # overrides of the ImageNet defaults


class PixelRows:
    """Images as ``pixel_values`` (+ ``labels``) for ``Trainer``, made by the runtime's pre-processor."""

    def __init__(self, preprocessor: Any, paths: list[str], label_ids: list[int] | None, augment: bool = False):
        self._pre, self._paths, self._labels, self._augment = preprocessor, paths, label_ids, augment
        self._rng = random.Random(0)

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        picture = self._pre.decode(self._paths[index], index)
        if self._augment:
            picture = random_shift_rotate(picture, self._rng)
        feed = self._pre.collate([self._pre.resize_and_crop(picture)])["pixel_values"][0]
        item: dict[str, Any] = {"pixel_values": torch.from_numpy(feed)}
        if self._labels is not None:
            item["labels"] = self._labels[index]
        return item


def random_shift_rotate(picture: Any, rng: random.Random) -> Any:
    from PIL import Image

    width, height = picture.size
    shift = (round(rng.uniform(-0.06, 0.06) * width), round(rng.uniform(-0.06, 0.06) * height))
    fill = 0 if picture.mode == "L" else (0,) * len(picture.getbands())
    return picture.rotate(rng.uniform(-8, 8), Image.Resampling.BILINEAR, translate=shift, fillcolor=fill)


def data_fingerprint(paths: list[str], labels: list[str]) -> str:
    """The images' bytes and labels, in order: renaming a folder does not retrain, editing an image does."""
    digest = hashlib.sha256()
    for path, label in zip(paths, labels, strict=True):
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
        digest.update(label.encode() + b"\0")
    return digest.hexdigest()


def _state_fingerprint(model: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _with_loss(model: Any, head: str | None) -> Any:
    """Wrap a module returning logits (or an HF output) so ``Trainer`` gets ``{loss, logits}``."""
    import torch
    from torch import nn

    from edgekit.convert.image_sources import image_logits

    class LogitsAndLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
            logits = image_logits(self.model, pixel_values)
            if labels is None:
                return {"logits": logits}
            return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}

        def train(self, mode: bool = True) -> LogitsAndLoss:
            super().train(mode)
            if head is not None and mode:  # head only: the frozen backbone keeps its batch-norm statistics
                self.model.eval()
                self.model.get_submodule(head).train()
            return self

    return LogitsAndLoss()


def _freeze_all_but(model: Any, head: str) -> None:
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in model.get_submodule(head).parameters():
        parameter.requires_grad_(True)


def _load_module_base(base: ModuleBase, labels: list[str]) -> tuple[Any, dict[str, Any], dict[str, Any], str]:
    """(model, preprocessing, the checkpoint's model.json without weights, base fingerprint)."""
    from edgekit.convert.image_sources import FactorySpec, _call_factory, default_preprocessing, input_size

    arguments = {**base.arguments, base.classes_argument: len(labels)}
    spec = FactorySpec(factory=base.factory, arguments=arguments, input=list(base.input), labels=labels)
    model = _call_factory(spec)  # the same loader convert uses for this factory
    preprocessing = default_preprocessing(list(base.input), base.preprocessing)
    if input_size(preprocessing) != tuple(base.input):
        raise DataError(f"The pre-processing makes {list(input_size(preprocessing))} inputs, not {list(base.input)}.")
    mapping = {"factory": base.factory, "arguments": arguments, "input": list(base.input), "labels": labels,
               "preprocessing": preprocessing}  # fmt: skip
    return model, preprocessing, mapping, _state_fingerprint(model)


def _load_hf_base(base: Path, labels: list[str]) -> tuple[Any, Any, dict[str, Any], str]:
    """(model with a fresh head for ``labels``, image processor, preprocessing, base fingerprint)."""
    import transformers

    from edgekit.convert.image_sources import processor_preprocessing
    from edgekit.convert.sources import weights_fingerprint

    processor = transformers.AutoImageProcessor.from_pretrained(base)
    model = transformers.AutoModelForImageClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        ignore_mismatched_sizes=True,  # a base with a head for another label set gets a fresh one
    )
    preprocessing = processor_preprocessing(processor, int(getattr(model.config, "num_channels", 3)))
    return model, processor, preprocessing, weights_fingerprint(base) or str(base.resolve())


def _check_data(train: Any) -> list[str]:
    if not train.has_labels:
        raise DataError(f"{train.source} has no labels; fine-tuning needs a label for every image.")
    labels = train.label_names()
    if len(labels) < 2:
        raise DataError(f"{train.source} has only one label ({labels}); a classifier needs at least two.")
    return labels


@transformers_errors_only()
def finetune_image_classifier(
    base: ModuleBase | Path,
    train: Any,
    out: Path,
    evaluation: Any | None = None,
    config: ImageFinetuneConfig | None = None,
    reporter: Reporter | None = None,
) -> FinetuneResult:
    """Fine-tune ``base`` on ``train`` (an ``ImageDataset``) into the checkpoint folder ``out``."""
    import transformers

    config = config or ImageFinetuneConfig()
    reporter = reporter or SilentReporter()
    labels = _check_data(train)
    inputs = [Path(d.source) for d in (train, evaluation) if d is not None] + ([base] if isinstance(base, Path) else [])
    check_destination(out, inputs)  # before training: never a folder edgekit did not write, nor an input
    transformers.set_seed(config.seed)  # before the factory runs: a fresh head is the same every time
    if isinstance(base, ModuleBase):
        model, preprocessing, mapping, fingerprint = _load_module_base(base, labels)
        head, processor = base.head, None
    else:
        model, processor, preprocessing, fingerprint = _load_hf_base(Path(base), labels)
        head, mapping = None, None
    settings = {k: v for k, v in asdict(config).items() if k != "threads"}  # threads change speed, not the result
    key_parts = [fingerprint, data_fingerprint(train.texts, train.labels), labels, settings, preprocessing]
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()
    record = read_record(out)
    if record is not None and record.get("cache_key") == key:
        reporter.note(f"reusing the fine-tuned checkpoint in {out}")
        return FinetuneResult(out, labels, record.get("eval_accuracy"), record["train_seconds"], record["steps"], True)

    if config.head_only:
        head = head or _hf_head(model)
        _freeze_all_but(model, head)
    wrapped = _with_loss(model, head if config.head_only else None)
    trainer, seconds, steps, eval_accuracy = _train(wrapped, preprocessing, train, evaluation, labels, config)
    with atomic_directory(out, "checkpoint", inputs) as staging:
        if mapping is not None:
            _save_module(model, mapping, staging)
        else:
            model.save_pretrained(str(staging))
            processor.save_pretrained(str(staging))
        record = {"cache_key": key, "base_model": str(base if isinstance(base, Path) else base.factory),
                  "train_rows": len(train), "labels": labels, "config": asdict(config), "steps": steps,
                  "train_seconds": seconds, "eval_accuracy": eval_accuracy}  # fmt: skip
        (staging / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    del trainer
    return FinetuneResult(out, labels, eval_accuracy, seconds, steps, False)


def _hf_head(model: Any) -> str:
    """The first top-level child outside ``base_model``: an HF image classifier's head."""
    base = getattr(model, "base_model_prefix", "")
    for name, _ in model.named_children():
        if name != base:
            return name
    raise DataError(f"{type(model).__name__} has no classification head outside its base model to train alone.")


def _train(wrapped: Any, preprocessing: dict, train: Any, evaluation: Any, labels: list[str],
           config: ImageFinetuneConfig) -> tuple[Any, float, int, float | None]:  # fmt: skip
    import numpy as np
    import torch
    import transformers

    from edgekit.runtime.image_preprocess import ImagePreprocessor

    preprocessor = ImagePreprocessor.from_config(preprocessing)
    train_set = PixelRows(preprocessor, train.texts, train.label_ids(labels), config.augment)
    eval_set = None
    if evaluation is not None and evaluation.has_labels:
        eval_set = PixelRows(preprocessor, evaluation.texts, evaluation.label_ids(labels))

    def eval_accuracy(prediction: Any) -> dict[str, float]:
        return {"accuracy": accuracy(np.argmax(prediction.predictions, -1), prediction.label_ids)}

    scratch = Path(tempfile.mkdtemp(prefix="edgekit-trainer-"))  # Trainer's output_dir: nothing is saved there
    args = training_arguments(scratch, config.epochs, config.batch_size, config.learning_rate,
                              config.weight_decay, config.warmup_ratio, config.seed)  # fmt: skip
    trainer = transformers.Trainer(model=wrapped, args=args, train_dataset=train_set, eval_dataset=eval_set,
                                   compute_metrics=eval_accuracy)  # fmt: skip
    progress_bar_only(trainer)
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
        accuracy_value = trainer.evaluate()["eval_accuracy"] if eval_set is not None else None
    finally:
        torch.set_num_threads(previous_threads)
        shutil.rmtree(scratch, ignore_errors=True)
    wrapped.eval()
    return trainer, seconds, output.global_step, accuracy_value


def _save_module(model: Any, mapping: dict[str, Any], folder: Path) -> None:
    from safetensors.torch import save_file

    state = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    (folder / MODEL_SPEC).write_text(json.dumps({**mapping, "weights": WEIGHTS}, indent=2) + "\n")


def factory_model(checkpoint: Path) -> dict[str, Any]:
    """A fine-tuned factory checkpoint as a recipe's ``model:`` mapping (weights as an absolute path)."""
    try:
        mapping = json.loads((checkpoint / MODEL_SPEC).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{checkpoint} is not a fine-tuned image checkpoint ({MODEL_SPEC}: {exc}).") from None
    return {**mapping, "weights": str((checkpoint / mapping["weights"]).resolve())}
