"""Read image datasets: a folder per class (``train/cat/*.jpg``), a folder of unlabelled images,
or a CSV/JSONL file of ``path,label`` rows whose paths are relative to the file.

Images are untrusted input. Every image is opened and decoded here, once, so a dataset either
reads completely or fails with a ``DataError`` naming the file and saying how to fix it:
unreadable or truncated files, files that are not JPEG/PNG, decompression bombs (too many
pixels, or too many bytes), pixel modes that have no RGB/L meaning, and paths that leave the
dataset's folder (``..``, absolute paths, symlinks pointing outside).

``ImageDataset`` has the interface the pipeline and the gate use from ``TextDataset``:
``texts`` holds the inputs (absolute image paths, which ``EdgeModel.predict_batch`` takes for an
image artifact), ``labels``, ``has_labels``, ``label_ids``, ``sample`` and ``source``.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from edgekit.data import TextDataset, read_text_dataset
from edgekit.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_FORMATS = ("JPEG", "PNG")
# The contract's runtime defaults (manifest `preprocessing`): beyond these the runtime refuses an image.
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 20_000_000
# Modes Pillow converts to RGB or L with their usual meaning; 16-bit and float modes have no fixed scale.
CONVERTIBLE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "La")


@dataclass(frozen=True)
class ImageDataset:
    texts: list[str]  # absolute image paths (named like TextDataset's field: the pipeline's inputs)
    labels: list[str] | None
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def paths(self) -> list[Path]:
        return [Path(p) for p in self.texts]

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def label_names(self) -> list[str]:
        return self._as_text().label_names()

    def label_ids(self, model_labels: list[str]) -> list[int]:
        return self._as_text().label_ids(model_labels)

    def sample(self, n: int, seed: int = 0) -> ImageDataset:
        """A reproducible random subset of at most ``n`` images."""
        if n >= len(self):
            return self
        indices = sorted(random.Random(seed).sample(range(len(self)), n))
        labels = [self.labels[i] for i in indices] if self.labels is not None else None
        return ImageDataset([self.texts[i] for i in indices], labels, self.source)

    def _as_text(self) -> TextDataset:  # one definition of label mapping for both kinds of data
        return TextDataset(self.texts, self.labels, self.source)


def read_image_dataset(
    path: Path, path_column: str = "path", label_column: str | None = "label", fmt: str | None = None
) -> ImageDataset:
    """A folder (one sub-folder per class, or images directly) or a CSV/JSONL list of images."""
    path = Path(path)
    if path.is_dir():
        paths, labels = _read_folder(path)
    elif path.is_file():
        paths, labels = _read_listing(path, path_column, label_column, fmt)
    else:
        raise DataError(f"Image data {path} does not exist. Pass a folder of class folders or a CSV/JSONL of paths.")
    if not paths:
        raise DataError(
            f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}). Put each class's images in a folder "
            "named after the class (data/cat/1.jpg), or list them in a CSV with path,label columns."
        )
    for image in paths:
        check_image_file(image)
    return ImageDataset([str(p) for p in paths], labels, str(path))


def _read_folder(root: Path) -> tuple[list[Path], list[str] | None]:
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    classes = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if not p.is_dir()]
    if classes and loose:
        raise DataError(
            f"{root} mixes class folders ({', '.join(p.name for p in classes[:3])}) with loose files "
            f"({', '.join(p.name for p in loose[:3])}). Move the files into their class folder, or out."
        )
    if not classes:
        return [_confined(root, p) for p in _image_files(root, loose)], None
    paths: list[Path] = []
    labels: list[str] = []
    for folder in classes:
        _confined(root, folder)
        files = _image_files(folder, sorted(p for p in folder.iterdir() if not p.name.startswith(".")))
        paths += [_confined(root, p) for p in files]
        labels += [folder.name] * len(files)
    return paths, labels


def _image_files(folder: Path, entries: list[Path]) -> list[Path]:
    others = [p.name for p in entries if p.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise DataError(
            f"{folder} holds {', '.join(others[:5])}, which {'is' if len(others) == 1 else 'are'} not a JPEG or "
            f"PNG image ({', '.join(IMAGE_SUFFIXES)}). Move {'it' if len(others) == 1 else 'them'} out of the dataset."
        )
    return entries


def _read_listing(
    file: Path, path_column: str, label_column: str | None, fmt: str | None
) -> tuple[list[Path], list[str] | None]:
    if (fmt or file.suffix.lower().lstrip(".")) == "tsv":
        raise DataError(f"{file}: image lists are CSV or JSONL files with `{path_column}` and label columns, not TSV.")
    rows = read_text_dataset(file, path_column, label_column, fmt)
    root = file.resolve().parent
    paths = [_listed_path(file, root, row, value) for row, value in enumerate(rows.texts, start=1)]
    return paths, rows.labels


def _listed_path(file: Path, root: Path, row: int, value: str) -> Path:
    where = f"{file}, row {row}"
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or PureWindowsPath(value).drive:
        raise DataError(f"{where}: '{value}' is an absolute path. Write paths relative to the file's folder.")
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        raise DataError(f"{where}: '{value}' leaves the file's folder (`..`). Keep the images beside or below it.")
    candidate = root / value
    if not candidate.exists() and not candidate.is_symlink():
        raise DataError(f"{where}: image '{value}' does not exist (paths are relative to {file.name}'s folder).")
    if candidate.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"{where}: '{value}' is not a JPEG or PNG file ({', '.join(IMAGE_SUFFIXES)}).")
    return _confined(root, candidate, where)


def _confined(root: Path, path: Path, where: str | None = None) -> Path:
    """``path`` resolved; refused when it (through a symlink) lies outside ``root``."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DataError(
            f"{where or path}: {path.name} resolves to {resolved}, outside the dataset folder {root} "
            "(a symlink pointing out). Copy the image into the dataset instead."
        )
    return resolved


