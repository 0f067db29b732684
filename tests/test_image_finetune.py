"""Fine-tuning image classifiers: a tiny factory CNN and a tiny HF ViT on real digit scans.

The images are scikit-learn's bundled handwritten digits written by ``edgekit/demo/images.py``
(a few per class). The models are tiny and train for a handful of steps: these tests check
behaviour (tensors, checkpoints, caching, freezing), not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the demo digits ship with scikit-learn: pip install 'edgekit[images]'")
torch = pytest.importorskip("torch")
pytest.importorskip("PIL")

from edgekit.convert.image_sources import FactorySpec, load_factory_source, load_hf_image_classifier  # noqa: E402
from edgekit.demo.images import DIGIT_LABELS, digit_image, write_demo_digits  # noqa: E402
from edgekit.errors import DataError  # noqa: E402
from edgekit.image_data import ImageDataset, read_image_dataset  # noqa: E402
from edgekit.runtime.image_preprocess import ImagePreprocessor  # noqa: E402
from edgekit.train.finetune_image import (  # noqa: E402
    ImageFinetuneConfig,
    ModuleBase,
    PixelRows,
    factory_model,
    finetune_image_classifier,
)

TINY = ModuleBase(
    factory="edgekit.demo.cnn:tiny_mobilenet",
    input=(1, 32, 32),
    arguments={"width": 4},
    preprocessing={"resize": {"height": 32, "width": 32}, "center_crop": None, "mean": [0.5], "std": [0.5]},
)
FAST = ImageFinetuneConfig(epochs=1, batch_size=16, threads=1)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    demo = write_demo_digits(tmp_path_factory.mktemp("digits") / "data", per_class=5)
    return read_image_dataset(demo.train), read_image_dataset(demo.test)


def test_demo_digits_are_the_real_scans_split_deterministically(tmp_path):
    from sklearn.datasets import load_digits

    demo = write_demo_digits(tmp_path / "a", per_class=5)
    assert (demo.train_count, demo.test_count) == (40, 10)  # every 5th scan of each digit is held out
    assert sorted(p.name for p in demo.train.iterdir()) == DIGIT_LABELS
    first = load_digits().images[0]  # a 0: stored 4x upscaled, grey levels 0-16 -> 0-255
    from PIL import Image

    stored = np.asarray(Image.open(demo.train / "0" / "0000.png"))
    assert stored.shape == (32, 32) and np.array_equal(stored[::4, ::4], np.rint(first * 255 / 16))
    again = write_demo_digits(tmp_path / "b", per_class=5)
    for path in sorted(demo.root.rglob("*.png")):
        assert path.read_bytes() == (again.root / path.relative_to(demo.root)).read_bytes()


def test_training_tensors_equal_the_runtime_ones_on_real_images(digits):
    """What the network is trained on is exactly what the runtime feeds it (no augmentation)."""
    train, _ = digits
    preprocessing = {**_default(TINY), "resize": {"height": 24, "width": 24}, "center_crop": None}
    runtime = ImagePreprocessor.from_config(dict(preprocessing))  # its own instance, fed the encoded bytes
    rows = PixelRows(ImagePreprocessor.from_config(preprocessing), train.texts, None)
    for index in (0, 7, len(train) - 1):
        expected = runtime([Path(train.texts[index]).read_bytes()])["pixel_values"][0]
        got = rows[index]["pixel_values"].numpy()
        assert got.dtype == np.float32 and got.shape == (1, 24, 24)
        np.testing.assert_array_equal(got, expected)
    # An independent torch computation of the same pre-processing, for the 32x32 case (no resampling).
    plain = PixelRows(ImagePreprocessor.from_config(_default(TINY)), train.texts, None)
    from PIL import Image

    pixels = torch.from_numpy(np.asarray(Image.open(train.texts[3]), dtype=np.float32))
    np.testing.assert_allclose(plain[3]["pixel_values"][0].numpy(), ((pixels / 255 - 0.5) / 0.5).numpy(), atol=1e-6)


def _default(base: ModuleBase) -> dict:
    from edgekit.convert.image_sources import default_preprocessing

    return default_preprocessing(list(base.input), base.preprocessing)


def test_augmentation_keeps_size_and_changes_pixels(digits):
    train, _ = digits
    pre = ImagePreprocessor.from_config(_default(TINY))
    rows = PixelRows(pre, train.texts, train.label_ids(DIGIT_LABELS), augment=True)
    plain = PixelRows(pre, train.texts, train.label_ids(DIGIT_LABELS))
    changed = [not torch.equal(rows[i]["pixel_values"], plain[i]["pixel_values"]) for i in range(10)]
    assert rows[0]["pixel_values"].shape == plain[0]["pixel_values"].shape and any(changed)


def test_factory_model_trains_saves_loads_and_is_cached(digits, tmp_path):
    train, test = digits
    out = tmp_path / "model"
    first = finetune_image_classifier(TINY, train, out, test, FAST)
    assert not first.reused and first.steps == 3 and first.labels == DIGIT_LABELS
    assert 0.0 <= first.eval_accuracy <= 1.0
    mapping = factory_model(out)
    assert Path(mapping["weights"]).is_file() and mapping["arguments"] == {"width": 4, "num_classes": 10}
    source = load_factory_source(FactorySpec(**mapping))  # what `convert` does with the checkpoint
    assert source.labels == DIGIT_LABELS and source.preprocessing["color_mode"] == "L"
    image = torch.zeros(2, 1, 32, 32)
    assert source.model(image).shape == (2, 10)
    record = json.loads((out / "training.json").read_text())
    assert record["train_rows"] == 40

    again = finetune_image_classifier(TINY, train, out, test, FAST)
    assert again.reused and again.steps == first.steps
    assert (out / "training.json").read_text() == json.dumps(record, indent=2) + "\n"
    changed = finetune_image_classifier(TINY, train, out, test, ImageFinetuneConfig(epochs=1, batch_size=8))
    assert not changed.reused and changed.steps == 5


def test_head_only_leaves_the_backbone_as_it_was(digits, tmp_path):
    import transformers

    from edgekit.demo.cnn import tiny_mobilenet

    train, _ = digits
    config = ImageFinetuneConfig(epochs=1, batch_size=16, head_only=True, threads=1, learning_rate=0.05)
    out = finetune_image_classifier(TINY, train, tmp_path / "head", None, config).checkpoint
    transformers.set_seed(config.seed)  # the factory's fresh model, as fine-tuning built it
    before = tiny_mobilenet(num_classes=10, width=4).state_dict()
    from safetensors.torch import load_file

    after = load_file(str(out / "weights.safetensors"))
    backbone = [k for k in before if k.startswith("features.")]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)  # running BN stats included
    assert not torch.equal(before["classifier.1.weight"], after["classifier.1.weight"])


def test_bad_data_is_refused_with_a_clear_error(digits, tmp_path):
    train, _ = digits
    unlabelled = ImageDataset(train.texts, None, "pictures/")
    with pytest.raises(DataError, match="no labels"):
        finetune_image_classifier(TINY, unlabelled, tmp_path / "x", None, FAST)
    one_class = ImageDataset(train.texts[:3], ["7", "7", "7"], "sevens/")
    with pytest.raises(DataError, match="only one label"):
        finetune_image_classifier(TINY, one_class, tmp_path / "y", None, FAST)


def test_hf_image_classifier_gets_a_fresh_head_and_its_processor(digits, tmp_path):
    import transformers

    train, test = digits
    base = tmp_path / "vit"
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=32, num_labels=3)  # fmt: skip
    transformers.ViTForImageClassification(config).save_pretrained(base)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(base)
    result = finetune_image_classifier(base, train, tmp_path / "ft", test, FAST)
    assert result.labels == DIGIT_LABELS and (result.checkpoint / "preprocessor_config.json").is_file()
    source = load_hf_image_classifier(str(result.checkpoint))
    assert source.labels == DIGIT_LABELS and source.preprocessing["resize"] == {"height": 32, "width": 32}
    frozen = finetune_image_classifier(base, train, tmp_path / "ft-head", None, ImageFinetuneConfig(
        epochs=1, batch_size=16, head_only=True, threads=1))  # fmt: skip
    original = transformers.ViTForImageClassification.from_pretrained(base).vit.state_dict()
    tuned = transformers.ViTForImageClassification.from_pretrained(frozen.checkpoint).vit.state_dict()
    assert all(torch.equal(original[k], tuned[k]) for k in original)


def test_digit_image_scales_grey_levels():
    levels = np.zeros((8, 8))
    levels[0, 0], levels[7, 7] = 16, 8
    pixels = np.asarray(digit_image(levels))
    assert pixels.shape == (32, 32) and pixels[0, 0] == 255 and pixels[31, 31] == 128 and pixels[10, 10] == 0


def test_checkpoint_kinds_are_told_apart_and_a_broken_one_is_refused(tmp_path, tiny_model_dir):
    from edgekit.bench.adapters import ArtifactAdapter, PyTorchAdapter, adapter_for
    from edgekit.bench.image_adapters import ImagePyTorchAdapter, is_image_source

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.json").write_text("{not json")
    with pytest.raises(DataError, match="not a fine-tuned image checkpoint"):
        factory_model(folder)
    with pytest.raises(DataError, match="not a fine-tuned image checkpoint"):
        factory_model(tmp_path / "missing")
    assert is_image_source(folder) and is_image_source(folder / "weights.safetensors")
    assert not is_image_source(tiny_model_dir)  # a text checkpoint keeps the text baseline
    assert adapter_for("pytorch", folder) is ImagePyTorchAdapter
    assert adapter_for("pytorch", tiny_model_dir) is PyTorchAdapter
    assert adapter_for("artifact", folder) is ArtifactAdapter
