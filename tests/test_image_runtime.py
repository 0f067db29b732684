"""Image artifacts in the runtime: EdgeModel on paths, bytes, PIL images and arrays; pre-processing; hostile images."""

from __future__ import annotations

import copy
import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from image_helpers import IMAGE_LABELS, SIDE, encode, image_manifest_dict, image_preprocessing, photo

Image = pytest.importorskip("PIL.Image")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from edgekit.artifact import validate_manifest  # noqa: E402
from edgekit.errors import ArtifactError, InputError  # noqa: E402
from edgekit.runtime import EdgeModel, Prediction  # noqa: E402
from edgekit.runtime.image_preprocess import ImagePreprocessor  # noqa: E402


@pytest.fixture(scope="module")
def model(image_artifact) -> EdgeModel:
    return EdgeModel.load(image_artifact, threads=1)


def _scores(prediction: Prediction) -> np.ndarray:
    return np.asarray(prediction.scores)


def reference_tensor(picture, config: dict) -> np.ndarray:
    """An independent reading of the manifest: PIL resize/crop by hand, float64 arithmetic, CHW."""
    picture = picture.convert(config["color_mode"])
    width, height = picture.size
    resize = config["resize"]
    if "shortest_edge" in resize:
        scale = resize["shortest_edge"] / min(width, height)
        long_side = int(resize["shortest_edge"] * max(width, height) / min(width, height))
        size = (resize["shortest_edge"], long_side) if width <= height else (long_side, resize["shortest_edge"])
        assert abs(size[0] - width * scale) < 1 and abs(size[1] - height * scale) < 1
    else:
        size = (resize["width"], resize["height"])
    filters = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}  # fmt: skip
    picture = picture.resize(size, filters[config["resample"]])
    crop = config.get("center_crop")
    if crop:
        left, top = (size[0] - crop["width"]) // 2, (size[1] - crop["height"]) // 2
        picture = picture.crop((left, top, left + crop["width"], top + crop["height"]))
    pixels = np.asarray(picture, dtype=np.float64).reshape(picture.size[1], picture.size[0], -1)
    normalized = (pixels * config["rescale_factor"] - np.asarray(config["mean"])) / np.asarray(config["std"])
    return normalized.transpose(2, 0, 1)


# -- one image, every way to pass it ---------------------------------------------------------


def test_path_bytes_pil_and_array_give_the_same_prediction(model, tmp_path):
    pixels = photo(30, 44, seed=1)
    png = encode(pixels)
    (tmp_path / "cat.png").write_bytes(png)
    ways = [str(tmp_path / "cat.png"), tmp_path / "cat.png", png, bytearray(png), memoryview(png),
            Image.open(io.BytesIO(png)), pixels]  # fmt: skip
    results = [model.predict(way) for way in ways]
    assert all(isinstance(result, Prediction) and result.label in IMAGE_LABELS for result in results)
    for result in results[1:]:
        assert result == results[0]  # the same pixels, decoded the same way: identical scores
    assert model.predict_batch(ways) == results


@pytest.mark.parametrize(
    "config, size",
    [
        (image_preprocessing(), (30, 44)),  # landscape: shortest_edge on the height
        (image_preprocessing(), (47, 21)),  # portrait, odd crop margins
        (image_preprocessing(resize={"height": SIDE, "width": SIDE}, center_crop=None, resample="bicubic"), (25, 25)),
        (image_preprocessing(resize={"shortest_edge": 17}, resample="lanczos"), (64, 100)),  # downscale
        (
            image_preprocessing(
                resize={"height": 18, "width": 20},
                center_crop={"height": SIDE, "width": SIDE},
                resample="nearest",
                color_mode="L",
                mean=[0.5],
                std=[0.25],
            ),
            (33, 19),
        ),  # fmt: skip
    ],
)
def test_tensor_equals_an_independent_reference(config, size):
    pre = ImagePreprocessor.from_config(config)
    pixels = photo(*size, seed=size[0])
    feed = pre([pixels])["pixel_values"]
    channels = 1 if config["color_mode"] == "L" else 3
    assert feed.dtype == np.float32 and feed.shape == (1, channels, SIDE, SIDE) and feed.flags.c_contiguous
    np.testing.assert_allclose(feed[0], reference_tensor(Image.fromarray(pixels), config), rtol=0, atol=2e-6)


