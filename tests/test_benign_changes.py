"""The stable-label measure of benchmarks/benign_changes.py: which FP32 top-5 labels an INT8 model can be
asked to keep (those FP32 itself keeps when the photo is saved as JPEG or trimmed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SPEC = importlib.util.spec_from_file_location(
    "benign_changes", Path(__file__).resolve().parents[1] / "benchmarks" / "benign_changes.py"
)
benign = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(benign)


def _logits(*top: list[int], classes: int = 10) -> np.ndarray:
    """Rows whose top-5 is ``top`` in that order (logits 10, 9, ... for the listed classes, 0 elsewhere)."""
    out = np.zeros((len(top), classes), dtype=np.float32)
    for i, labels in enumerate(top):
        out[i, labels] = 10 - np.arange(len(labels))
    return out


def test_a_label_any_unnoticed_change_drops_is_unstable_and_the_mirror_does_not_count():
    truth = _logits([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    changed = {name: truth for name in benign.CHANGES}
    changed["JPEG quality 90"] = _logits([0, 1, 2, 3, 9], [5, 6, 7, 8, 9])  # 4 left photo 0's top-5
    changed["mirrored"] = _logits([9, 8, 7, 6, 5], [0, 1, 2, 3, 4])  # visible: ignored
    stable = benign.stable_top5(truth, changed)
    assert stable == [{0, 1, 2, 3}, {5, 6, 7, 8, 9}]
    assert benign.stable_kept(truth, stable) == 9
    # An INT8 top-5 that swaps the unstable label costs nothing; losing a stable one does.
    assert benign.stable_kept(_logits([0, 1, 2, 3, 8], [5, 6, 7, 8, 9]), stable) == 9
    assert benign.stable_kept(_logits([0, 1, 2, 9, 8], [5, 6, 7, 8, 9]), stable) == 8


def test_the_changes_keep_an_rgb_photo_and_change_its_pixels_only_slightly():
    pil = pytest.importorskip("PIL.Image")
    y, x = np.mgrid[0:96, 0:128]
    smooth = np.stack([x * 2, y * 2, (x + y)], axis=-1).astype(np.uint8)  # gradients, like sky or skin
    photo = pil.fromarray(smooth)
    for name, change in benign.UNNOTICED.items():
        out = change(photo)
        assert out.mode == "RGB", name
        expected = (photo.width - 4, photo.height - 4) if "trimmed" in name else photo.size
        assert out.size == expected, name
        if "JPEG" in name:
            diff = np.abs(np.asarray(out, dtype=np.int16) - smooth).mean()
            assert 0 < diff < 3, (name, diff)
    assert np.array_equal(np.asarray(benign.CHANGES["mirrored"](photo)), smooth[:, ::-1])


def test_the_gate_s_jpeg_change_decodes_like_the_runtime_one_input_at_a_time(image_artifact):
    """edgekit's own unnoticed change for images (the gate's noise floor): JPEG bytes of the same size, the
    runtime's checks still apply, and inputs are consumed lazily (memory stays bounded)."""
    import io

    from image_helpers import encode, photo
    from PIL import Image

    from edgekit.errors import InputError
    from edgekit.tasks.image_classification import saved_as_jpeg

    def inputs():
        yield photo(30, 40)
        yield encode(photo(20, 25, seed=1))
        raise AssertionError("read past what was asked for")

    changed = saved_as_jpeg(image_artifact, inputs())
    first, second = next(changed), next(changed)
    for data, size in ((first, (40, 30)), (second, (25, 20))):
        picture = Image.open(io.BytesIO(data))
        assert picture.format == "JPEG" and picture.size == size and picture.mode == "RGB"
    with pytest.raises(InputError, match="Input 0"):
        next(saved_as_jpeg(image_artifact, [b"not an image"]))
