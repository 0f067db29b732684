"""A tiny image-classification artifact built in the test run (tiny CNN -> ONNX -> manifest -> seal),
and a two-class image folder with a tiny-CNN convert recipe for the INT8 option tests.

Shared by the image runtime, image serving and image INT8 tests. The CNN has random weights: its answers
mean nothing; the tests use it for behaviour, shapes and equality of pre-processing.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_LABELS = ["cat", "dog", "bird"]
SIDE = 16  # the model's input height and width


def image_preprocessing(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "type": "image", "color_mode": "RGB", "resize": {"shortest_edge": 20}, "resample": "bilinear",
        "center_crop": {"height": SIDE, "width": SIDE}, "rescale_factor": 1 / 255,
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "layout": "NCHW",
        "max_image_pixels": 4_000_000, "max_image_bytes": 2_000_000,
    }  # fmt: skip
    config.update(overrides)
    return config


def image_manifest_dict(**overrides: Any) -> dict[str, Any]:
    """The manifest fields of an image artifact (``files`` left to seal)."""
    document = {
        "task": "image-classification", "labels": list(IMAGE_LABELS), "engine": "onnxruntime",
        "precision": "fp32", "model_file": "model.onnx",
        "inputs": [{"name": "pixel_values", "dtype": "float32", "shape": ["batch", 3, SIDE, SIDE]}],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", len(IMAGE_LABELS)]}],
        "tokenizer": None, "source": {"kind": "test"}, "recipe_hash": "0" * 64, "edgekit_version": "test",
        "preprocessing": image_preprocessing(), "batch_invariant": True, "format_version": 1,
    }  # fmt: skip
    document.update(overrides)
    return document


def export_tiny_cnn(path: Path, seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, len(IMAGE_LABELS)),
    ).eval()  # fmt: skip
    example = torch.randn(2, 3, SIDE, SIDE)
    torch.onnx.export(
        model, (example,), str(path), dynamo=True, input_names=["pixel_values"], output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False, verbose=False,
    )  # fmt: skip


def build_image_artifact(directory: Path, **overrides: Any) -> Path:
    from edgekit.artifact import Manifest
    from edgekit.outputs import atomic_directory, seal

    with atomic_directory(directory) as staging:
        export_tiny_cnn(staging / "model.onnx")
        seal(staging, Manifest.from_dict({**image_manifest_dict(**overrides), "files": {"model.onnx": "0" * 64}}))
    return directory


def photo(height: int = 30, width: int = 40, seed: int = 0) -> np.ndarray:
    """A smooth, deterministic RGB picture (uint8 HxWx3): gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    channels = [(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), ((x + y) * 7) % 256]
    pixels = np.stack(channels, axis=-1) + rng.integers(0, 20, size=(height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, fmt: str = "PNG", **params: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **params)
    return buffer.getvalue()


TWO_LABELS = ["dark", "light"]
RECIPE_SIDE = 24  # the tiny CNN's input in tiny_cnn_recipe


def two_class_images(root: Path, per_class: int = 5) -> Path:
    """A class folder per label: grey noise, dark or light, seeded."""
    from PIL import Image

    rng = np.random.default_rng(3)
    for k, label in enumerate(TWO_LABELS):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (30, 28, 1)) + 120 * k
            Image.fromarray(pixels.astype(np.uint8)[..., 0], "L").save(root / label / f"{i}.png")
    return root


def tiny_cnn_recipe(out: Path, data: Path, variants: list, bench: bool = False) -> dict[str, Any]:
    """A convert recipe for edgekit's tiny MobileNet-like factory module on ``two_class_images``."""
    spec = {"factory": "edgekit.demo.cnn:tiny_mobilenet", "arguments": {"num_classes": 2, "in_channels": 3,
            "width": 8}, "input": [3, RECIPE_SIDE, RECIPE_SIDE], "labels": TWO_LABELS}  # fmt: skip
    return {"model": spec, "task": "image-classification", "out": str(out), "data": {"path": str(data)},
            "variants": variants, "bench": {"enabled": bench, "runs": 10, "warmup": 1, "rounds": 1},
            "gate": {"max_accuracy_drop": 100.0, "samples": 10}, "parity": {"samples": 4},
            "quantization": {"calibration": {"samples": 6}}}  # fmt: skip
