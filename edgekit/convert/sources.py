"""Load a source model for conversion: a Hugging Face checkpoint directory or a hub id.

The result is a ``LoadedSource``: the PyTorch model in eval mode, its fast tokenizer,
the label names and a description of where it came from (for the manifest).

That description ships with every artifact (to devices, to customers), so it names the source
(the folder's name or the hub id) and fingerprints its weights, but records the local path on
the build machine only when asked (``record_path``). A checkpoint is untrusted input: pickled
weights are refused, and every way a damaged checkpoint fails is reported as one ``SourceError``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.artifact import sha256_file
from edgekit.errors import SourceError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_NOT_WEIGHTS = {"training_args.bin"}  # Trainer's pickled arguments, not model weights
# Any one of these lets AutoTokenizer build a tokenizer; without them it fails with a TypeError.
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                    "tokenizer.model")  # fmt: skip


@dataclass
class LoadedSource:
    model: Any  # transformers.PreTrainedModel (or, for images, any nn.Module), in eval mode
    tokenizer: Any  # transformers.PreTrainedTokenizerFast; None for image tasks
    labels: list[str]
    task: str
    info: dict[str, Any] = field(default_factory=dict)  # goes into manifests: no local paths unless asked
    location: str | None = None  # where it was loaded from on this machine (a folder or a hub id); never recorded
    preprocessing: dict[str, Any] | None = None  # images: the manifest's `preprocessing` (convert/image_sources.py)

    @property
    def max_length(self) -> int:
        """The longest input the model takes: its position table or tokenizer limit."""
        limits = [getattr(self.model.config, "max_position_embeddings", None), self.tokenizer.model_max_length]
        return int(min(v for v in limits if isinstance(v, int) and 0 < v < 1_000_000))


def labels_from_config(config: Any) -> list[str]:
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    return [id2label[i] for i in range(len(id2label))]


def weight_files(folder: Path) -> list[Path]:
    found = {p for pattern in _WEIGHT_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return sorted(p for p in found if p.name not in _NOT_WEIGHTS)


def weights_fingerprint(folder: Path) -> str | None:
    """sha256 of the checkpoint's weights: of the file itself when there is one, else of
    every shard's name and sha256. ``None`` when no weight file is found."""
    files = weight_files(folder)
    if len(files) == 1:
        return sha256_file(files[0])
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}:{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def _describe_local(path: Path, record_path: bool = False) -> dict[str, Any]:
    info: dict[str, Any] = {"kind": "hf-dir", "name": path.resolve().name}
    if record_path:
        info["path"] = str(path.resolve())
    fingerprint = weights_fingerprint(path)
    if fingerprint is not None:
        info["weights_files"] = [p.name for p in weight_files(path)]
        info["weights_sha256"] = fingerprint
    return info


def public_name(ref: str, record_path: bool = False) -> str:
    """How outputs name a source: a local folder's or file's name (its path only when asked), or the hub id."""
    path = Path(ref).expanduser()
    if not path.exists():
        return ref
    return str(path.resolve()) if record_path else path.resolve().name


def resolve_reference(ref: str, record_path: bool = False) -> tuple[str, dict[str, Any]]:
    """Decide whether ``ref`` is a local checkpoint or a hub id, failing clearly otherwise."""
    path = Path(ref).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".onnx":
            raise SourceError(
                f"{path} is an ONNX file, and this step needs a PyTorch checkpoint (a distillation student, an "
                "image classifier). An ONNX text classifier converts on its own: "
                f"`edgekit convert --model {path.name} --tokenizer DIR --labels a,b` (docs/recipes.md)."
            )
        if not path.is_dir() or not (path / "config.json").is_file():
            what = "it has no config.json" if path.is_dir() else "it is a file"
            raise SourceError(
                f"{path} exists but is not a Hugging Face checkpoint directory: {what}. "
                "Pass the folder written by `save_pretrained()` / `Trainer.save_model()`."
            )
        return str(path), _describe_local(path, record_path)
    looks_like_path = ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref
    if looks_like_path or not _HUB_ID.match(ref):
        raise SourceError(f"Model directory {ref} does not exist. Check the path, or pass a hub id like org/name.")
    return ref, {"kind": "hub", "id": ref}


def _check_local_files(location: str, info: dict[str, Any]) -> None:
    """Problems with a local checkpoint's files that transformers would report as a traceback."""
    if info["kind"] != "hf-dir":
        return
    folder = Path(location)
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise SourceError(
            f"{folder} has no tokenizer files (none of {', '.join(_TOKENIZER_FILES)}). Save the tokenizer next to "
            "the model: `tokenizer.save_pretrained(folder)`."
        )


def _load_failure(ref: str, exc: BaseException) -> SourceError:
    """One line for a checkpoint that cannot be loaded, with what to do about it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if type(exc).__name__ == "SafetensorError" or "safetensors" in text.lower():
        return SourceError(
            f"The weights in '{ref}' are damaged ({text}): a safetensors file is truncated or corrupt. "
            "Copy or download the checkpoint again, or re-save it with `model.save_pretrained()`."
        )
    if any(type(cause).__name__ == "UnpicklingError" for cause in _causes(exc)):
        return SourceError(
            f"The weights in '{ref}' are a pickle (pytorch_model.bin / .pt) that edgekit refuses to load for "
            "safety: unpickling can run code. Convert the checkpoint to safetensors where you trust it "
            "(`model.save_pretrained(folder, safe_serialization=True)`), then convert that folder."
        )
    return SourceError(f"Could not load the model or tokenizer from '{ref}': {text}")


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it (transformers wraps torch's refusal in an OSError about TF)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


# What transformers, tokenizers, torch and safetensors raise for damaged or unexpected checkpoint files.
_LOAD_ERRORS = (OSError, ValueError, TypeError, KeyError, RuntimeError, EOFError, AttributeError, ImportError)


def load_text_classifier(
    ref: str, revision: str | None = None, trust_remote_code: bool = False, record_path: bool = False
) -> LoadedSource:
    """Load a sequence-classification checkpoint and its fast tokenizer.

    ``record_path``: also record the local folder's absolute path in ``info`` (the manifest).
    """
    import pickle

    import transformers

    location, info = resolve_reference(ref, record_path)
    _check_local_files(location, info)
    if revision:
        info["revision"] = revision
    try:
        config = transformers.AutoConfig.from_pretrained(
            location, revision=revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        hint = (
            " It looks like a hub id: check the spelling, your network or HF_HUB_OFFLINE, "
            "or download it and pass the local folder."
            if info["kind"] == "hub"
            else ""
        )
        raise SourceError(f"Could not load a model config from '{ref}': {exc}.{hint}") from None
    architectures = config.architectures or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise SourceError(
            f"'{ref}' is a {', '.join(architectures) or 'model'} checkpoint without a sequence-classification "
            "head, so there is nothing fine-tuned to export. Fine-tune it for text classification first "
            "(see `edgekit quickstart`, which does this on demo data), then convert the result."
        )
    from edgekit.tasks.detect import detect_task

    detect_task(config)  # refuses what a classifier export would get wrong: is_decoder, regression, multi-label
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            location, revision=revision, trust_remote_code=trust_remote_code
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            location, revision=revision, trust_remote_code=trust_remote_code, use_fast=True
        )
    except (*_LOAD_ERRORS, pickle.UnpicklingError, _safetensor_error()) as exc:
        raise _load_failure(ref, exc) from None
    if not tokenizer.is_fast:
        raise SourceError(
            f"'{ref}' has no fast tokenizer (tokenizer.json); the edgekit runtime needs one. "
            "Save it with a transformers *TokenizerFast class first."
        )
    model.eval()
    info["architecture"] = architectures[0]
    return LoadedSource(model, tokenizer, labels_from_config(config), "text-classification", info, location)


def _safetensor_error() -> type[BaseException]:
    try:
        from safetensors import SafetensorError
    except ImportError:  # an older safetensors
        return OSError
    return SafetensorError
