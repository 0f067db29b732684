"""The Markdown of benchmarks/results/mpnet-sst2.json (written by benchmarks/mpnet_sst2.py).

python benchmarks/mpnet_report.py    # re-render the .md from the .json, no measuring
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.bench.report import markdown

RESULTS = Path(__file__).resolve().parent / "results" / "mpnet-sst2.json"


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _training_s(model: dict, document: dict) -> str:
    if model["layers"]:
        record = model["distillation"]
        if record.get("resumed"):  # the run that did the steps was interrupted; its time is not on record
            return f"{record['train_seconds']:.0f} (distil, resumed from {record['resumed_from']})"
        return f"{record['train_seconds']:.0f} (distil)"
    if model["family"] == "mpnet":
        return f"{document['build']['teacher_training']['train_seconds']:.0f} (fine-tune)"
    return "earlier (given)"


def comparison_rows(document: dict) -> list[str]:
    """One row per timed variant: gate accuracy (872 dev, batch 1), drop vs its family's teacher, latency."""
    timed = {v["name"]: v for v in document["variants"]}
    teachers = {m["family"]: m["variants"]["onnx-fp32"]["accuracy"] for m in document["build"]["models"]
                if not m["layers"]}  # fmt: skip
    lines = ["| model | layers | variant | dev accuracy | drop vs its teacher (pts) | p50 ms | p90 ms | size MB "
             "| parameters (M) | training wall s |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for model in document["build"]["models"]:
        for kind, variant in model["variants"].items():
            bench = timed.get(f"{model['name']}-{kind}")
            if bench is None:
                continue
            drop = None if variant["accuracy"] is None else (teachers[model["family"]] - variant["accuracy"]) * 100
            lat = bench["latency_ms"]
            layers = model["layers"] or (12 if model["family"] == "mpnet" else 6)
            lines.append(
                f"| {model['name']} | {layers} | {kind} | {_fmt(variant['accuracy'], '.4f')} | {_fmt(drop, '+.2f')} "
                f"| {lat['median']:.2f} | {lat['p90']:.2f} | {_fmt(variant['size_mb'], '.1f')} "
                f"| {model['parameters'] / 1e6:.1f} | {_training_s(model, document)} |"
            )
    return lines


def earlier_minilm_lines(document: dict) -> list[str]:
    earlier = document.get("earlier_minilm_students")
    if not earlier:
        return []
    lines = ["", "MiniLM-L6 students from an earlier run (benchmarks/results/distillation-sst2.json: distilled on all "
             "67,349 train rows, 1 epoch; not re-measured here):", "",
             "| student | layers | dev accuracy (PyTorch, best checkpoint) | teacher | train rows | distil wall s |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for layers, entry in earlier.items():
        r = entry["record"]
        lines.append(f"| minilm-student{layers} | {layers} | {r['student_accuracy']:.4f} | {r['teacher_accuracy']:.4f} "
                     f"| {r['train_rows']} | {r['train_seconds']:.0f} |")  # fmt: skip
    return lines


def render(document: dict) -> str:
    training = document["build"]["teacher_training"]
    weights = training["base_weights"]
    lines = [
        "# A large teacher made small: MPNet-base vs MiniLM-L6 on SST-2 dev",
        "",
        "Written by `benchmarks/mpnet_sst2.py`. MPNet-base (all-mpnet-base-v2, 12 x 768, "
        f"{weights['parameters_with_2_label_head'] / 1e6:.1f}M parameters with the head; weights "
        f"{weights['weights_bytes']:,} bytes, sha256 `{weights['weights_sha256'][:16]}…`) fine-tuned with a fresh "
        f"2-label head on {training['train_rows']:,} seeded SST-2 train rows ({training['epochs']:g} epoch, "
        f"{training['steps']} steps, max length 64, lr {training['learning_rate']:g}); students are layers of it "
        f"distilled on {training.get('distill_rows', training['train_rows']):,} seeded train rows. Accuracy: "
        "edgekit's gate on all 872 dev sentences at batch 1; drop is against "
        "the family's FP32 ONNX teacher. Latency: batch 1, tokenization included, its own process per variant, "
        "alternating over rounds. Training wall times are on 2 shared CPU cores.",
        "",
        *comparison_rows(document),
        *earlier_minilm_lines(document),
        "",
        "## Harness table",
        "",
        "Its agreement column compares label names with the MPNet teacher's (`0`/`1`, from the data file); the "
        "MiniLM teacher names its labels `negative`/`positive`, so its 0.0000 there is a naming difference, not "
        "disagreement (its accuracy is in the same table).",
        "",
        markdown(document, title="Latency details").split("\n", 1)[1],
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = render(json.loads(RESULTS.read_text()))
    RESULTS.with_suffix(".md").write_text(text)
    print(text)
