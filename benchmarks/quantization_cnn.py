"""Which INT8 settings keep a fine-tuned CNN within 1 point of FP32: EfficientNet-Lite0 fine-tuned on
the image quickstart's digits (``benchmarks/image_efficientnet.py --build-only`` makes it), every
setting built by edgekit's own variant kinds with their documented options, scored on the 355
held-out digit scans.

    python benchmarks/quantization_cnn.py [--bundle DIR] [--calibration 100]

For each setting: top-1 on the held-out digits, the drop vs the ONNX FP32 reference (points),
agreement of top-1 with that reference, the build time. Calibration: ``--calibration`` training
images (seeded), pre-processed by the runtime as a device would; ``calibration_samples`` settings
vary it. The digits' training split is never scored, the held-out split never calibrates.
No timing here (``image_efficientnet.py`` times the recommended variants under the quiet lock).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import CACHE, REPO, dump

# op_types None: the image task's default; reduce_range None: the host profile's choice (on where x86 has no
# VNNI: AVX2's u8*s8 products saturate 16-bit sums, which cost ImageNet labels: docs/images.md)
BASE = {"per_channel": True, "reduce_range": None, "op_types": None}
# (label, variant kind, options, calibration images): each a real option of the variant (docs/recipes.md).
SETTINGS: list[tuple[str, str, dict[str, Any], int | None]] = [
    ("ORT static, task operator set, minmax (default)", "ort-int8-static", {}, None),
    ("ORT static, per-tensor weights", "ort-int8-static", {"per_channel": False}, None),
    ("ORT static, Conv only", "ort-int8-static", {"op_types": ["Conv"]}, None),
    ("ORT static, stem conv FP32", "ort-int8-static", {"exclude_first_conv": True}, None),
    ("ORT static, depthwise convs FP32", "ort-int8-static", {"exclude_depthwise": True}, None),
    ("ORT static, head FP32", "ort-int8-static", {"exclude_last_matmul": True}, None),
    (
        "ORT static, stem + head FP32",
        "ort-int8-static",
        {"exclude_first_conv": True, "exclude_last_matmul": True},
        None,
    ),
    ("ORT static, symmetric activations", "ort-int8-static", {"symmetric_activations": True}, None),
    ("ORT static, percentile 99.999", "ort-int8-static", {"calibration_method": "percentile"}, None),
    (
        "ORT static, percentile 99.99",
        "ort-int8-static",
        {"calibration_method": "percentile", "percentile": 99.99},
        None,
    ),
    ("ORT static, entropy", "ort-int8-static", {"calibration_method": "entropy"}, None),
    ("ORT static, 32 calibration images", "ort-int8-static", {}, 32),
    ("ORT static, 300 calibration images", "ort-int8-static", {}, 300),
    ("ORT dynamic, per-channel", "ort-int8-dynamic", {"per_channel": True, "reduce_range": False}, None),
    ("NNCF, default scheme (task)", "ov-int8", {}, None),
    ("NNCF, preset mixed", "ov-int8", {"preset": "mixed"}, None),
    ("NNCF, preset performance", "ov-int8", {"preset": "performance"}, None),
    ("NNCF, fast_bias_correction false", "ov-int8", {"fast_bias_correction": False}, None),
    ("NNCF, mixed + fast_bias_correction false", "ov-int8", {"preset": "mixed", "fast_bias_correction": False}, None),
    ("NNCF, model_type transformer", "ov-int8", {"model_type": "transformer"}, None),
    ("NNCF, 300 calibration images", "ov-int8", {}, 300),
]


def held_out_logits(model_dir: Path, test: Any) -> np.ndarray:
    from edgekit.runtime import EdgeModel

    model = EdgeModel.load(model_dir)
    return np.concatenate([model.logits(test.texts[i : i + 64]) for i in range(0, len(test.texts), 64)])


def build(kind_name: str, options: dict[str, Any], reference: Path, calibration: list[str], folder: Path,
          source: Any = None) -> dict:  # fmt: skip
    """One variant built by its registered kind, then packaged and sealed as ``convert`` would. ``source``:
    the loaded PyTorch model, for options that fine-tune it (``qat``)."""
    from edgekit.convert.packaging import package_variant
    from edgekit.convert.variants import get_variant
    from edgekit.convert.variants.registry import BuildContext
    from edgekit.outputs import atomic_directory
    from edgekit.targets.profiles import load_target

    kind = get_variant(kind_name)
    given = {**({k: v for k, v in BASE.items() if k in kind.Options.model_fields and v is not None}), **options}
    if kind_name == "ort-int8-static" and "op_types" not in given:
        from edgekit.tasks.image_classification import STATIC_OP_TYPES

        given["op_types"] = list(STATIC_OP_TYPES)
    ctx = BuildContext(reference, load_target("host"), calibration, source=source, task="image-classification")
    started = time.perf_counter()
    with atomic_directory(folder) as staging:
        output = kind.build(ctx, staging, kind.Options(**given))
        package_variant(reference, staging, kind, output.model_file)
    return {"options": given, "build_s": round(time.perf_counter() - started, 1), "settings": output.settings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="default: the newest image-efficientnet bundle")
    parser.add_argument("--calibration", type=int, default=100)
    parser.add_argument("--only", default=None, help="comma-separated setting numbers (1-based) to run")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "quantization-cnn.json")
    args = parser.parse_args()
    from edgekit.image_data import read_image_dataset

    work = CACHE / "image-efficientnet"
    bundle = args.bundle or max(work.glob("bundle-model-*-whole*"), key=lambda p: p.stat().st_mtime)
    reference = bundle / "onnx-fp32"
    train, test = read_image_dataset(work / "digits" / "train"), read_image_dataset(work / "digits" / "test")
    from edgekit.artifact import read_manifest

    labels = np.asarray(test.label_ids(read_manifest(reference).labels))
    fp32 = held_out_logits(reference, test)
    fp32_top1 = float((fp32.argmax(-1) == labels).mean())
    print(f"onnx-fp32 top-1 {fp32_top1:.4f} on {len(labels)} held-out digits ({bundle.name})", flush=True)
    rows: list[dict] = []
    chosen = {int(x) for x in args.only.split(",")} if args.only else None
    sweep = work / "sweep" / bundle.name
    sweep.mkdir(parents=True, exist_ok=True)
    for number, (label, kind_name, options, samples) in enumerate(SETTINGS, 1):
        if chosen and number not in chosen:
            continue
        calibration = random.Random(0).sample(train.texts, min(samples or args.calibration, len(train)))
        folder = sweep / f"setting-{number:02d}"
        try:
            record = build(kind_name, options, reference, calibration, folder) if not folder.exists() else {}
        except Exception as exc:  # a setting that fails to build is a result too
            rows.append({"setting": label, "variant": kind_name, "error": str(exc)[:300]})
            print(json.dumps(rows[-1]), flush=True)
            continue
        logits = held_out_logits(folder, test)
        top1 = float((logits.argmax(-1) == labels).mean())
        rows.append({"number": number, "setting": label, "variant": kind_name, "options": options,
                     "calibration_images": len(calibration), "top1": round(top1, 4),
                     "drop_pts": round(100 * (fp32_top1 - top1), 2),
                     "agreement": round(float((logits.argmax(-1) == fp32.argmax(-1)).mean()), 4),
                     "build_s": record.get("build_s"),
                     "size_mb": round(sum(f.stat().st_size for f in folder.iterdir()) / 1e6, 2)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        write(args.out, bundle.name, fp32_top1, len(labels), rows)  # after each setting: a partial run counts


def write(out: Path, bundle_name: str, fp32_top1: float, held_out: int, rows: list[dict]) -> None:
    dump({"bundle": bundle_name, "fp32_top1": fp32_top1, "held_out": held_out, "settings": rows}, out)
    lines = [f"# INT8 settings for EfficientNet-Lite0 fine-tuned on the digits ({bundle_name})", "",
             f"ONNX FP32 top-1 {fp32_top1:.4f} on {held_out} held-out digits.", "",
             "| # | setting | variant | top-1 | drop (pts) | agreement | build s | MB |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        if "error" in row:
            lines.append(f"| | {row['setting']} | {row['variant']} | failed: {row['error'][:80]} | | | | |")
            continue
        lines.append(f"| {row['number']} | {row['setting']} | {row['variant']} | {row['top1']:.4f} | "
                     f"{row['drop_pts']:+.2f} | {row['agreement']:.4f} | {row['build_s']} | "
                     f"{row['size_mb']} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
