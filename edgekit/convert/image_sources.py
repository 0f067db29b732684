"""Load an image classifier for conversion: a PyTorch module from a factory, or a Hugging Face
``AutoModelForImageClassification`` folder with its image processor's settings.

Either way the result is a ``LoadedSource`` with ``tokenizer=None`` and ``preprocessing``: the
manifest's pre-processing (decode mode, resize, crop, rescale, mean/std), which the runtime's
``ImagePreprocessor`` applies on the device and which conversion itself uses for parity and
calibration, so the two cannot drift apart.

A factory source is a recipe mapping ``{factory: "pkg.mod:fn", weights: file, input: [3, H, W],
labels: [...]}``; the factory is the user's own code (importing it runs it, as running their
training script would), while the weights file is untrusted data: safetensors, or a PyTorch file
read with ``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgekit.artifact import sha256_file
from edgekit.convert.sources import LoadedSource, labels_from_config, resolve_reference
from edgekit.errors import SourceError

TASK = "image-classification"
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CROP_FRACTION = 0.875  # the usual ImageNet evaluation: resize to size/0.875, then crop the centre
_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}  # PIL.Image.Resampling values
_UNSUPPORTED_FLAGS = ("do_flip_channel_order", "do_pad", "do_reduce_labels")  # no runtime equivalent


class FactorySpec(BaseModel):
    """A recipe's ``model:`` mapping for a plain PyTorch module."""

    model_config = ConfigDict(extra="forbid")
    factory: str = Field(description="'package.module:function' (or ':Class.method') returning an nn.Module")
    arguments: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the factory")
    weights: Path | None = Field(None, description="state dict: .safetensors, or .pt/.pth read with weights_only")
    input: list[int] = Field(description="[channels, height, width] of one image, e.g. [3, 224, 224]")
    labels: list[str] = Field(min_length=1)
    preprocessing: dict[str, Any] = Field(default_factory=dict, description="overrides of the ImageNet defaults")

    @field_validator("factory")
    @classmethod
    def _factory_form(cls, value: str) -> str:
        module, _, attr = value.partition(":")
        if not module or not attr:
            raise ValueError(f"factory '{value}' must be 'package.module:function'")
        return value

    @field_validator("input")
    @classmethod
    def _chw(cls, value: list[int]) -> list[int]:
        if len(value) != 3 or value[0] not in (1, 3) or min(value) < 1:
            raise ValueError(f"input {value} must be [channels (1 or 3), height, width]")
        return value

    def __str__(self) -> str:  # progress lines and messages: the factory and the weights' name, not 1000 labels
        return self.factory + (f" ({Path(self.weights).name})" if self.weights is not None else "")

    def __fspath__(self) -> str:
        # What a factory source *is* on disk: its weights file. Code that treats a recipe's model
        # as a path (inputs of the run, the public source name) then sees the weights.
        return str(self.weights) if self.weights is not None else self.factory


