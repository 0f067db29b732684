"""How stable FP32's own top-5 is: the same model, the same pre-processing, on the photo after a change
no viewer would notice (a JPEG save, a 2-pixel border trim, a mirror). A label that FP32 itself drops
under such a change sits on a near-tie; INT8 swapping it says nothing about INT8. ``imagenet_int8.py``
scores every INT8 setting on the labels that stay in FP32's top-5 under all of these changes as well as
on the full 45 (a mirror is shown for scale, not used to define them).

    python benchmarks/benign_changes.py     # prints PyTorch FP32's own rows and each photo's unstable labels
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np


def _jpeg(quality: int) -> Callable:
    def change(image):
        from PIL import Image

        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    return change


def _trim(pixels: int) -> Callable:
    return lambda image: image.crop((pixels, pixels, image.width - pixels, image.height - pixels))


def _mirror(image):
    from PIL import ImageOps

    return ImageOps.mirror(image)


# Changes a viewer would not notice (what a camera app's JPEG save or a crop does): they define the stable labels.
UNNOTICED: dict[str, Callable] = {
    "JPEG quality 95": _jpeg(95),
    "JPEG quality 90": _jpeg(90),
    "2-pixel border trimmed": _trim(2),
}
# A visible change that keeps every label's meaning: shown for scale only.
CHANGES: dict[str, Callable] = {**UNNOTICED, "mirrored": _mirror}


def changed_logits(logits_of: Callable[[list], np.ndarray], images: list) -> dict[str, np.ndarray]:
    """``logits_of`` (FP32: the reference the INT8 rows are scored against) on every photo under each change."""
    return {name: np.asarray(logits_of([change(i) for i in images]), dtype=np.float32)
            for name, change in CHANGES.items()}  # fmt: skip


def stable_top5(truth: np.ndarray, changed: dict[str, np.ndarray]) -> list[set[int]]:
    """Per photo: FP32's top-5 labels that stay in its top-5 under every unnoticed change."""
    kept = [set(row) for row in np.argsort(-truth, axis=1)[:, :5].tolist()]
    for logits in (changed[name] for name in UNNOTICED):
        for i, row in enumerate(np.argsort(-logits, axis=1)[:, :5].tolist()):
            kept[i] &= set(row)
    return kept


def stable_kept(logits: np.ndarray, stable: list[set[int]]) -> int:
    """How many of the stable labels are in these logits' top-5."""
    top5 = np.argsort(-logits, axis=1)[:, :5].tolist()
    return sum(len(s & set(row)) for s, row in zip(stable, top5, strict=True))


if __name__ == "__main__":
    import imagenet_int8
    from image_efficientnet import IMAGENET_SPEC, photos, reference_logits

    images = photos()
    names = sorted(images)
    truth = reference_logits(IMAGENET_SPEC, [images[n] for n in names])
    changed = changed_logits(lambda batch: reference_logits(IMAGENET_SPEC, batch), [images[n] for n in names])
    stable = stable_top5(truth, changed)
    for change, logits in changed.items():
        scored = imagenet_int8.score(logits, truth, names)
        kept, total = stable_kept(logits, stable), sum(map(len, stable))
        print(f"{change}: top-5 kept {scored['top5_kept']}/45, top-1 {scored['top1_kept']}/9, "
              f"RMS {scored['rms_dlogit']}, stable kept {kept}/{total}")  # fmt: skip
    for name, labels, full in zip(names, stable, np.argsort(-truth, axis=1)[:, :5].tolist(), strict=True):
        print(name, "unstable:", sorted(set(full) - labels))
