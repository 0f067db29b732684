"""Load a source model for conversion: a Hugging Face checkpoint directory or a hub id.

The result is a ``LoadedSource``: the PyTorch model in eval mode, its fast tokenizer,
the label names and a description of where it came from (for the manifest).
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


@dataclass
class LoadedSource:
    model: Any  # transformers.PreTrainedModel, in eval mode
    tokenizer: Any  # transformers.PreTrainedTokenizerFast
    labels: list[str]
    task: str
    info: dict[str, Any] = field(default_factory=dict)

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


def _describe_local(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"kind": "hf-dir", "path": str(path.resolve())}
    fingerprint = weights_fingerprint(path)
    if fingerprint is not None:
        info["weights_files"] = [p.name for p in weight_files(path)]
        info["weights_sha256"] = fingerprint
    return info


def resolve_reference(ref: str) -> tuple[str, dict[str, Any]]:
    """Decide whether ``ref`` is a local checkpoint or a hub id, failing clearly otherwise."""
    path = Path(ref).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".onnx":
            raise SourceError(
                f"{path} is an ONNX file. `edgekit convert` needs the PyTorch checkpoint it came from "
                "to check parity; ONNX-file sources are not supported yet."
            )
        if not path.is_dir() or not (path / "config.json").is_file():
            raise SourceError(
                f"{path} is not a Hugging Face checkpoint directory (no config.json). "
                "Pass the folder written by `save_pretrained()` / `Trainer.save_model()`."
            )
        return str(path), _describe_local(path)
    looks_like_path = ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref
    if looks_like_path or not _HUB_ID.match(ref):
        raise SourceError(f"Model directory {ref} does not exist. Check the path, or pass a hub id like org/name.")
    return ref, {"kind": "hub", "id": ref}


def load_text_classifier(ref: str, revision: str | None = None, trust_remote_code: bool = False) -> LoadedSource:
    """Load a sequence-classification checkpoint and its fast tokenizer."""
    import transformers

    location, info = resolve_reference(ref)
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
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            location, revision=revision, trust_remote_code=trust_remote_code
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            location, revision=revision, trust_remote_code=trust_remote_code, use_fast=True
        )
    except (OSError, ValueError) as exc:
        raise SourceError(f"Could not load the model or tokenizer from '{ref}': {exc}") from None
    if not tokenizer.is_fast:
        raise SourceError(
            f"'{ref}' has no fast tokenizer (tokenizer.json); the edgekit runtime needs one. "
            "Save it with a transformers *TokenizerFast class first."
        )
    model.eval()
    info["architecture"] = architectures[0]
    return LoadedSource(model, tokenizer, labels_from_config(config), "text-classification", info)
