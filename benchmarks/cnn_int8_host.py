"""What INT8 does for a CNN on this host: EfficientNet-Lite0 (ImageNet head, 224 px) through ``edgekit convert``
with every engine's FP32 and INT8, benchmarked by convert's own harness (each variant in its own process,
rounds alternating, batch 1, decode and pre-processing included), next to PyTorch FP32.

    python benchmarks/cnn_int8_host.py [--rounds 3] [--runs 100]

The pre-flight's CNN advice per ISA class (``edgekit/targets/preflight.py``) quotes these runs. INT8 settings
are the variants' defaults on this host's profile (ORT static QDQ over every operator, per-channel weights,
``reduce_range`` where x86 has no VNNI; NNCF's default CNN scheme). Calibration and timing inputs: the 96
augmented crops of scikit-image's photos that ``imagenet_int8.py`` calibrates on. No labels: the gate's
agreement with FP32 is the accuracy figure. Results: ``results/cnn-int8-<ISA class>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import REPO, dump
from image_efficientnet import IMAGENET_SPEC, convert_variants
from imagenet_int8 import WORK, calibration_set

VARIANTS = ["onnx-fp32", "ort-int8-static", "ov-fp32", "ov-int8"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None, help="default: results/cnn-int8-<ISA class>.json")
    args = parser.parse_args()
    from edgekit.targets.preflight import isa_class
    from edgekit.targets.profiles import load_target

    host = load_target("host")
    cls = isa_class(host.arch, host.isa_features)
    data = Path(calibration_set("other-96")[0]).parent
    out = WORK / f"host-speed-{cls}"
    shutil.rmtree(out, ignore_errors=True)  # a timing run: never reuse an earlier bundle's figures
    bench = {"enabled": True, "rounds": args.rounds, "runs": args.runs, "threads": 2}
    bundle = convert_variants(IMAGENET_SPEC, data, out, VARIANTS, atol=1e-3, gate={"max_accuracy_drop": 100.0},
                              quantization={"calibration": {"samples": 96}}, bench=bench)  # fmt: skip
    summary = json.loads((bundle / "summary.json").read_text())
    document = {"host": {"isa_class": cls, "isa_features": list(host.isa_features)}, "summary": summary}
    target = args.out or REPO / "benchmarks" / "results" / f"cnn-int8-{cls}.json"
    dump(document, target)
    report = bundle / "summary.md"
    header = [f"# EfficientNet-Lite0 (ImageNet, 224 px) FP32 vs INT8 on {cls}", "",
              f"Host flags: {', '.join(host.isa_features)}. `python benchmarks/cnn_int8_host.py --rounds "
              f"{args.rounds} --runs {args.runs}`; convert's own report follows.", ""]  # fmt: skip
    target.with_suffix(".md").write_text("\n".join(header) + (report.read_text() if report.exists() else "") + "\n")
    print(target.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
