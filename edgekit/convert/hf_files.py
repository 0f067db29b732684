"""The Hugging Face files that let other tools open an edgekit text artifact as it is.

Optimum's ``ORTModelForSequenceClassification.from_pretrained(artifact)`` reads ``config.json``
(``model_type``, ``id2label``/``label2id``) and picks ``model.onnx`` by its standard name;
``AutoTokenizer.from_pretrained(artifact)`` reads ``tokenizer.json`` plus ``tokenizer_config.json``
and ``special_tokens_map.json``. edgekit's runtime opens none of them: they sit beside the model,
listed and hashed in the manifest like every other file (``seal`` hashes the whole folder).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
TOKENIZER_SIDE_FILES = ("tokenizer_config.json", "special_tokens_map.json")
HF_FILES = (CONFIG_FILE, *TOKENIZER_SIDE_FILES)  # tokenizer.json is the runtime's own, written by packaging


def write_hf_files(source: Any, staging: Path, labels: list[str], max_length: int) -> list[str]:
    """Write ``config.json`` and the tokenizer's side files into ``staging``; the names written.

    Only for a transformers model and tokenizer (a model without an HF config, an image factory
    module, has nothing another HF tool could read). The labels and max_length are the manifest's,
    so Optimum truncates and names classes exactly as edgekit does.
    """
    config = getattr(source.model, "config", None)
    if source.tokenizer is None or config is None or not hasattr(config, "to_dict"):
        return []
    document = config.to_dict()
    document.pop("_name_or_path", None)  # may be a path on the build machine
    document["id2label"] = {str(i): name for i, name in enumerate(labels)}
    document["label2id"] = {name: i for i, name in enumerate(labels)}
    (staging / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written = [CONFIG_FILE]
    with tempfile.TemporaryDirectory(prefix="edgekit-tokenizer-") as scratch:
        source.tokenizer.save_pretrained(scratch)  # in a scratch folder: only the side files are kept
        for name in TOKENIZER_SIDE_FILES:
            saved = Path(scratch) / name
            if not saved.is_file():
                continue
            if name == "tokenizer_config.json":
                settings = json.loads(saved.read_text(encoding="utf-8"))
                settings.pop("name_or_path", None)
                settings["model_max_length"] = max_length  # truncate where the runtime does
                saved.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            shutil.copyfile(saved, staging / name)
            written.append(name)
    return written


def copy_hf_files(reference_dir: Path, folder: Path, model_file: str) -> None:
    """An ONNX variant keeps the reference's HF files (the weights change, the config and tokenizer do not).

    Only ONNX graphs (``model.onnx``, the name Optimum looks for): phone formats (.ort, .pte,
    .mlpackage) and OpenVINO IR have no reader of these files, and stay as small as they were.
    """
    if not model_file.endswith(".onnx"):
        return
    for name in HF_FILES:
        if (reference_dir / name).is_file():
            shutil.copyfile(reference_dir / name, folder / name)
