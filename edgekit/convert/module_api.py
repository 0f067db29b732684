"""Python API: convert an image classifier that is an ``nn.Module`` in memory.

    from edgekit.convert.module_api import convert_module
    result = convert_module(model, [3, 224, 224], ["cat", "dog"], out="artifacts/pets",
                            data="data/val", variants=["onnx-fp32", "ort-int8-static"])

The module goes through the same pipeline as a recipe's ``model: {factory: ...}``: export,
parity on real images through the runtime's pre-processing, variants, gate. ``preprocessing``
overrides the ImageNet defaults (resize to H/0.875, centre crop H x W, ImageNet mean/std).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.convert.image_sources import TASK, default_preprocessing, module_source
from edgekit.convert.pipeline import ConvertResult, convert
from edgekit.convert.recipe import build_recipe
from edgekit.progress import Reporter


def convert_module(
    module: Any,
    example_input_shape: list[int] | tuple[int, int, int],
    labels: list[str],
    out: str | Path,
    preprocessing: dict[str, Any] | None = None,
    data: str | Path | None = None,
    reporter: Reporter | None = None,
    name: str | None = None,
    **recipe_fields: Any,
) -> ConvertResult:
    """Convert ``module`` (``[C, H, W]`` inputs, ``labels`` in output order) into ``out``.

    ``recipe_fields``: any other recipe field (``variants``, ``target``, ``parity``, ``gate``, ``bench`` ...).
    """
    shape = [int(v) for v in example_input_shape]
    config = default_preprocessing(shape, preprocessing)
    title = name or type(module).__name__
    info = {"kind": "module", "name": title, "architecture": type(module).__name__}
    source = module_source(module, labels, config, info, tuple(shape))
    fields: dict[str, Any] = {"model": f"module:{title}", "task": TASK, "out": str(out), **recipe_fields}
    if data is not None:
        fields["data"] = {"path": str(data)}
    return convert(build_recipe(fields, origin="convert_module"), reporter, source=source)