def default_preprocessing(input_chw: list[int], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """ImageNet evaluation pre-processing for an input of ``[C, H, W]``, with the user's overrides."""
    channels, height, width = input_chw
    base: dict[str, Any] = {
        "type": "image",
        "color_mode": "RGB" if channels == 3 else "L",
        "resize": {"shortest_edge": round(min(height, width) / CROP_FRACTION)},
        "resample": "bilinear",
        "center_crop": {"height": height, "width": width},
        "rescale_factor": 1 / 255,
        "mean": IMAGENET_MEAN if channels == 3 else [0.5],
        "std": IMAGENET_STD if channels == 3 else [0.5],
        "layout": "NCHW",
        "max_image_pixels": 40_000_000,
        "max_image_bytes": 20_000_000,
    }
    return {**base, **(overrides or {})}


def input_size(preprocessing: dict[str, Any]) -> tuple[int, int, int]:
    """(C, H, W) of the model input the pre-processing produces; it must be a fixed size."""
    channels = 3 if preprocessing["color_mode"] == "RGB" else 1
    crop, resize = preprocessing.get("center_crop"), preprocessing.get("resize") or {}
    size = crop or (resize if "height" in resize else None)
    if size is None:
        raise SourceError(
            "The pre-processing gives images of varying size (resize by shortest edge, no crop); the model needs "
            "one size. Add `center_crop: {height: H, width: W}` or resize to an exact {height, width}."
        )
    return channels, int(size["height"]), int(size["width"])


def load_weights(path: Path) -> dict[str, Any]:
    """A state dict from safetensors or a PyTorch file; pickled code is refused."""
    import pickle

    import torch

    if not path.is_file():
        raise SourceError(f"Weights file {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SourceError(
            f"{path} holds pickled objects that edgekit refuses to load (unpickling can run code): "
            f"{str(exc).splitlines()[0]}. Save only the weights, `torch.save(model.state_dict(), file)` "
            "or safetensors' `save_file`, where you trust the file."
        ) from None
    except Exception as exc:  # torch and safetensors raise many types for damaged files
        raise SourceError(f"Could not read weights from {path} ({type(exc).__name__}: {exc}). Re-save them.") from None
    for key in ("state_dict", "model_state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SourceError(f"{path} is not a state dict (name -> tensor). Save `model.state_dict()`.")
    return state


def _call_factory(spec: FactorySpec) -> Any:
    import torch

    module_name, _, attr = spec.factory.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
        model = target(**spec.arguments)
    except (ImportError, AttributeError) as exc:
        raise SourceError(f"Could not find the model factory '{spec.factory}': {exc}. Check the module path.") from None
    except Exception as exc:  # the user's own code
        raise SourceError(f"The model factory '{spec.factory}' failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise SourceError(f"The factory '{spec.factory}' returned {type(model).__name__}, not a torch.nn.Module.")
    return model


def load_factory_source(spec: FactorySpec, record_path: bool = False) -> LoadedSource:
    model = _call_factory(spec)
    info: dict[str, Any] = {"kind": "module", "factory": spec.factory, "architecture": type(model).__name__}
    if spec.weights is not None:
        weights = Path(spec.weights).expanduser()
        state = load_weights(weights)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise SourceError(f"{weights.name} does not fit the factory's model: {str(exc).splitlines()[0]}") from None
        info.update(name=weights.resolve().name, weights_files=[weights.name], weights_sha256=sha256_file(weights))
        if record_path:
            info["path"] = str(weights.resolve())
    preprocessing = default_preprocessing(spec.input, spec.preprocessing)
    return module_source(model, spec.labels, preprocessing, info, tuple(spec.input))


def module_source(
    model: Any, labels: list[str], preprocessing: dict[str, Any], info: dict[str, Any] | None = None,
    input_chw: tuple[int, ...] | None = None,
) -> LoadedSource:  # fmt: skip
    """A ``LoadedSource`` from an ``nn.Module`` in memory (the Python API)."""
    if input_chw is not None and input_size(preprocessing) != tuple(input_chw):
        raise SourceError(
            f"The pre-processing makes {list(input_size(preprocessing))} inputs, but the model takes "
            f"{list(input_chw)}. Make `center_crop` (or an exact `resize`) match `input`."
        )
    model.eval()
    info = info or {"kind": "module", "architecture": type(model).__name__}
    return LoadedSource(model, None, list(labels), TASK, info, None, preprocessing=preprocessing)


def processor_preprocessing(processor: Any, channels: int = 3) -> dict[str, Any]:
    """The manifest's ``preprocessing`` from a transformers image processor's settings."""
    name = type(processor).__name__
    for flag in _UNSUPPORTED_FLAGS:
        if getattr(processor, flag, False):
            raise SourceError(f"{name} sets {flag}, which the edgekit image runtime does not do; it cannot match.")
    size = dict(getattr(processor, "size", None) or {})
    crop_pct = getattr(processor, "crop_pct", None)
    resize: dict[str, int] | None = None
    crop = None
    if not getattr(processor, "do_resize", True):
        raise SourceError(f"{name} does not resize; edgekit needs one input size. Set do_resize in its config.")
    if "height" in size and "width" in size:
        resize = {"height": int(size["height"]), "width": int(size["width"])}
    elif set(size) == {"shortest_edge"} and crop_pct is not None and "ConvNext" in name:
        edge = int(size["shortest_edge"])  # ConvNeXt: below 384 resize to edge/crop_pct, then crop
        if edge < 384:
            resize, crop = {"shortest_edge": int(edge / crop_pct)}, {"height": edge, "width": edge}
        else:
            resize = {"height": edge, "width": edge}
    elif set(size) == {"shortest_edge"}:
        resize = {"shortest_edge": int(size["shortest_edge"])}
    else:
        raise SourceError(f"{name} resizes with {size}, which the edgekit image runtime does not support.")
    if getattr(processor, "do_center_crop", False) and crop is None:
        crop_size = dict(getattr(processor, "crop_size", None) or {})
        crop = {"height": int(crop_size["height"]), "width": int(crop_size["width"])}
    normalize = getattr(processor, "do_normalize", False)
    mean = getattr(processor, "image_mean", None) or IMAGENET_MEAN
    std = getattr(processor, "image_std", None) or IMAGENET_STD
    return {
        "type": "image",
        "color_mode": "RGB" if channels == 3 else "L",
        "resize": resize,
        "resample": _RESAMPLE.get(int(getattr(processor, "resample", 2)), "bilinear"),
        "center_crop": crop,
        "rescale_factor": float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0,
        "mean": [float(v) for v in mean][:channels] if normalize else [0.0] * channels,
        "std": [float(v) for v in std][:channels] if normalize else [1.0] * channels,
        "layout": "NCHW",
        "max_image_pixels": 40_000_000,
        "max_image_bytes": 20_000_000,
    }


def load_hf_image_classifier(
    ref: str, revision: str | None = None, trust_remote_code: bool = False, record_path: bool = False
) -> LoadedSource:
    """An ``AutoModelForImageClassification`` folder (or hub id) and its image processor's settings."""
    import transformers

    from edgekit.convert.sources import _LOAD_ERRORS, _load_failure

    location, info = resolve_reference(ref, record_path)
    if revision:
        info["revision"] = revision
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        config = transformers.AutoConfig.from_pretrained(location, **kwargs)
    except (OSError, ValueError) as exc:
        raise SourceError(f"Could not load a model config from '{ref}': {exc}") from None
    architectures = config.architectures or []
    if not any(a.endswith("ForImageClassification") for a in architectures):
        raise SourceError(
            f"'{ref}' is a {', '.join(architectures) or 'model'} checkpoint without an image-classification head. "
            "Fine-tune it for image classification first, or convert it as a text model (task: text-classification)."
        )
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(location, **kwargs)
    except _LOAD_ERRORS as exc:
        raise SourceError(
            f"'{ref}' has no usable image processor config (preprocessor_config.json): {exc}. Save one next to "
            "the model: `AutoImageProcessor.from_pretrained(base).save_pretrained(folder)`."
        ) from None
    try:
        model = transformers.AutoModelForImageClassification.from_pretrained(location, **kwargs)
    except _LOAD_ERRORS as exc:
        raise _load_failure(ref, exc) from None
    model.eval()
    info["architecture"] = architectures[0]
    preprocessing = processor_preprocessing(processor, int(getattr(config, "num_channels", 3)))
    source = module_source(model, labels_from_config(config), preprocessing, info)
    source.location = location
    return source


def image_logits(model: Any, pixel_values: Any) -> Any:
    """Logits of an HF image classifier (``.logits``) or a plain module (a tensor, or its first output)."""
    output = model(pixel_values)
    if hasattr(output, "logits"):
        return output.logits
    return output[0] if isinstance(output, (tuple, list)) else output


def describe_model(model: Any) -> dict[str, Any]:
    """Where a recipe's model comes from and its weights' sha256, without loading it (reuse checks)."""
    if isinstance(model, FactorySpec):
        info: dict[str, Any] = {"kind": "module", "factory": model.factory}
        if model.weights is not None and Path(model.weights).is_file():
            info["weights_sha256"] = sha256_file(Path(model.weights))
        return info
    return resolve_reference(model)[1]
