"""The built-in image demo data: scikit-learn's handwritten digits written as labelled PNGs.

``load_digits`` ships inside the scikit-learn wheel (no network): 1,797 real 8x8 scans with
16 grey levels (0-16). Each becomes a greyscale PNG: levels scaled to 0-255
(``round(v * 255 / 16)``), then upscaled 4x with nearest-neighbour, so every stored pixel is
exactly one of the scanned ones (32x32, nothing invented). The model's own pre-processing
resizes them further. Provenance and licence: ``edgekit/demo/README.md``.

The split is deterministic and stratified: within each digit, in the dataset's order,
every 5th image (index 4, 9, ...) is held out for the test split, the rest is training data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import SourceError
from edgekit.outputs import atomic_directory

DIGITS_SCALE = 4  # 8x8 -> 32x32
TEST_EVERY = 5  # every 5th image of each digit is held out (20%)
RECORD = "digits.json"
DIGIT_LABELS = [str(d) for d in range(10)]


@dataclass(frozen=True)
class DemoImages:
    root: Path
    train: Path  # a folder per class: train/<digit>/<index>.png
    test: Path
    train_count: int
    test_count: int


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SourceError(
            "The image demo data comes from scikit-learn's bundled handwritten digits. "
            "Install it: pip install 'edgekit[images]' (or pip install scikit-learn)."
        ) from None
    return load_digits()


def digit_image(levels: object) -> "Image.Image":  # noqa: F821, UP037 - PIL is imported lazily
    """One 8x8 scan (levels 0-16) as the 32x32 greyscale PNG image the demo writes."""
    import numpy as np
    from PIL import Image

    grey = np.rint(np.asarray(levels, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)
    return Image.fromarray(grey, mode="L").resize((8 * DIGITS_SCALE, 8 * DIGITS_SCALE), Image.Resampling.NEAREST)


def write_demo_digits(out: Path, per_class: int | None = None) -> DemoImages:
    """Write the digits under ``out`` (``train/``, ``test/``), or reuse them if already written.

    ``per_class`` keeps only the first that many scans of each digit (tests, fast runs).
    """
    out = Path(out)
    wanted = {"scale": DIGITS_SCALE, "test_every": TEST_EVERY, "per_class": per_class, "format": 1}
    try:
        record = json.loads((out / RECORD).read_text())
        if record.get("settings") == wanted:
            return DemoImages(out, out / "train", out / "test", record["train"], record["test"])
    except (OSError, json.JSONDecodeError, KeyError):
        pass
    digits = _load_digits()
    seen = dict.fromkeys(range(10), 0)
    counts = {"train": 0, "test": 0}
    with atomic_directory(out, "results", []) as staging:  # replaced whole, never half-written
        for index, (levels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
            rank = seen[int(target)]
            seen[int(target)] += 1
            if per_class is not None and rank >= per_class:
                continue
            split = "test" if rank % TEST_EVERY == TEST_EVERY - 1 else "train"
            folder = staging / split / str(int(target))
            folder.mkdir(parents=True, exist_ok=True)
            digit_image(levels).save(folder / f"{index:04d}.png", optimize=False)
            counts[split] += 1
        (staging / RECORD).write_text(json.dumps({"settings": wanted, **counts}, indent=2) + "\n")
    return DemoImages(out, out / "train", out / "test", counts["train"], counts["test"])
