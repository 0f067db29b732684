"""``image-classification``: a PyTorch module from a factory, or a Hugging Face
``AutoModelForImageClassification`` folder, on a folder of class folders or a CSV/JSONL list of
JPEG/PNG images. The second entry of the task registry.

Conversion produces every feed (parity, calibration) through the runtime's ``ImagePreprocessor``,
so what was checked is what a device runs.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.image_data import ImageDataset, read_image_dataset
from edgekit.tasks.registry import TaskSpec

NAME = "image-classification"

# Measured on EfficientNet-Lite0 (ImageNet weights), 96 real photo crops, this CPU (benchmarks/quantization_cnn.py,
# docs/stack-findings.md): QDQ on Conv alone kept 0.46 top-1 agreement with FP32 and no speed-up (30.3 vs 29.9 ms),
# because every Conv output is requantized over its pre-activation range; with every operator ORT fuses
# QLinearConv chains: 0.86-0.9 agreement at 17 ms. Listed explicitly so the recipe records what was quantized.
STATIC_OP_TYPES = ("Conv", "Gemm", "MatMul", "Add", "Mul", "Clip", "Relu", "Sigmoid", "GlobalAveragePool",
                   "AveragePool", "MaxPool", "Concat", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
                   "Resize", "Split")  # fmt: skip
# ort-int8-dynamic is left out: ConvInteger ran 7.7x slower than FP32 (232 vs 30 ms) at 0.61 agreement.
DEFAULT_VARIANTS = ("onnx-fp32", "ort-int8-static", "ov-fp32", "ov-int8")


# Parity for CNNs is relative to the logits' scale. PyTorch (oneDNN) and ONNX Runtime (MLAS) sum each
# convolution and the classifier's dot products in different orders and block sizes; float32 rounding
# (unit roundoff u = 2**-24 = 6e-8) then differs by about sqrt(n)·u of the summed magnitudes per layer
# (n = 3·3·C or 1280 terms), and ~50 layers compound it. EfficientNet-Lite0's ImageNet head gives logits of
# magnitude ~10-20: measured max |Δlogit| 1.8e-4 at 224 px, ~1e-5 of the scale, over the 1e-4 absolute
# default made for text heads (2 logits of magnitude ~3). A rounding difference scales with the logits; an
# export bug (wrong padding, resize, layout) moves them by 1e-2 of the scale or more. So the image check
# allows max(atol, PARITY_RTOL · max |reference logit|): ten times the measured rounding, a hundred times
# below a real bug.
PARITY_RTOL = 1e-4


def parity_tolerance(atol: float, reference_logits: np.ndarray) -> float:
    """The allowed max |Δlogit| for an image model: ``atol``, or relative to the logits' scale when larger."""
    scale = float(np.abs(reference_logits).max()) if np.size(reference_logits) else 0.0
    return max(atol, PARITY_RTOL * scale)


def read_dataset(spec: Any) -> ImageDataset:
    """A recipe's ``DataSpec``: a folder (class sub-folders) or a CSV/JSONL with ``image_column``, label."""
    return read_image_dataset(spec.path, spec.image_column, spec.label_column, spec.format)


def load_source(ref: Any, revision: str | None, trust_remote_code: bool, record_path: bool) -> Any:
    from edgekit.convert.image_sources import FactorySpec, load_factory_source, load_hf_image_classifier

    if isinstance(ref, FactorySpec):
        return load_factory_source(ref, record_path)
    return load_hf_image_classifier(str(ref), revision, trust_remote_code, record_path)


def calibration_feeds(reference_dir: Path, images: list[Any]) -> list[dict[str, np.ndarray]]:
    """One feed per image (batch of one), pre-processed by the runtime's ImagePreprocessor as a device will."""
    from edgekit.quantize.calibration import calibration_feeds as feeds  # it reads the artifact's task fields

    return feeds(reference_dir, images)


def probe_images() -> tuple[np.ndarray, ...]:
    """Deterministic photo-like RGB images (gradients, shapes, texture, noise) of several sizes
    and aspect ratios, for export and parity when the user gives no data. No network."""
    rng = np.random.default_rng(13)
    images = []
    for height, width in ((240, 320), (320, 240), (375, 500), (224, 224), (64, 96), (600, 450)):
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        base = np.stack([x / width, y / height, 1 - (x + y) / (width + height)], axis=-1) * 180
        centre, radius = (rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width), min(height, width) / 4
        disc = ((y - centre[0]) ** 2 + (x - centre[1]) ** 2) < radius**2
        base[disc] = rng.uniform(0, 255, 3)
        base += 30 * np.sin(x / rng.uniform(3, 12))[..., None]  # stripes: high frequencies resizing must keep
        base += rng.normal(0, 8, base.shape)
        images.append(np.clip(base, 0, 255).astype(np.uint8))
    return tuple(images)


JPEG_QUALITY = 95  # a camera app's or a photo library's save: invisible, yet it moves near-tie logits


def saved_as_jpeg(reference_dir: Path, images: Iterable[Any]) -> Iterator[bytes]:
    """Each input decoded as the runtime decodes it (same checks and limits) and saved as JPEG, in memory and
    one at a time (bounded memory for any evaluation set)."""
    from edgekit.artifact import read_manifest
    from edgekit.runtime.image_preprocess import ImagePreprocessor

    decoder = ImagePreprocessor.for_artifact(reference_dir, read_manifest(reference_dir))
    for index, image in enumerate(images):
        picture = decoder.decode(image, index)
        buffer = io.BytesIO()
        (picture if picture.mode in ("L", "RGB") else picture.convert("RGB")).save(
            buffer, format="JPEG", quality=JPEG_QUALITY
        )
        yield buffer.getvalue()


SPEC = TaskSpec(
    name=NAME,
    description="image classification (CNNs from a PyTorch factory, Hugging Face image classifiers)",
    load_source=load_source,
    read_dataset=read_dataset,
    probe_inputs=probe_images(),
    calibration_feeds=calibration_feeds,
    static_op_types=STATIC_OP_TYPES,
    default_variants=DEFAULT_VARIANTS,
    nncf_model_type=None,  # NNCF's default scheme: 0.82 vs 0.79 agreement with TRANSFORMER, same speed
    unnoticed_change=saved_as_jpeg,
    unnoticed_change_name=f"each image saved as JPEG (quality {JPEG_QUALITY})",
)
