"""The manifest fields that belong to one task, validated by task name.

``text-classification``: int64 token inputs and a ``tokenizer``. ``image-classification``: one
float32 ``pixel_values`` input (NCHW) and ``preprocessing`` (decode, resize, crop, normalize).
A task not listed here gets only the generic checks of ``manifest.py`` (plus these two
objects when present): the runtime refuses tasks it cannot run anyway. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgekit.artifact.checks import _bad, _is_int, _is_number, _is_str, _require, check_relative_path

TEXT_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # the only inputs a tokenizer feeds
IMAGE_INPUT_NAME = "pixel_values"
MAX_LENGTH_LIMIT = 1 << 20  # tokens; far above any model, and small enough for `tokenizers` (usize)
_U32 = 1 << 32  # tokenizers takes pad_id as an unsigned 32-bit id

COLOR_MODES = {"RGB": 3, "L": 1}  # Pillow mode -> channels of the model input
RESAMPLE = ("nearest", "bilinear", "bicubic", "lanczos")  # Pillow filters, by their lower-case names
MAX_SIDE = 16384  # pixels per side of a resize or crop; far above any classifier's input
MAX_IMAGE_PIXELS_LIMIT = 1 << 30  # what a manifest may allow per decoded image (4 GiB as RGBA)
MAX_IMAGE_BYTES_LIMIT = 1 << 30  # what a manifest may allow per encoded image
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000  # used when the manifest does not say
DEFAULT_MAX_IMAGE_BYTES = 20_000_000
_VALUE_LIMIT = 1e6  # |mean|, std and rescale_factor: any real normalisation is far inside


def _check_tensor_names(specs: list[dict[str, Any]], names: tuple[str, ...], dtype: str) -> None:
    for index, spec in enumerate(specs):
        if spec["name"] not in names or spec["dtype"] != dtype:
            raise _bad(f"`inputs[{index}].name`/`dtype`", f"a {dtype} input named one of {', '.join(names)}", spec)


def check_tokenizer(tokenizer: Any) -> None:
    if not isinstance(tokenizer, dict):
        raise _bad("`tokenizer`", "an object with file, max_length, pad_id and pad_token", tokenizer)
    check_relative_path(_require(tokenizer, "file", _is_str, "a relative path", "tokenizer."), "`tokenizer.file`")
    _require(tokenizer, "max_length", lambda v: _is_int(v) and 0 < v <= MAX_LENGTH_LIMIT,
             f"a positive integer (at most {MAX_LENGTH_LIMIT})", "tokenizer.")  # fmt: skip
    _require(tokenizer, "pad_id", lambda v: _is_int(v) and 0 <= v < _U32, "a token id (integer >= 0)", "tokenizer.")
    _require(tokenizer, "pad_token", lambda v: isinstance(v, str), "a string", "tokenizer.")
    side = tokenizer.get("truncation_side", "right")
    if side not in ("left", "right"):
        raise _bad("`tokenizer.truncation_side`", "'left' or 'right'", side)


def _is_side(value: Any) -> bool:
    return _is_int(value) and 0 < value <= MAX_SIDE


def _check_size(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, int]:
    expected = "an object {" + ", ".join(keys) + "}" + f" of positive integers (at most {MAX_SIDE})"
    if not isinstance(value, dict) or set(value) != set(keys):
        raise _bad(f"`{where}`", expected, value)
    for key in keys:
        _require(value, key, _is_side, f"a positive integer (at most {MAX_SIDE})", f"{where}.")
    return value


def _check_geometry(pre: dict[str, Any]) -> None:
    resize = pre.get("resize")
    if isinstance(resize, dict) and "shortest_edge" in resize:
        resize = _check_size(resize, "preprocessing.resize", ("shortest_edge",))
    else:
        resize = _check_size(resize, "preprocessing.resize", ("height", "width"))
    crop = pre.get("center_crop")
    if crop is None:
        if "shortest_edge" in resize:  # the size would follow each image's aspect ratio: no batch shape
            raise _bad("`preprocessing.center_crop`", "an object {height, width} when resize is shortest_edge", crop)
        return
    crop = _check_size(crop, "preprocessing.center_crop", ("height", "width"))
    limit = (resize["shortest_edge"],) * 2 if "shortest_edge" in resize else (resize["height"], resize["width"])
    if crop["height"] > limit[0] or crop["width"] > limit[1]:
        raise _bad("`preprocessing.center_crop`", f"no larger than the resized image ({limit[0]}x{limit[1]})", crop)


def _check_normalisation(pre: dict[str, Any], channels: int) -> None:
    _require(pre, "rescale_factor", lambda v: _is_number(v) and 0 < v <= _VALUE_LIMIT,
             f"a positive number (at most {_VALUE_LIMIT:g})", "preprocessing.")  # fmt: skip
    for key, low in (("mean", -_VALUE_LIMIT), ("std", 0.0)):
        value = pre.get(key)
        valid = isinstance(value, list) and len(value) == channels
        if not valid or not all(_is_number(v) and low <= v <= _VALUE_LIMIT and (key == "mean" or v > 0) for v in value):
            what = "finite numbers" if key == "mean" else "positive numbers"
            raise _bad(f"`preprocessing.{key}`", f"a list of {channels} {what} (one per channel)", value)


def check_preprocessing(pre: Any) -> None:
    """Every field the image pre-processor reads, with its type and range (one ``ArtifactError`` otherwise)."""
    if not isinstance(pre, dict):
        raise _bad("`preprocessing`", "an object (type, color_mode, resize, resample, center_crop, mean, std ...)", pre)
    if pre.get("type") != "image":
        raise _bad("`preprocessing.type`", "'image'", pre.get("type"))
    mode = pre.get("color_mode")
    if mode not in COLOR_MODES:
        raise _bad("`preprocessing.color_mode`", f"one of {', '.join(COLOR_MODES)}", mode)
    if pre.get("resample") not in RESAMPLE:
        raise _bad("`preprocessing.resample`", f"one of {', '.join(RESAMPLE)}", pre.get("resample"))
    if pre.get("layout", "NCHW") != "NCHW":
        raise _bad("`preprocessing.layout`", "'NCHW'", pre.get("layout"))
    _check_geometry(pre)
    _check_normalisation(pre, COLOR_MODES[mode])
    for key, limit in (("max_image_pixels", MAX_IMAGE_PIXELS_LIMIT), ("max_image_bytes", MAX_IMAGE_BYTES_LIMIT)):
        value = pre.get(key, 1)
        if not (_is_int(value) and 0 < value <= limit):
            raise _bad(f"`preprocessing.{key}`", f"a positive integer (at most {limit:,})", value)


def image_input_shape(pre: dict[str, Any]) -> tuple[int, int, int]:
    """(channels, height, width) of one pre-processed image; ``pre`` passed ``check_preprocessing``."""
    crop, resize = pre.get("center_crop"), pre["resize"]
    size = crop if crop is not None else resize
    return COLOR_MODES[pre["color_mode"]], size["height"], size["width"]


def _check_text(data: dict[str, Any]) -> None:
    _check_tensor_names(data["inputs"], TEXT_INPUT_NAMES, "int64")
    check_tokenizer(data.get("tokenizer"))


def _check_image(data: dict[str, Any]) -> None:
    inputs = data["inputs"]
    expected = f"one float32 input named {IMAGE_INPUT_NAME} of shape [batch, channels, height, width]"
    if len(inputs) != 1 or len(inputs[0]["shape"]) != 4:
        raise _bad("`inputs`", expected, inputs)
    _check_tensor_names(inputs, (IMAGE_INPUT_NAME,), "float32")
    check_preprocessing(data.get("preprocessing"))
    want = image_input_shape(data["preprocessing"])
    for axis, (have, size) in enumerate(zip(inputs[0]["shape"][1:], want, strict=True), start=1):
        if _is_int(have) and have not in (0, size):  # 0: an axis the exporter could not size
            raise _bad(f"`inputs[0].shape[{axis}]`", f"{size} (what `preprocessing` produces) or a name", have)


TASK_FIELDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "text-classification": _check_text,
    "image-classification": _check_image,
}


def check_task_fields(data: dict[str, Any]) -> None:
    """The checks of ``data["task"]``; for another task, only the objects that are present."""
    check = TASK_FIELDS.get(data["task"])
    if check is not None:
        check(data)
    if data.get("tokenizer") is not None:
        check_tokenizer(data["tokenizer"])  # required_files reads its `file`
    if data.get("preprocessing") is not None:
        check_preprocessing(data["preprocessing"])


def task_files(data: dict[str, Any]) -> list[str]:
    """Files the task's pre-processing opens by name (validated data)."""
    tokenizer = data.get("tokenizer")
    return [tokenizer["file"]] if isinstance(tokenizer, dict) else []