def folder_fingerprint(root: Path) -> str:
    """sha256 over every file's relative path and sha256 in a data folder (an image dataset's content)."""
    import hashlib

    from edgekit.artifact import sha256_file

    digest = hashlib.sha256()
    for file in sorted(p for p in Path(root).rglob("*") if p.is_file() or p.is_symlink()):
        # A symlink by where it points: never read a file outside the dataset (reading refuses it later).
        content = f"-> {file.readlink()}" if file.is_symlink() else sha256_file(file)
        digest.update(f"{file.relative_to(root).as_posix()}:{content}\n".encode())
    return digest.hexdigest()


def listing_fingerprint(
    file: Path, path_column: str = "path", label_column: str | None = "label", fmt: str | None = None
) -> str:
    """sha256 over a CSV/JSONL image list and every image it names (their paths and sha256).

    The list alone is not the dataset: an image replaced in place must give a new recipe hash, or
    ``convert`` would reuse an artifact calibrated and gated on other pixels. Content, not size and
    mtime: a copy or checkout resets mtimes, a same-size edit keeps the size, and the cost is bounded
    anyway: every image is at most ``MAX_IMAGE_BYTES``, and reading it once is far cheaper than the
    full decode ``read_image_dataset`` already does for each (sha256 ~1 GB/s against ~0.1 GB/s).
    """
    import hashlib

    from edgekit.artifact import sha256_file

    file = Path(file)
    paths, _ = _read_listing(file, path_column, label_column, fmt)  # confined, as the dataset reads them
    root = file.resolve().parent
    digest = hashlib.sha256(f"list:{sha256_file(file)}\n".encode())
    for path in paths:  # in listed order: the order is part of the data (sampling is by position)
        digest.update(f"{path.relative_to(root).as_posix()}:{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def check_image_file(path: Path, max_pixels: int = MAX_IMAGE_PIXELS, max_bytes: int = MAX_IMAGE_BYTES) -> None:
    """Open and fully decode one image; a ``DataError`` naming it when that cannot work."""
    from PIL import Image, UnidentifiedImageError

    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{path}: {size} bytes is more than the {max_bytes} an image may have. Resize it.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format not in IMAGE_FORMATS:
                    raise DataError(f"{path} is a {image.format} image; edgekit reads JPEG and PNG. Convert it.")
                width, height = image.size
                if width * height > max_pixels:  # checked from the header, before any pixel is decoded
                    raise DataError(
                        f"{path} is {width}x{height} pixels, more than the {max_pixels} allowed "
                        "(a decompression bomb, or a very large photo). Resize it."
                    )
                if image.mode not in CONVERTIBLE_MODES:
                    raise DataError(
                        f"{path} has pixel mode {image.mode}, which has no RGB/grayscale meaning. "
                        "Save it as 8-bit RGB or grayscale."
                    )
                image.load()
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f"{path} is not an image Pillow can read (not JPEG/PNG, or damaged). Remove it.") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path} could not be decoded ({exc}): it is truncated or damaged. Replace it.") from None
