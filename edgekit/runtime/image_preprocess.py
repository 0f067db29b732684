"""Image pre-processing for the runtime: decode, orient, convert, resize, crop, normalize (Pillow + numpy).

The one implementation of an image artifact's ``preprocessing`` (docs/artifact-format.md):
conversion (parity, calibration, evaluation) and training make their tensors with it too, so
what the model saw when it was checked is what it sees on the device. Decisions, each the same
everywhere this class is used:

- **Bounds per call**: an encoded image over ``max_image_bytes`` is refused before it is
  parsed, and one whose header claims over ``max_image_pixels`` before its pixels are decoded
  (decompression bombs). Pillow's own global ``Image.MAX_IMAGE_PIXELS`` is left alone (it is
  process-wide) and still refuses anything over twice its value as a second line.
- **EXIF orientation is applied** (as ``ImageOps.exif_transpose`` does, and as
  ``transformers.image_utils.load_image`` does): a phone photo is classified upright.
- **Formats**: PNG, JPEG, GIF, WebP, BMP, TIFF, PPM only (``FORMATS``): no EPS (Ghostscript).
- **Animated images** (GIF, APNG, WebP): the first frame, as a still image viewer shows.
- **Modes**: 8-bit modes (1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr ...) are converted to the
  manifest's ``color_mode`` with Pillow's ``convert`` (alpha is dropped, not composited, as
  Hugging Face's ``convert_rgb`` does). 16- and 32-bit integer and float modes are refused:
  Pillow's conversion would clip them to garbage.
- **Geometry** as Hugging Face image processors compute it: ``shortest_edge`` keeps the aspect
  ratio with the long side truncated (``int(s * long / short)``); the centre crop's offsets
  are floored; resizing is Pillow's ``resize`` of the 8-bit image with the named filter.
"""

from __future__ import annotations

import importlib
import io
import os
import stat
from collections.abc import Iterable, Mapping, Set
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from edgekit.artifact.task_fields import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    IMAGE_INPUT_NAME,
    check_preprocessing,
    image_input_shape,
)
from edgekit.errors import ArtifactError, InputError

ImageInput = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray
VALUES_PER_UNIT = 1024  # one unit of `size()` (what max_batch_tokens counts for images): 1024 input values
_FILTERS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}  # fmt: skip
_EIGHT_BIT = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # fmt: skip
_PASS = "pass a file path, the encoded bytes, a PIL image or an HxWxC uint8 array"
# The formats Pillow may parse. Others stay off: EPS hands the file to Ghostscript, and rare
# decoders are attack surface no photo or camera needs. JPEG includes phones' multi-picture (MPO) files.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "PPM")
for _plugin in ("TiffImagePlugin", "WebPImagePlugin"):  # Pillow registers only a few at first
    importlib.import_module(f"PIL.{_plugin}")