def test_grey_and_rgba_arrays_and_modes_convert_like_pillow(model):
    grey = photo(20, 20)[..., 0]
    rgba = np.dstack([photo(20, 20), np.full((20, 20), 7, np.uint8)])
    pre = ImagePreprocessor.from_config(image_preprocessing())
    for pixels, mode in ((grey, "L"), (grey[..., None], "L"), (rgba, "RGBA")):
        expected = reference_tensor(Image.fromarray(pixels.squeeze() if pixels.ndim == 3 and pixels.shape[2] == 1
                                                    else pixels, mode), image_preprocessing())  # fmt: skip
        np.testing.assert_allclose(pre([pixels])["pixel_values"][0], expected, atol=2e-6)
    assert isinstance(model.predict(Image.fromarray(photo()).convert("P")), Prediction)


def test_exif_orientation_is_applied():
    pixels = photo(20, 32, seed=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif)
    pre = ImagePreprocessor.from_config(image_preprocessing())
    upright = np.ascontiguousarray(np.rot90(pixels, k=-1))
    np.testing.assert_array_equal(pre([buffer.getvalue()])["pixel_values"], pre([upright])["pixel_values"])


def test_animated_gif_uses_its_first_frame():
    frames = [Image.fromarray(photo(24, 24, seed=s)).convert("P") for s in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    pre = ImagePreprocessor.from_config(image_preprocessing())
    first = np.asarray(frames[0].convert("RGB"))
    np.testing.assert_array_equal(pre([buffer.getvalue()])["pixel_values"], pre([first])["pixel_values"])


# -- batches ----------------------------------------------------------------------------------


def test_batches_equal_batch_one_and_keep_the_callers_order(model):
    images = [photo(20 + 3 * i, 30 - i, seed=i) for i in range(9)]
    alone = [model.predict(image) for image in images]
    batched = model.predict_batch(images)
    for one, many in zip(alone, batched, strict=True):
        assert one.label == many.label
        np.testing.assert_allclose(_scores(one), _scores(many), atol=1e-6)
    logits = model.logits(images)
    assert logits.shape == (9, len(IMAGE_LABELS))
    assert [int(row.argmax()) for row in logits] == [p.label_id for p in alone]
    assert list(model.predict_batch(np.stack([photo(20, 20, seed=i) for i in range(3)]))) == [
        model.predict(photo(20, 20, seed=i)) for i in range(3)
    ]  # an NxHxWxC array is a batch of N


class _Recorder:
    def __init__(self, engine):
        self.engine, self.rows = engine, []
        self.providers = engine.providers

    def run(self, feed):
        self.rows.append(feed["pixel_values"].shape[0])
        return self.engine.run(feed)


def test_chunks_are_bounded_by_rows_and_input_values(image_artifact, monkeypatch):
    per_image = -(-3 * SIDE * SIDE // 1024)  # units of 1024 input values: 3x16x16 -> 1
    model = EdgeModel.load(image_artifact, threads=1, max_batch_rows=4, max_batch_tokens=3 * per_image)
    model._engine = recorder = _Recorder(model._engine)
    encoded: list[int] = []
    encode = model._preprocess.encode
    monkeypatch.setattr(
        model._preprocess, "encode", lambda items, first=0: encoded.append(len(items)) or encode(items, first)
    )
    images = [photo(20, 20, seed=i) for i in range(10)]
    assert len(model.predict_batch(images)) == 10
    assert recorder.rows and max(recorder.rows) <= 3 and sum(recorder.rows) == 10  # tokens bound: 3 images
    assert max(encoded) <= 4  # decoded one chunk of images at a time, not the whole list


def test_tokenize_is_refused_for_an_image_model_and_features_work(model):
    with pytest.raises(InputError, match="features"):
        model.tokenize([photo()])
    assert model.features([photo(), photo(40, 22)])["pixel_values"].shape == (2, 3, SIDE, SIDE)


def test_loading_and_predicting_an_image_imports_no_conversion_stack(image_artifact):
    code = (
        "import sys, numpy as np; from edgekit.runtime import EdgeModel; "
        f"m = EdgeModel.load({str(image_artifact)!r}, threads=1); "
        "print(m.predict(np.zeros((20, 20, 3), np.uint8)).label); "
        "print(sorted(n for n in ('torch', 'transformers', 'onnx', 'pydantic', 'yaml', 'typer', 'rich', "
        "'torchvision') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    label, imported = out.stdout.strip().splitlines()
    assert label in IMAGE_LABELS and imported == "[]"


# -- hostile and wrong inputs -----------------------------------------------------------------


def png_header(width: int, height: int, mode: int = 2) -> bytes:
    """A PNG whose header claims width x height pixels, with a few bytes of real data (a bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _sixteen_bit_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(400, dtype=np.uint16).reshape(20, 20) * 100).save(buffer, format="PNG")
    return buffer.getvalue()


HOSTILE = {
    "truncated PNG": (lambda: encode(photo(40, 40))[:300], "truncated or damaged"),
    "truncated JPEG": (lambda: encode(photo(40, 40), "JPEG")[:400], "truncated or damaged"),
    "bomb beyond Pillow's bound": (lambda: png_header(100_000, 100_000), "too large to decode safely|pixels"),
    "bomb beyond the manifest's bound": (lambda: png_header(3000, 3000), "max_image_pixels"),
    "not an image": (lambda: b"just some text, not a picture " * 4, "not an image in a format"),
    "EPS (Ghostscript)": (lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image in a format"),
    "empty bytes": (lambda: b"", "empty"),
    "over max_image_bytes": (lambda: b"\x89PNG" + b"\0" * 2_000_001, "max_image_bytes"),
    "16-bit grey": (_sixteen_bit_png, "16/32-bit"),
    "float image": (lambda: Image.new("F", (8, 8)), "16/32-bit"),
    "zero-size image": (lambda: Image.new("RGB", (0, 4)), "empty image"),
    "float array": (lambda: np.zeros((8, 8, 3), np.float32), "uint8"),
    "bool array": (lambda: np.zeros((8, 8, 3), bool), "uint8"),
    "2-channel array": (lambda: np.zeros((8, 8, 2), np.uint8), "shape"),
    "4-D array": (lambda: np.zeros((1, 8, 8, 3), np.uint8), "shape"),
    "empty array": (lambda: np.zeros((0, 8, 3), np.uint8), "empty image"),
    "huge array": (lambda: np.broadcast_to(np.uint8(0), (3000, 3000)), "max_image_pixels"),
    "missing file": (lambda: "/nonexistent/cat.png", "cannot read the image file"),
    "a number": (lambda: 42, "not an image"),
    "None": (lambda: None, "not an image"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_images_get_a_clear_input_error_naming_the_input(model, name):
    make, message = HOSTILE[name]
    with pytest.raises(InputError, match=message) as caught:
        model.predict_batch([photo(), photo(), make()])
    assert "Input 2" in str(caught.value) and "\n" not in str(caught.value)


def test_a_folder_and_a_device_are_not_image_files(model, tmp_path):
    for path in (tmp_path, "/dev/zero"):
        with pytest.raises(InputError, match="cannot read|not a regular file"):
            model.predict(path)


def test_cmyk_and_palette_images_are_converted(model):
    for mode in ("CMYK", "P", "LA", "1"):
        picture = Image.fromarray(photo(20, 20)).convert(mode)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG" if mode == "CMYK" else "PNG")
        assert isinstance(model.predict(buffer.getvalue()), Prediction)


@pytest.mark.parametrize("batch", ["a string", b"bytes", {"a": 1}, {1, 2}, [], 7, np.zeros((8, 8, 3), np.uint8)])
def test_predict_batch_needs_a_list_of_images(model, batch):
    with pytest.raises(InputError):
        model.predict_batch(batch)


_VALID_PNG = encode(photo(12, 12))


@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.int8, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
    ),
    flips=st.lists(st.tuples(st.integers(0, len(_VALID_PNG) - 1), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, len(_VALID_PNG)),
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_arrays_and_mutated_files_predict_or_raise_input_error(model, array, flips, cut):
    damaged = bytearray(_VALID_PNG[:cut])
    for position, value in flips:
        if position < len(damaged):
            damaged[position] = value
    for item in (array, bytes(damaged)):
        try:
            assert isinstance(model.predict(item), Prediction)
        except InputError as exc:
            assert str(exc) and "\n" not in str(exc)


# -- the manifest's image fields ----------------------------------------------------------------


def _manifest(**pre_overrides) -> dict:
    document = image_manifest_dict(preprocessing=image_preprocessing(**pre_overrides))
    document["files"] = {"model.onnx": "0" * 64}
    return document


BAD_PREPROCESSING = [
    ("type", "text"), ("color_mode", "CMYK"), ("color_mode", None), ("resample", "box"), ("layout", "NHWC"),
    ("resize", None), ("resize", {"shortest_edge": 0}), ("resize", {"shortest_edge": 16385}),
    ("resize", {"height": 16}), ("resize", {"shortest_edge": 20, "height": 16}), ("resize", {"shortest_edge": 2.5}),
    ("resize", {"shortest_edge": True}), ("center_crop", {"height": 30, "width": 16}), ("center_crop", None),
    ("center_crop", {"height": -1, "width": 16}), ("rescale_factor", 0), ("rescale_factor", float("nan")),
    ("rescale_factor", "1/255"), ("mean", [0.5, 0.5]), ("mean", [0.5, float("inf"), 0.5]), ("mean", "0.5"),
    ("std", [0.2, 0.0, 0.2]), ("std", [0.2, -0.1, 0.2]), ("std", [0.2, 0.2]), ("max_image_pixels", 0),
    ("max_image_pixels", 1 << 31), ("max_image_bytes", -5), ("max_image_bytes", 1.5), ("max_image_bytes", None),
]  # fmt: skip


@pytest.mark.parametrize("key, value", BAD_PREPROCESSING)
def test_bad_preprocessing_is_one_artifact_error_line(key, value):
    document = _manifest(**{key: value})
    with pytest.raises(ArtifactError, match="preprocessing") as caught:
        validate_manifest(document)
    assert "\n" not in str(caught.value)
    with pytest.raises(ArtifactError):
        ImagePreprocessor.from_config(document["preprocessing"])  # conversion's constructor checks the same


def test_image_task_fields():
    validate_manifest(_manifest())  # valid: no tokenizer, no tokenizer file required
    document = _manifest()
    del document["tokenizer"]
    validate_manifest(document)  # absent is as good as null
    for bad, message in [
        ({"preprocessing": None}, "preprocessing"),
        ({"inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", 3, SIDE, SIDE]}]}, "pixel_values"),
        ({"inputs": [{"name": "pixel_values", "dtype": "float32", "shape": ["batch", 3, SIDE]}]}, "pixel_values"),
        ({"inputs": [{"name": "pixel_values", "dtype": "float32", "shape": ["batch", 3, 224, 224]}]}, "shape"),
        ({"inputs": [{"name": "pixel_values", "dtype": "float32", "shape": ["batch", 1, SIDE, SIDE]}]}, "shape"),
    ]:
        with pytest.raises(ArtifactError, match=message):
            validate_manifest({**_manifest(), **bad})


def test_text_manifests_still_need_their_tokenizer_and_token_inputs():
    text = {**_manifest(), "task": "text-classification", "preprocessing": None,
            "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"]}]}  # fmt: skip
    with pytest.raises(ArtifactError, match="tokenizer"):
        validate_manifest(text)
    tokenizer = {"file": "tokenizer.json", "max_length": 8, "pad_id": 0, "pad_token": "[PAD]"}
    with pytest.raises(ArtifactError, match="tokenizer.json"):  # its file must be listed and hashed
        validate_manifest({**text, "tokenizer": tokenizer})
    listed = {"model.onnx": "0" * 64, "tokenizer.json": "1" * 64}
    validate_manifest({**text, "tokenizer": tokenizer, "files": listed})
    with pytest.raises(ArtifactError, match="int64 input"):
        pixels = [{"name": "pixel_values", "dtype": "float32", "shape": ["b", 3, 4, 4]}]
        validate_manifest({**text, "tokenizer": tokenizer, "inputs": pixels,
                           "files": {"model.onnx": "0" * 64, "tokenizer.json": "1" * 64}})  # fmt: skip


def test_an_mlpackage_model_needs_its_manifest_listed():
    document = {**_manifest(), "model_file": "model.mlpackage", "engine": "coreml"}
    with pytest.raises(ArtifactError, match="model.mlpackage/Manifest.json"):
        validate_manifest(document)
    validate_manifest({**document, "files": {"model.mlpackage/Manifest.json": "0" * 64}})
    with pytest.raises(ArtifactError, match="mobile"):
        validate_manifest({**_manifest(), "mobile": ["ios"]})


def test_an_artifact_without_preprocessing_fields_it_needs_does_not_load(image_artifact, tmp_path):
    manifest = json.loads((image_artifact / "manifest.json").read_text())
    broken = copy.deepcopy(manifest)
    broken["preprocessing"]["std"] = [0.1, 0.1]
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model.onnx").write_bytes((image_artifact / "model.onnx").read_bytes())
    (folder / "manifest.json").write_text(json.dumps(broken))
    with pytest.raises(ArtifactError, match="preprocessing.std"):
        EdgeModel.load(folder)


@pytest.mark.parametrize("resize, crop, resample", [
    ({"height": 224, "width": 224}, None, "bilinear"),
    ({"shortest_edge": 256}, {"height": 224, "width": 224}, "bicubic"),
    ({"shortest_edge": 231}, {"height": 224, "width": 223}, "bilinear"),  # odd crop margins
])  # fmt: skip
def test_tensors_equal_hugging_face_image_processors_on_real_photos(resize, crop, resample):
    """The claim in the module docstring: the geometry and arithmetic of HF's (PIL-based) processors."""
    transformers = pytest.importorskip("transformers")
    datasets = pytest.importorskip("sklearn.datasets")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    config = image_preprocessing(resize=resize, center_crop=crop, resample=resample, mean=mean, std=std)
    filters = {"bilinear": 2, "bicubic": 3}
    if crop is None:
        processor = transformers.ViTImageProcessor(size=resize, resample=filters[resample], image_mean=mean,
                                                   image_std=std)  # fmt: skip
    else:
        processor = transformers.BitImageProcessor(size=resize, crop_size=crop, resample=filters[resample],
                                                   image_mean=mean, image_std=std)  # fmt: skip
    pre = ImagePreprocessor.from_config(config)
    for pixels in datasets.load_sample_images().images:  # two real photos (JPEG) shipped with scikit-learn
        expected = processor(Image.fromarray(pixels), return_tensors="np")["pixel_values"]
        np.testing.assert_allclose(pre([pixels])["pixel_values"], expected, rtol=0, atol=2e-6)
