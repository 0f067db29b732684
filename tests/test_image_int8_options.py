"""INT8 knobs for CNNs (ORT static QDQ exclusions and activation ranges, NNCF preset and bias
correction), the task-aware pre-flight, image-list fingerprints, the bundle's benchmark shapes and
the factory model's short name. Tiny random models built here; images generated with numpy + PIL.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from image_helpers import RECIPE_SIDE, TWO_LABELS, tiny_cnn_recipe, two_class_images

from edgekit.errors import DataError

LABELS = TWO_LABELS
SIDE = RECIPE_SIDE


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return two_class_images(tmp_path_factory.mktemp("int8-options") / "data")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    import torch

    from edgekit.demo.cnn import tiny_mobilenet

    torch.manual_seed(0)
    model = tiny_mobilenet(num_classes=2, in_channels=3, width=8).eval()
    path = tmp_path_factory.mktemp("tiny-onnx") / "model.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, SIDE, SIDE),), str(path), input_names=["pixel_values"],
                      output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}}, opset_version=17,
                      dynamo=False)  # fmt: skip
    return path


def _float_weight_convs(path: Path) -> set[str]:
    """Conv nodes whose weight is a float initializer fed directly (not through DequantizeLinear)."""
    import onnx

    graph = onnx.load(str(path)).graph
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    return {n.name for n in graph.node if n.op_type == "Conv" and n.input[1] in floats}


def test_static_exclusions_keep_the_chosen_layers_in_fp32(tmp_path, tiny_onnx):
    from edgekit.quantize.ort import StaticTuning, excluded_nodes, quantize_static_int8
    from edgekit.tasks.image_classification import STATIC_OP_TYPES

    rng = np.random.default_rng(0)
    feeds = [{"pixel_values": rng.normal(0, 1, (1, 3, SIDE, SIDE)).astype(np.float32)} for _ in range(8)]
    tuning = StaticTuning(exclude_depthwise=True, exclude_first_conv=True, exclude_last_matmul=True)
    excluded = excluded_nodes(tiny_onnx, tuning)
    assert len(excluded) == 1 + 3 + 1  # the stem, three depthwise convs, the Linear head
    plain, tuned = tmp_path / "plain.onnx", tmp_path / "tuned.onnx"
    args = (feeds, "minmax", list(STATIC_OP_TYPES), True, False, False)
    quantize_static_int8(tiny_onnx, plain, *args)
    quantize_static_int8(tiny_onnx, tuned, *args, tuning=tuning)
    assert _float_weight_convs(plain) == set()  # every Conv quantized by default
    assert _float_weight_convs(tuned) == {name for name in excluded if "Conv" in name}
    symmetric = tmp_path / "symmetric.onnx"
    quantize_static_int8(tiny_onnx, symmetric, *args, tuning=StaticTuning(symmetric_activations=True))
    import onnx

    zero_points = [i for i in onnx.load(str(symmetric)).graph.initializer if i.name.endswith("_zero_point")]
    activation_zeros = [int(onnx.numpy_helper.to_array(z).ravel()[0]) for z in zero_points if z.data_type == 2]
    assert activation_zeros and set(activation_zeros) == {128}  # uint8 centred on zero


def test_leading_convs_stay_fp32_and_a_whole_network_is_refused(tmp_path, tiny_onnx):
    import onnx
    from pydantic import ValidationError

    from edgekit.convert.variants.onnx import StaticOptions
    from edgekit.errors import ExportError
    from edgekit.quantize.ort import StaticTuning, quantize_static_int8
    from edgekit.tasks.image_classification import STATIC_OP_TYPES

    rng = np.random.default_rng(1)
    feeds = [{"pixel_values": rng.normal(0, 1, (1, 3, SIDE, SIDE)).astype(np.float32)} for _ in range(6)]
    args = (feeds, "minmax", list(STATIC_OP_TYPES), True, False, False)
    convs = [n.name for n in onnx.load(str(tiny_onnx)).graph.node if n.op_type == "Conv"]
    leading = tmp_path / "leading.onnx"
    quantize_static_int8(tiny_onnx, leading, *args, tuning=StaticTuning(exclude_leading_convs=2))
    assert _float_weight_convs(leading) == set(convs[:2])  # the first two in FP32, every later Conv INT8
    graph = onnx.load(str(leading)).graph
    assert not [n for n in graph.node if n.op_type == "QuantizeLinear" and "pixel_values" in n.input]
    whole = tmp_path / "whole.onnx"
    with pytest.raises(ExportError, match=f"has {len(convs)} convolutions"):
        quantize_static_int8(tiny_onnx, whole, *args, tuning=StaticTuning(exclude_leading_convs=len(convs)))
    assert not whole.exists()
    with pytest.raises(ValidationError):
        StaticOptions(exclude_leading_convs=-1)


def test_unknown_node_names_and_bad_percentiles_are_refused():
    from pydantic import ValidationError

    from edgekit.convert.variants.onnx import StaticOptions
    from edgekit.convert.variants.openvino import NncfOptions

    with pytest.raises(ValidationError):
        StaticOptions(percentile=50)
    with pytest.raises(ValidationError):
        StaticOptions(exclude_heads=True)  # not an option: extra="forbid"
    with pytest.raises(ValidationError):
        NncfOptions(preset="fastest")
    assert NncfOptions().model_type == "task" and NncfOptions().fast_bias_correction


def test_variant_options_reach_the_quantizers_and_the_manifest(tmp_path, images):
    import json

    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    variants = ["onnx-fp32",
                {"name": "ort-int8-static", "exclude_depthwise": True, "calibration_method": "percentile",
                 "percentile": 99.9, "bias_correction": True},
                {"name": "ov-int8", "preset": "mixed", "fast_bias_correction": False,
                 "model_type": "default"}]  # fmt: skip
    summary = convert(build_recipe(tiny_cnn_recipe(tmp_path / "out", images, variants))).summary
    static = json.loads((tmp_path / "out" / summary.locations["ort-int8-static"] / "manifest.json").read_text())
    build = static["metrics"]["build"]
    assert build["exclude_depthwise"] is True and build["percentile"] == 99.9
    assert build["bias_correction"]["convs"] > 0, build  # the pointwise convs; depthwise ones stayed FP32
    assert _float_weight_convs(tmp_path / "out" / summary.locations["ort-int8-static"] / "model.onnx")
    nncf = json.loads((tmp_path / "out" / summary.locations["ov-int8"] / "manifest.json").read_text())
    assert nncf["metrics"]["build"]["preset"] == "mixed" and nncf["metrics"]["build"]["fast_bias_correction"] is False


def test_bundle_benchmarks_the_profile_batch_sizes(tmp_path, images, monkeypatch):
    from edgekit.convert import bundle
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.targets.profiles import load_target

    seen = {}

    class Stop(Exception):
        pass

    def fake_run_benchmark(variants, inputs, settings, on_progress=None):
        seen["batch_sizes"] = settings.batch_sizes
        raise Stop

    monkeypatch.setattr(bundle, "run_benchmark", fake_run_benchmark)
    recipe = build_recipe({**tiny_cnn_recipe(tmp_path / "out", images, ["onnx-fp32", "ov-fp32"], bench=True),
                           "target": "jetson-orin-nano"})  # fmt: skip
    with pytest.raises(Stop):
        convert(recipe)
    assert seen["batch_sizes"] == tuple(load_target("jetson-orin-nano").benchmark.batch_sizes) == (1, 8)
    assert not (tmp_path / "out").exists()  # never a half-written bundle


def test_convert_times_a_factory_modules_pytorch_baseline(tmp_path, images):
    """`model: {factory: ...}` with the benchmark on (convert's default): the PyTorch row loads the same
    module through a scratch spec folder that never lands in the bundle (it failed as a hub id before)."""
    import json

    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    recipe = build_recipe(tiny_cnn_recipe(tmp_path / "out", images, ["onnx-fp32", "ort-int8-static"], bench=True))
    convert(recipe)
    bench = json.loads((tmp_path / "out" / "bench.json").read_text())
    pytorch = next(row for row in bench["variants"] if row["kind"] == "pytorch")
    assert pytorch["path"] == "edgekit.demo.cnn:tiny_mobilenet" and pytorch["latency_ms"]["median"] > 0
    assert pytorch["model_size_mb"] > 0  # no weights file: the module's own tensors are counted
    assert not list((tmp_path / "out").rglob("model.json"))


def test_preflight_advice_depends_on_the_model_family():
    from edgekit.targets.preflight import outlook

    vnni = ["avx2", "avx512f", "avx512_vnni"]
    text = {(o.engine, o.precision): o for o in outlook("x86_64", vnni, ["onnxruntime", "openvino"])}
    image = {(o.engine, o.precision): o
             for o in outlook("x86_64", vnni, ["onnxruntime", "openvino"], "image-classification")}  # fmt: skip
    assert (
        "ConvInteger" in image["onnxruntime", "int8"].reason and "ConvInteger" not in text["onnxruntime", "int8"].reason
    )
    assert image["onnxruntime", "int8"].verdict == "faster"
    avx2_text = {o.precision: o for o in outlook("x86_64", ["avx2"], ["openvino"])}
    avx2_image = {o.precision: o for o in outlook("x86_64", ["avx2"], ["openvino"], "image-classification")}
    assert avx2_text["int8"].verdict == "slower"  # MiniLM measured slower on AVX2-only
    assert avx2_image["int8"].verdict == "faster"  # EfficientNet-Lite0 measured faster there: its own figure
    assert "EfficientNet" in avx2_image["int8"].reason and "MiniLM" not in avx2_text["int8"].reason.split("(")[0]
    sse_image = {o.precision: o for o in outlook("x86_64", ["sse4_2"], ["openvino"], "image-classification")}
    assert sse_image["int8"].verdict == "unknown"  # no CNN measured without AVX2: no figure carried over


def _listing(folder: Path) -> Path:
    listing = folder / "list.csv"
    with listing.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for label in LABELS:
            for file in sorted((folder / label).glob("*.png")):
                writer.writerow([f"{label}/{file.name}", label])
    return listing


def test_image_list_fingerprint_follows_the_images_it_names(tmp_path):
    import shutil

    from PIL import Image

    from edgekit.image_data import listing_fingerprint

    folder = two_class_images(tmp_path / "data")
    listing = _listing(folder)
    first = listing_fingerprint(listing)
    assert listing_fingerprint(listing) == first
    target = folder / "dark" / "0.png"
    stat = target.stat()
    Image.fromarray(np.full((30, 28), 7, np.uint8), "L").save(target)  # same name, other pixels
    import os

    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime
    assert listing_fingerprint(listing) != first
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)  # a copy (new mtimes, same content) is the same data
    assert listing_fingerprint(copy / "list.csv") == listing_fingerprint(listing)


def test_image_list_fingerprint_refuses_paths_outside_the_folder(tmp_path):
    from edgekit.image_data import listing_fingerprint

    folder = two_class_images(tmp_path / "data")
    (tmp_path / "secret.png").write_bytes((folder / "dark" / "0.png").read_bytes())
    listing = folder / "list.csv"
    listing.write_text("path,label\n../secret.png,dark\n")
    with pytest.raises(DataError, match="leaves the file's folder"):
        listing_fingerprint(listing)
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    listing.write_text("path,label\nlink.png,dark\n")
    with pytest.raises(DataError, match="outside the dataset folder"):
        listing_fingerprint(listing)


def test_factory_model_without_weights_is_named_by_its_factory(tmp_path, images):
    import json

    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    convert(build_recipe(tiny_cnn_recipe(tmp_path / "out", images, ["onnx-fp32", "ov-fp32"])))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["source"] == "edgekit.demo.cnn:tiny_mobilenet"  # not the whole spec, not a crash


def test_image_parity_tolerance_scales_with_the_logits():
    from edgekit.tasks.image_classification import PARITY_RTOL, parity_tolerance

    small = np.array([[0.3, -0.2]], np.float32)
    imagenet_like = np.linspace(-8, 17.5, 1000, dtype=np.float32)[None]
    assert parity_tolerance(1e-4, small) == 1e-4  # text-sized logits: the absolute bound
    assert parity_tolerance(1e-4, imagenet_like) == pytest.approx(PARITY_RTOL * 17.5)
    assert 1.8e-4 <= parity_tolerance(1e-4, imagenet_like) < 1e-2  # the measured rounding passes, a bug does not
    assert parity_tolerance(1e-4, np.zeros((0, 3), np.float32)) == 1e-4


def test_bias_correction_matches_each_int8_convs_mean_output_to_fp32(tmp_path, tiny_onnx):
    """After the pass every quantized conv's mean output per channel equals FP32's on the calibration inputs,
    to within half a bias step (later corrections cannot move an earlier conv); before it, some did not."""
    import onnx
    from onnx import numpy_helper

    from edgekit.quantize.bias_correction import _channel_means, _quantized_convs, correct_conv_biases
    from edgekit.quantize.ort import quantize_static_int8
    from edgekit.tasks.image_classification import STATIC_OP_TYPES

    rng = np.random.default_rng(0)
    feeds = [{"pixel_values": rng.uniform(-2, 2, (1, 3, SIDE, SIDE)).astype(np.float32)} for _ in range(12)]
    target = tmp_path / "int8.onnx"
    quantize_static_int8(tiny_onnx, target, feeds, "minmax", list(STATIC_OP_TYPES), True, False, False)
    fp32 = onnx.load(str(tiny_onnx))
    fp32_outputs = {n.name: n.output[0] for n in fp32.graph.node if n.op_type == "Conv"}

    def gaps() -> list[np.ndarray]:
        model = onnx.load(str(target))
        convs = _quantized_convs(model)
        steps = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        ours = _channel_means(model, [c.output for c in convs], feeds)
        theirs = _channel_means(fp32, [fp32_outputs[c.node] for c in convs], feeds)
        return [np.abs(a - b) / steps[c.bias_scale] for a, b, c in zip(ours, theirs, convs, strict=True)]

    assert any((gap > 0.51).any() for gap in gaps()), "INT8 shifted no channel mean: the test would prove nothing"
    record = correct_conv_biases(tiny_onnx, target, feeds)
    assert record["convs"] == len(gaps()) > 0 and record["calibration_samples"] == 12
    assert all((gap <= 0.51).all() for gap in gaps())


def test_bias_correction_leaves_a_model_without_int8_convs_alone_and_needs_inputs(tmp_path, tiny_onnx):
    from edgekit.errors import ExportError
    from edgekit.quantize.bias_correction import correct_conv_biases

    copy = tmp_path / "fp32.onnx"
    copy.write_bytes(tiny_onnx.read_bytes())
    assert correct_conv_biases(tiny_onnx, copy, [{"pixel_values": np.zeros((1, 3, SIDE, SIDE), np.float32)}]) == {
        "convs": 0
    }
    assert copy.read_bytes() == tiny_onnx.read_bytes()
    with pytest.raises(ExportError, match="calibration inputs"):
        correct_conv_biases(tiny_onnx, copy, [])
