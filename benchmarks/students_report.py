"""Markdown for results/students-sst2.json: one row per student (what was dropped, pruned and
which losses taught it) with its PyTorch and INT8 dev accuracy, size, parameters, distillation
time and INT8 batch-1 p50, then the harness's own latency table."""

from __future__ import annotations

from typing import Any

from edgekit.bench.report import markdown


def _shape(model: dict) -> tuple[str, str, str, str]:
    record = model.get("distillation") or {}
    distill = model.get("distill") or {}
    pruning = record.get("pruning") or {}
    layers = f"{record['student_layers']} {record['layer_map']}" if record else "6 (teacher)"
    weights = distill.get("weights") or {}
    losses = "KL+CE" + "".join(f"+{k}" for k in ("hidden", "attention") if weights.get(k))
    return layers, pruning.get("heads_per_layer", "12 of 12"), pruning.get("ffn_width", "1536 of 1536"), losses


def students_table(document: dict[str, Any]) -> list[str]:
    timed = {v["name"].removesuffix("-int8"): v for v in document["variants"]}
    teacher_p50 = (timed.get("teacher") or {}).get("latency_ms", {}).get("median")
    lines = [
        "| model | layers [map] | heads/layer | FFN width | losses | params M | INT8 MB | PyTorch dev acc | "
        "INT8 dev acc (gate) | INT8 p50 ms | vs teacher INT8 | distil s |",
        "|" + "|".join("---" for _ in range(12)) + "|",
    ]
    for model in document["build"]["models"]:
        record = model.get("distillation") or {}
        int8 = model["variants"].get("ort-int8-dynamic", {})
        fp32 = model["variants"].get("onnx-fp32", {})
        pytorch = record.get("student_accuracy", record.get("teacher_accuracy")) if record else fp32.get("accuracy")
        p50 = (timed.get(model["name"]) or {}).get("latency_ms", {}).get("median")
        speed = f"{teacher_p50 / p50:.2f}x" if p50 and teacher_p50 else "-"
        seconds = f"{record['train_seconds']:.0f}" if record.get("train_seconds") else "-"
        cells = [model["name"], *_shape(model), f"{model['parameters'] / 1e6:.1f}", _num(int8.get("size_mb"), 1),
                 _num(pytorch, 4), _num(int8.get("accuracy"), 4), _num(p50, 2), speed, seconds]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(document: dict[str, Any]) -> str:
    rows, steps = document["build"]["train_rows"], document["build"].get("max_steps")
    budget = f"{steps} steps of batch 32 ({steps * 32} rows seen)" if steps else "1 epoch, batch 32"
    lines = [
        "# Students of the SST-2 MiniLM-L6 teacher: layers, heads, FFN width, losses",
        "",
        f"Transfer data: a seeded {rows}-row subset of SST-2 train, {budget}, max length 64; "
        "dev: SST-2 dev (872). PyTorch dev acc: the distillation's best checkpoint; INT8 dev acc: the "
        "ort-int8-dynamic artifact at batch 1 (the accuracy gate). p50: batch 1, tokenization included.",
        "",
        *students_table(document),
        "",
        markdown(document, "INT8 latency, every student and the teacher interleaved"),
    ]
    return "\n".join(lines) + "\n"