class ImagePreprocessor:
    """Turns images into the float32 NCHW ``pixel_values`` an image artifact's model expects."""

    probe_input = np.full((32, 32, 3), 128, dtype=np.uint8)  # converts to any colour mode: the load-time probe
    window_chunks = 1  # predict_batch decodes one chunk of images at a time (all one size: nothing to sort)

    def __init__(self, config: dict[str, Any]):
        check_preprocessing(config)  # the same checks as a manifest's: a bad config fails here, not mid-batch
        self.config = dict(config)
        self.color_mode: str = config["color_mode"]
        self.channels, self.height, self.width = image_input_shape(config)
        self._resize: dict[str, int] = dict(config["resize"])
        self._crop: dict[str, int] | None = config.get("center_crop")
        self._filter = _FILTERS[config["resample"]]
        self._scale = np.float32(config["rescale_factor"])
        self._mean = np.asarray(config["mean"], dtype=np.float32)
        self._std = np.asarray(config["std"], dtype=np.float32)
        self.max_pixels = int(config.get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS))
        self.max_bytes = int(config.get("max_image_bytes", DEFAULT_MAX_IMAGE_BYTES))

    @classmethod
    def from_config(cls, preprocessing: dict[str, Any]) -> ImagePreprocessor:
        """From a manifest's ``preprocessing`` object, before an artifact exists (conversion, training)."""
        return cls(preprocessing)

    @classmethod
    def for_artifact(cls, root: Path, manifest: Any) -> ImagePreprocessor:
        """The pre-processing an artifact's manifest describes (``manifest``: artifact.Manifest)."""
        if manifest.preprocessing is None:
            raise ArtifactError(
                f"manifest.json of {root} has no `preprocessing`, which an {manifest.task} artifact needs; "
                "re-export the artifact with `edgekit convert`."
            )
        return cls(manifest.preprocessing)

    def __call__(self, images: list[Any]) -> dict[str, np.ndarray]:
        """The model's feed for ``images`` (checked inputs) as one batch."""
        return self.collate(self.encode(images))

    # -- raw input checks (cheap: types, shapes, sizes; decoding happens in encode) --------

    def check_one(self, image: object, index: int = 0) -> Any:
        if isinstance(image, Image.Image):
            self._check_pixels(image.size, index)
            self._check_mode(image.mode, index)
        elif isinstance(image, np.ndarray):
            self._check_array(image, index)
        elif isinstance(image, bytes | bytearray | memoryview):
            self._check_bytes(memoryview(image).nbytes, index)
        elif isinstance(image, str | os.PathLike):
            if not os.fspath(image):
                raise InputError(f"Input {index} is an empty path; {_PASS}.")
        else:
            raise InputError(f"Input {index} is a {type(image).__name__}, not an image; {_PASS}.")
        return image

    def check(self, images: object) -> list[Any]:
        """The caller's batch as a list of checked inputs, in the caller's order."""
        single = isinstance(images, str | bytes | bytearray | memoryview | os.PathLike | Image.Image)
        if single or (isinstance(images, np.ndarray) and images.ndim != 4):
            raise InputError("predict_batch takes a list of images (or an NxHxWxC array); for one call predict(image).")
        if isinstance(images, Mapping | Set):
            raise InputError(f"predict_batch got a {type(images).__name__}; pass a list of images, in order.")
        if not isinstance(images, Iterable):
            raise InputError(f"predict_batch takes a list of images, not a {type(images).__name__}.")
        batch = list(images)
        if not batch:
            raise InputError("predict_batch got an empty list; pass at least one image.")
        for index, image in enumerate(batch):
            self.check_one(image, index)
        return batch

    def _check_pixels(self, size: tuple[int, int], index: int) -> None:
        width, height = size
        if width < 1 or height < 1:
            raise InputError(f"Input {index} is an empty image ({width}x{height} pixels); pass a real picture.")
        if width * height > self.max_pixels:
            raise InputError(
                f"Input {index} is {width}x{height} = {width * height:,} pixels; this model takes at most "
                f"{self.max_pixels:,} (max_image_pixels) so that a small file cannot expand to gigabytes. "
                "Downscale the image first."
            )

    def _check_bytes(self, count: int, index: int) -> None:
        if count == 0:
            raise InputError(f"Input {index} is empty (0 bytes); pass an encoded image such as a PNG or JPEG file.")
        if count > self.max_bytes:
            raise InputError(
                f"Input {index} is {count:,} bytes; this model takes encoded images of at most {self.max_bytes:,} "
                "bytes (max_image_bytes). Re-encode or downscale it."
            )

    @staticmethod
    def _check_mode(mode: str, index: int) -> None:
        if mode not in _EIGHT_BIT:
            raise InputError(
                f"Input {index} has Pillow mode {mode!r} (16/32-bit integer or float pixels), which cannot be "
                "converted without losing its values; convert it to 8 bits per channel (e.g. RGB) first."
            )

    def _check_array(self, array: np.ndarray, index: int) -> None:
        if array.dtype != np.uint8:
            raise InputError(
                f"Input {index} is an array of {array.dtype}; pass uint8 pixels (0-255), e.g. "
                "np.clip(x * 255, 0, 255).astype(np.uint8) for floats in 0-1."
            )
        if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))):
            raise InputError(
                f"Input {index} is an array of shape {array.shape}; pass HxWxC with C = 1, 3 or 4 (RGB, RGBA) "
                "or HxW (grey), channels last."
            )
        self._check_pixels((array.shape[1], array.shape[0]), index)

    # -- decoding ---------------------------------------------------------------------------

    def decode(self, image: Any, index: int = 0) -> Image.Image:
        """One input as an upright Pillow image in ``color_mode`` (InputError when it is unusable)."""
        self.check_one(image, index)  # again: conversion code may call encode with unchecked inputs
        if isinstance(image, np.ndarray):  # uint8 HxW, HxWx1 -> L; HxWx3 -> RGB; HxWx4 -> RGBA
            pixels = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
            picture = Image.fromarray(np.ascontiguousarray(pixels))
        elif isinstance(image, Image.Image):
            picture = image
        else:
            data = image if isinstance(image, bytes | bytearray | memoryview) else self._read_file(image, index)
            picture = self._open(bytes(data), index)
        try:  # EXIF and conversion of a damaged file fail inside Pillow in many ways: all mean "unusable"
            method = _TRANSPOSE.get(picture.getexif().get(ExifTags.Base.Orientation, 1))
            if method is not None:
                picture = picture.transpose(method)
            return picture if picture.mode == self.color_mode else picture.convert(self.color_mode)
        except Exception as exc:
            raise InputError(f"Input {index} could not be decoded ({type(exc).__name__}: {exc}); {_PASS}.") from None

    def _read_file(self, path: str | os.PathLike, index: int) -> bytes:
        """A file's bytes, at most ``max_bytes`` read: a path is the app's own (the server never takes one)."""
        try:
            with open(path, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise InputError(f"Input {index} ({os.fspath(path)!r}) is not a regular file; {_PASS}.")
                self._check_bytes(info.st_size, index)
                data = handle.read(self.max_bytes + 1)  # the file may have grown since fstat
        except (OSError, ValueError) as exc:  # missing, a folder, no permission, NUL in the name
            raise InputError(
                f"Input {index}: cannot read the image file {os.fspath(path)!r} ({exc}); {_PASS}."
            ) from None
        self._check_bytes(len(data), index)
        return data

    def _open(self, data: bytes, index: int) -> Image.Image:
        self._check_bytes(len(data), index)
        try:
            picture = Image.open(io.BytesIO(data), formats=FORMATS)
        except Image.DecompressionBombError as exc:
            raise InputError(f"Input {index} is too large to decode safely ({exc}); downscale it first.") from None
        except UnidentifiedImageError:
            formats = ", ".join(FORMATS)
            raise InputError(
                f"Input {index} is not an image in a format this runtime reads ({formats}); {_PASS}."
            ) from None
        except Exception as exc:  # a header damaged in a way the format's plug-in trips over
            raise InputError(
                f"Input {index} is a truncated or damaged image file ({type(exc).__name__}: {exc}); "
                "send the whole file."
            ) from None
        self._check_pixels(picture.size, index)  # before a single pixel is decoded
        self._check_mode(picture.mode, index)
        try:
            picture.load()  # the first frame of an animation
        except Exception as exc:  # truncated data is OSError; other damage surfaces as other types
            raise InputError(
                f"Input {index} is truncated or damaged and cannot be decoded ({type(exc).__name__}: {exc}); "
                "send the whole file."
            ) from None
        return picture

    # -- geometry, collation ---------------------------------------------------------------

    def resize_and_crop(self, picture: Image.Image) -> np.ndarray:
        """The uint8 HxWxC pixels the model reads: resized with the manifest's filter, centre-cropped."""
        width, height = picture.size
        if "shortest_edge" in self._resize:
            edge = self._resize["shortest_edge"]
            size = (edge, int(edge * height / width)) if width <= height else (int(edge * width / height), edge)
        else:
            size = (self._resize["width"], self._resize["height"])
        size = (max(size[0], 1), max(size[1], 1))
        pixels = np.asarray(picture.resize(size, resample=self._filter, reducing_gap=None))
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if self._crop is not None:
            top = (pixels.shape[0] - self.height) // 2
            left = (pixels.shape[1] - self.width) // 2
            pixels = pixels[top : top + self.height, left : left + self.width]
        return pixels

    def encode(self, images: list[Any], first_index: int = 0) -> list[np.ndarray]:
        """Decoded, resized and cropped uint8 images (4x smaller than their float32 feed until collate)."""
        return [self.resize_and_crop(self.decode(image, first_index + i)) for i, image in enumerate(images)]

    @staticmethod
    def size(pixels: np.ndarray) -> int:
        """Input values of one image in units of 1024 (4 KiB of float32): what max_batch_tokens counts."""
        return -(-int(pixels.size) // VALUES_PER_UNIT)

    def collate(self, records: list[np.ndarray]) -> dict[str, np.ndarray]:
        """float32 NCHW: ``(pixel * rescale_factor - mean) / std`` per channel."""
        batch = np.stack(records).astype(np.float32)
        batch *= self._scale
        batch -= self._mean
        batch /= self._std
        return {IMAGE_INPUT_NAME: np.ascontiguousarray(batch.transpose(0, 3, 1, 2))}
