"""Image classification, conversion half: sources (factory module, HF classifier), image datasets,
export, parity on images through the runtime's pre-processing, INT8 variants, hostile data.

The models are tiny and random (built from code or configs here); images are generated with
numpy + PIL, except where real photos are needed (scikit-learn's two sample photos).
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import DataError, SourceError

LABELS = ["round", "square"]
SIDE = 32

TINY_CNN = textwrap.dedent(
    """
    import torch

    def tiny_cnn(classes: int = 2):
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, classes),
        )
    """
)


def _picture(kind: str, seed: int, size: tuple[int, int] = (40, 52)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    height, width = size
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 4 % 256, y * 5 % 256, (x + y) * 3 % 256], axis=-1).astype(np.float32)
    cy, cx, r = height / 2 + rng.uniform(-4, 4), width / 2 + rng.uniform(-4, 4), rng.uniform(7, 12)
    mask = (y - cy) ** 2 + (x - cx) ** 2 < r**2 if kind == "round" else (abs(y - cy) < r) & (abs(x - cx) < r)
    pixels[mask] = rng.uniform(0, 255, 3)
    return np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)


def _image_folder(root: Path, per_class: int = 6) -> Path:
    from PIL import Image

    for label in LABELS:
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            fmt = "png" if i % 2 else "jpg"
            Image.fromarray(_picture(label, i + 10 * len(label), (36 + i, 48 - i))).save(root / label / f"{i}.{fmt}")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return _image_folder(tmp_path_factory.mktemp("image-data") / "shapes")


@pytest.fixture(scope="module")
def factory_dir(tmp_path_factory, images) -> Path:
    import sys

    import torch

    folder = tmp_path_factory.mktemp("factory")
    (folder / "edgekit_tiny_cnn.py").write_text(TINY_CNN)
    sys.path.insert(0, str(folder))
    from edgekit_tiny_cnn import tiny_cnn

    torch.save(tiny_cnn().state_dict(), folder / "tiny.pth")
    return folder


def _recipe(model, out: Path, data: Path, variants: list[str], task: str = "image-classification") -> dict:
    return {"model": model, "task": task, "out": str(out), "data": {"path": str(data)}, "variants": variants,
            "bench": {"enabled": False}, "gate": {"max_accuracy_drop": 100.0, "samples": 12},
            "parity": {"samples": 6}, "quantization": {"calibration": {"samples": 8}}}  # fmt: skip


def _factory_spec(folder: Path) -> dict:
    return {"factory": "edgekit_tiny_cnn:tiny_cnn", "weights": str(folder / "tiny.pth"), "input": [3, SIDE, SIDE],
            "labels": LABELS}  # fmt: skip


def test_factory_module_converts_end_to_end(tmp_path, factory_dir, images):
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.runtime import EdgeModel

    variants = ["onnx-fp32", "ort-int8-static", "ov-fp32", "ov-int8"]
    recipe = build_recipe(_recipe(_factory_spec(factory_dir), tmp_path / "out", images, variants))
    result = convert(recipe)
    summary = result.summary
    assert summary is not None and set(summary.built) == set(variants)
    reference = json.loads((tmp_path / "out" / "onnx-fp32" / "manifest.json").read_text())
    assert reference["parity"]["passed"] and reference["parity"]["max_abs_diff"] < 1e-4
    assert reference["tokenizer"] is None and reference["preprocessing"]["center_crop"] == {"height": 32, "width": 32}
    assert reference["inputs"][0]["shape"] == ["batch", 3, SIDE, SIDE]
    assert reference["source"]["weights_sha256"] and "tokenizer.json" not in reference["files"]
    ov = json.loads((tmp_path / "out" / summary.locations["ov-fp32"] / "manifest.json").read_text())
    assert ov["parity"]["passed"]
    static = json.loads((tmp_path / "out" / summary.locations["ort-int8-static"] / "manifest.json").read_text())
    assert "Conv" in static["metrics"]["build"]["op_types"]  # the image task's measured default, not MatMul-only
    floor = summary.gate["reference_under_change"]  # FP32 against itself with its images saved as JPEG
    assert floor["change"] == "each image saved as JPEG (quality 95)" and 0.0 < floor["agreement"] <= 1.0
    assert "top5_overlap" not in floor  # a 2-label head has no top-5
    from edgekit.convert.summary import markdown

    assert f"agreement {floor['agreement']:.4f}" in markdown(summary)
    picture = next((images / "round").glob("*.png"))
    for name in variants:
        prediction = EdgeModel.load(tmp_path / "out" / summary.locations[name]).predict(str(picture))
        assert prediction.label in LABELS
    again = convert(recipe)  # same recipe and weights: reused
    assert again.reused


def test_hf_image_classifier_converts_with_its_processor_settings(tmp_path, images):
    import transformers

    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.runtime import EdgeModel

    config = transformers.ConvNextConfig(num_channels=3, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2,
                                         image_size=SIDE, num_labels=2, id2label=dict(enumerate(LABELS)),
                                         label2id={v: i for i, v in enumerate(LABELS)})  # fmt: skip
    model = transformers.ConvNextForImageClassification(config).eval()
    processor = transformers.ConvNextImageProcessor(size={"shortest_edge": SIDE}, crop_pct=0.875)
    folder = tmp_path / "convnext"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    out = tmp_path / "artifact"
    result = convert(build_recipe(_recipe(str(folder), out, images, ["onnx-fp32"])))
    manifest = result.manifest
    assert manifest.parity["passed"] and manifest.labels == LABELS
    expected_resize = {"shortest_edge": int(SIDE / 0.875)}  # ConvNeXt below 384: resize to size/crop_pct, crop
    assert manifest.preprocessing["resize"] == expected_resize
    assert manifest.preprocessing["center_crop"] == {"height": SIDE, "width": SIDE}
    assert manifest.preprocessing["mean"] == processor.image_mean
    assert manifest.preprocessing["std"] == processor.image_std
    assert manifest.preprocessing["rescale_factor"] == processor.rescale_factor
    assert EdgeModel.load(out).predict(_picture("square", 3)).label in LABELS


def test_module_api_converts_an_nn_module(tmp_path, factory_dir, images):
    from edgekit_tiny_cnn import tiny_cnn

    from edgekit.convert.module_api import convert_module

    result = convert_module(tiny_cnn(), [3, SIDE, SIDE], LABELS, tmp_path / "api", data=images)
    assert result.manifest.parity["passed"] and result.manifest.source["kind"] == "module"


def _sample_photos():
    datasets = pytest.importorskip("sklearn.datasets")
    from PIL import Image

    return [Image.fromarray(a) for a in datasets.load_sample_images().images]  # china.jpg, flower.jpg: 427x640


@pytest.mark.parametrize(
    "processor_name, kwargs",
    [
        ("ViTImageProcessor", {"size": {"height": 224, "width": 224}}),
        ("ConvNextImageProcessor", {"size": {"shortest_edge": 224}, "crop_pct": 0.875}),
        ("CLIPImageProcessor", {"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}}),
    ],
)
def test_runtime_tensors_equal_the_hf_image_processor(processor_name, kwargs):
    """Real photos through HF's processor and through the runtime's pre-processing built from its
    settings. Both resize with Pillow on 8-bit pixels with the same geometry, so the only
    differences are float rounding in rescale/normalise (HF divides in float32 in another order):
    1e-4 on values of magnitude ~2 is far below one 8-bit step (1/255/0.225 = 0.017)."""
    import transformers

    from edgekit.convert.image_sources import processor_preprocessing
    from edgekit.runtime.image_preprocess import ImagePreprocessor

    processor = getattr(transformers, processor_name)(**kwargs)
    runtime = ImagePreprocessor.from_config(processor_preprocessing(processor))
    for photo in _sample_photos():
        expected = processor(photo, return_tensors="np")["pixel_values"]
        actual = runtime([photo])["pixel_values"]
        assert actual.shape == expected.shape == (1, 3, 224, 224)
        assert np.abs(actual - expected).max() < 1e-4


def test_processor_settings_without_a_runtime_equivalent_are_refused():
    import transformers

    from edgekit.convert.image_sources import processor_preprocessing

    processor = transformers.MobileViTImageProcessor()  # flips RGB to BGR: no runtime equivalent
    with pytest.raises(SourceError, match="do_flip_channel_order"):
        processor_preprocessing(processor)


# -- hostile data and checkpoints ------------------------------------------------------------


def _read(path: Path):
    from edgekit.image_data import read_image_dataset

    return read_image_dataset(path)


def test_image_folder_and_csv_read(tmp_path, images):
    data = _read(images)
    assert len(data) == 12 and data.has_labels and data.label_names() == LABELS
    assert data.sample(4, seed=0).texts == data.sample(4, seed=0).texts
    listing = images / "list.csv"
    with listing.open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "label"], ["round/0.jpg", "round"], ["square/1.png", "square"]])
    try:
        rows = _read(listing)
    finally:
        listing.unlink()
    assert rows.labels == ["round", "square"] and Path(rows.texts[0]).is_file()


def test_truncated_jpeg_is_a_data_error(tmp_path):
    root = _image_folder(tmp_path / "data", per_class=2)
    victim = root / "round" / "0.jpg"
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    with pytest.raises(DataError, match="0.jpg.*truncated or damaged"):
        _read(root)


@pytest.mark.parametrize("name, content", [("notes.txt", b"hello"), ("fake.jpg", b"not an image at all")])
def test_non_image_file_is_a_data_error(tmp_path, name, content):
    root = _image_folder(tmp_path / "data", per_class=2)
    (root / "square" / name).write_bytes(content)
    with pytest.raises(DataError, match=name.replace(".", r"\.")):
        _read(root)


def test_symlink_escaping_the_dataset_is_refused(tmp_path):
    root = _image_folder(tmp_path / "data", per_class=2)
    outside = tmp_path / "secret.png"
    (root / "round" / "0.jpg").rename(outside)
    (root / "round" / "link.png").symlink_to(outside)
    with pytest.raises(DataError, match="outside the dataset folder"):
        _read(root)


@pytest.mark.parametrize("value", ["../escape.png", "/etc/passwd.png", "round/../../x.png"])
def test_csv_paths_leaving_the_folder_are_refused(tmp_path, value):
    root = _image_folder(tmp_path / "data", per_class=2)
    listing = root / "list.csv"
    listing.write_text(f"path,label\nround/0.jpg,round\n{value},square\n")
    with pytest.raises(DataError, match="row 2"):
        _read(listing)


def test_huge_or_odd_mode_images_are_refused(tmp_path):
    from PIL import Image

    from edgekit.image_data import check_image_file

    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(big)
    with pytest.raises(DataError, match="decompression bomb"):
        check_image_file(big, max_pixels=1000)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(deep)
    with pytest.raises(DataError, match="pixel mode"):
        check_image_file(deep)


def test_pickled_checkpoint_is_refused(tmp_path, factory_dir):
    import torch

    from edgekit.convert.image_sources import FactorySpec, load_factory_source

    pickled = tmp_path / "whole-model.pth"
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled)  # a module object: unpickling would run code
    spec = FactorySpec(**{**_factory_spec(factory_dir), "weights": pickled})
    with pytest.raises(SourceError, match="refuses to load"):
        load_factory_source(spec)


def test_weights_that_do_not_fit_the_factory_are_a_source_error(tmp_path, factory_dir):
    import torch

    from edgekit.convert.image_sources import FactorySpec, load_factory_source

    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2, 2)}, other)
    with pytest.raises(SourceError, match="does not fit"):
        load_factory_source(FactorySpec(**{**_factory_spec(factory_dir), "weights": other}))
