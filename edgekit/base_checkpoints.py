"""A base checkpoint to fine-tune, named by a local folder or a Hugging Face hub id, as a local folder.

The quickstart's Chinese default (``bert-base-chinese``) is a hub id: on a machine without
network and without it in the Hugging Face cache, the user gets one actionable error naming
``--base-model`` and how to fetch the weights elsewhere, instead of a transformers traceback.
Only safetensors weights are fetched: a pickled checkpoint from the hub is never loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from edgekit.errors import SourceError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # org/name or name, as the hub spells them
# What fine-tuning reads: the config, a fast (or WordPiece) tokenizer and safetensors weights.
HUB_FILES = [
    "config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
]


def base_checkpoint(ref: str, flag: str = "--base-model") -> Path:
    """``ref`` as a local checkpoint folder: the folder itself, or the hub id's cached or downloaded snapshot."""
    path = Path(ref).expanduser()
    if path.exists():
        if not (path.is_dir() and (path / "config.json").is_file()):
            raise SourceError(
                f"{path} is not a Hugging Face checkpoint folder (no config.json). Pass {flag} with a folder "
                "written by `save_pretrained()`, or a hub id like bert-base-chinese."
            )
        return path.resolve()
    if ref.startswith((".", "/", "~")) or not _HUB_ID.match(ref):
        raise SourceError(f"The base model folder {ref} does not exist. Check the path given to {flag}.")
    return _hub_snapshot(ref, flag)


def _hub_snapshot(repo_id: str, flag: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    local = f"./{repo_id.split('/')[-1]}"  # "./": the folder, not the hub id of the same name
    how = (
        f"On a machine with network run `hf download {repo_id} --local-dir {local}` (older huggingface_hub: "
        f"`huggingface-cli download {repo_id} --local-dir {local}`), copy that folder here and pass "
        f"{flag} {local}"
    )
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_FILES))
    except LocalEntryNotFoundError:
        raise SourceError(
            f"The base model {repo_id} is not on this machine and could not be downloaded (no network, or "
            f"HF_HUB_OFFLINE is set). {how}."
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"Could not download the base model {repo_id}: {first}. {how}.") from None
    if not any(folder.glob("*.safetensors")) or not (folder / "config.json").is_file():
        raise SourceError(
            f"The hub repository {repo_id} has no config.json or no safetensors weights; edgekit does not load "
            f"pickled weights from the hub. Convert it where you trust it (`save_pretrained(folder)`) and pass "
            f"{flag} with that folder."
        )
    return folder


def hidden_layers(checkpoint: Path) -> int | None:
    """The encoder depth a checkpoint's config declares (``num_hidden_layers``), if it declares one."""
    try:
        value = json.loads((checkpoint / "config.json").read_text(encoding="utf-8")).get("num_hidden_layers")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None
