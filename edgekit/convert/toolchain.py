"""The versions of the libraries that build an artifact (its manifest's ``toolchain``).

They are recorded in every manifest and hashed into the recipe's reuse key
(``Recipe.content_hash``): another torch, exporter or quantizer may write a different graph
for the same recipe and weights, so an upgrade must rebuild rather than reuse stale output.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
from collections.abc import Iterable

# What every conversion may run: the export (torch, transformers, optimum, onnx), the tokenizer
# file, the quantizers (onnxruntime, nncf), OpenVINO's converter, numpy (calibration statistics).
# Installed ones are recorded even when a recipe does not use them: an unused library costs only
# a rebuild on upgrade, while a missed one would let stale output be reused.
CONVERSION_LIBRARIES = (
    "torch", "transformers", "tokenizers", "optimum", "optimum-onnx", "onnx", "onnxscript",
    "onnxruntime", "openvino", "nncf", "numpy",
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def installed_version(name: str) -> str | None:
    """The installed version of a distribution, or of the one that provides module ``name``
    (``onnxruntime`` may come from ``onnxruntime-gpu``); ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    for distribution in _module_distributions().get(name.replace("-", "_"), []):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def variant_libraries(variant_names: Iterable[str]) -> list[str]:
    """The modules the variants build with beyond the common set (executorch, coremltools, plug-ins)."""
    from edgekit.convert.variants import get_variant
    from edgekit.runtime.engines import ENGINES

    modules: list[str] = []
    for name in variant_names:
        kind = get_variant(name)
        spec = ENGINES.get(kind.engine)
        modules += ([spec.module] if spec is not None else []) + list(kind.build_modules())
    return modules


def toolchain(variant_names: Iterable[str] = ()) -> dict[str, str]:
    """``{"python": ..., library: version}`` for the installed conversion libraries, sorted by name."""
    names = dict.fromkeys([*CONVERSION_LIBRARIES, *variant_libraries(variant_names)])
    versions = {name: version for name in names if (version := installed_version(name)) is not None}
    return {"python": platform.python_version(), **dict(sorted(versions.items()))}
