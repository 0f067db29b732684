"""Distillation benchmark: 3- and 2-layer students of the SST-2 MiniLM teacher, each then ORT
dynamic INT8, against the PyTorch FP32 teacher and Optimum's one-line INT8 path.

    python benchmarks/distillation_sst2.py [--rounds 3] [--threads 2] [--max-train-rows N]

Students are distilled by `edgekit convert` (distill stage: layers of the teacher, soft-label
KL at T=2 plus hard-label CE, HF Trainer, best checkpoint by dev accuracy) on SST-2 train,
one epoch by default, cached in ~/.cache/edgekit-benchmarks. Every variant is then timed at
batch 1 on the 872 dev sentences (tokenization included), each in its own process,
alternating over rounds; accuracy on all of dev at batch 1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import CACHE, REPO, SST2, SST2_TEACHER, dump, require
from quantization_sst2 import optimum_anchor

from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import new_document
from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.data import read_text_dataset
from edgekit.progress import ConsoleReporter


def student_bundle(layers: int | None, train_rows: int | None, dev: Path) -> tuple[Path, dict | None, float]:
    """Convert (and for a student, first distil) the teacher; returns the bundle, record, wall time."""
    name = f"student-{layers}" if layers else "teacher"
    fields = {
        "model": str(SST2_TEACHER),
        "out": str(CACHE / "distillation-sst2" / name),
        "data": {"path": str(dev)},
        "variants": ["onnx-fp32", "ort-int8-dynamic"],
        "bench": {"enabled": False},
    }
    if layers:
        work = CACHE / "distillation-sst2" / f"work-{layers}"
        fields["distill"] = {"student_layers": layers, "data": {"path": str(SST2 / "train.tsv")},
                             "max_train_rows": train_rows, "work_dir": str(work)}  # fmt: skip
    started = time.perf_counter()
    result = convert(build_recipe(fields), ConsoleReporter(), resume=True)
    wall = time.perf_counter() - started
    return result.out, (result.summary or {}).get("distillation"), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-train-rows", type=int, default=None, help="distil on a subset (default: all 67,349)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "distillation-sst2.json")
    args = parser.parse_args()

    require(SST2_TEACHER, "The SST-2 teacher")
    dev_path = require(SST2 / "dev.tsv", "SST-2 dev")
    teacher_bundle, _, _ = student_bundle(None, None, dev_path)
    students = {layers: student_bundle(layers, args.max_train_rows, dev_path) for layers in (3, 2)}
    anchor = optimum_anchor(SST2_TEACHER, teacher_bundle / "onnx-fp32", CACHE / "distillation-sst2", False)

    variants = [Variant("teacher-pytorch-fp32", "pytorch", SST2_TEACHER),
                Variant("teacher-ort-int8-dynamic", "artifact", teacher_bundle / "ort-int8-dynamic"),
                Variant("optimum-avx2 (teacher)", "artifact", anchor)]  # fmt: skip
    for layers, (bundle, _, _) in students.items():
        variants += [Variant(f"student{layers}-onnx-fp32", "artifact", bundle / "onnx-fp32"),
                     Variant(f"student{layers}-ort-int8-dynamic", "artifact", bundle / "ort-int8-dynamic")]  # fmt: skip
    dev = read_text_dataset(dev_path)
    settings = BenchSettings(threads=args.threads, runs=len(dev), warmup=50, rounds=args.rounds)
    summaries = run_benchmark(variants, dev, settings, on_progress=lambda m: print(m, flush=True))
    document = new_document({"name": "host", "mode": "measured-on-device"},
                            {**settings.__dict__, "data": "SST-2 dev (872 sentences)"}, summaries)  # fmt: skip
    document["distillation"] = {
        str(k): {"record": rec, "convert_wall_s": wall} for k, (_, rec, wall) in students.items()
    }
    dump(document, args.out)
    text = markdown(document, title="Distillation on SST-2 dev: students vs the teacher and Optimum")
    text += "\n## Distillation runs\n\n```json\n" + json.dumps(document["distillation"], indent=2) + "\n```\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
