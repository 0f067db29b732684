"""What a search leaves behind: ``optimize.json`` (schema ``edgekit.optimize/1``), ``optimize.md``,
``report.html`` (the Pareto plot) and the recommended artifact copied to ``recommended/``.

Every file is written atomically; ``recommended/`` is an edgekit output folder (ownership marker),
so a rerun replaces it and a folder edgekit did not write is refused. Names, not local paths."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgekit.optimize.report_html import render_html, verdict
from edgekit.optimize.store import RECOMMENDED_DIR, write_json_atomic, write_text_atomic

SCHEMA = "edgekit.optimize/1"


def document(result: Any, settings: Any, target: Any) -> dict[str, Any]:
    from edgekit import __version__
    from edgekit.convert.sources import public_name
    from edgekit.targets.host import detect_host

    pytorch = (result.bench or {}).get("pytorch_teacher")
    best = result.recommended
    speedup = (pytorch["p50_ms"] / best.p50_ms if pytorch and best and best.p50_source == "final" and best.p50_ms
               else None)  # fmt: skip
    closest = result.closest if best is None else None
    return {
        "schema": SCHEMA,
        "edgekit_version": __version__,
        "host": detect_host().to_dict(),
        "target": target.name,
        "settings": {
            "model": public_name(str(settings.model)),
            "data": public_name(str(settings.data)),
            "train_data": public_name(str(settings.train_data)),
            "max_accuracy_drop": settings.max_accuracy_drop,
            "budget_minutes": settings.budget_minutes,
            "variants": result.plan.variants,
            "students": [m.name for m in result.plan.models],
            "epochs": settings.epochs,
            "max_train_rows": settings.max_train_rows,
            "early_stop": settings.early_stop,
            "students_only": settings.students_only,
            "executor": "ray" if settings.ray else "local",
        },  # fmt: skip
        "teacher_fp32_accuracy": result.anchor,
        "trials": [_trial(e) for e in result.plan.entries.values()],
        "candidates": [c.to_dict() for c in result.candidates],
        "bench": result.bench,
        "pareto": result.pareto,
        "recommended": None
        if best is None
        else {**best.to_dict(), "because": result.because, "speedup_vs_pytorch": speedup},  # fmt: skip
        "closest": None if closest is None else closest.to_dict(),
        "seconds": round(result.seconds, 1),
        "reused_trials": result.reused,
    }


def _trial(entry: Any) -> dict[str, Any]:
    record = entry.record
    return {
        "name": entry.name, "model": entry.model, "stage": entry.stage, "status": entry.status,
        "reason": entry.reason, "key": entry.spec.key if entry.spec else None,
        "wall_seconds": record.wall_seconds if record else None,
        "reference_accuracy": record.reference_accuracy if record else None,
        "distillation": record.distillation if record else None,
        "variants": [{"variant": v.variant, "accuracy": v.accuracy, "passed": v.passed, "size_mb": v.size_mb,
                      "convert_p50_ms": v.convert_p50_ms} for v in record.variants] if record else [],
    }  # fmt: skip


def _cell(value: float | None, digits: int, scale: float = 1.0) -> str:
    return "—" if value is None else f"{value * scale:.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    host = doc["host"]
    lines = [f"# edgekit optimize: {doc['settings']['model']} on {doc['target']}", "",
             f"Budget: {doc['settings']['max_accuracy_drop']:g} accuracy points below the teacher's onnx-fp32 "
             f"accuracy {doc['teacher_fp32_accuracy']:.4f} on {doc['settings']['data']}. Host: {host['cpu_model']} "
             f"({host['usable_cores']} cores; ISA: {', '.join(host['isa_features'])}).", ""]  # fmt: skip
    bench = doc["bench"]
    if bench:
        lines += [
            f"Latency: batch 1, tokenization included, {bench['threads']} threads, {bench['runs']} runs x "
            f"{bench['rounds']} alternating rounds, each variant in its own process ({bench['mode']}).",
            "",
        ]
    lines += ["| candidate | engine | precision | accuracy | Δ pts vs teacher | p50 ms | p50 from | size MB | status |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    pytorch = (bench or {}).get("pytorch_teacher")
    if pytorch:
        lines.append(f"| PyTorch FP32 teacher | pytorch | fp32 | {_cell(pytorch['accuracy'], 4)} | — | "
                     f"{pytorch['p50_ms']:.2f} | final | {_cell(pytorch['size_mb'], 1)} | baseline |")  # fmt: skip
    for name, row in ((bench or {}).get("baselines") or {}).items():
        lines.append(f"| {name} | — | — | {_cell(row['accuracy'], 4)} | — | {row['p50_ms']:.2f} | final | "
                     f"{_cell(row['size_mb'], 1)} | baseline |")  # fmt: skip
    recommended = (doc["recommended"] or {}).get("name")
    for c in sorted(doc["candidates"], key=lambda c: (c["p50_ms"] is None, c["p50_ms"] or 0)):
        mark = " ★ recommended" if c["name"] == recommended else (" · Pareto" if c["name"] in doc["pareto"] else "")
        drop = "—" if c["drop_points"] is None else f"{0.0 - c['drop_points'] + 0.0:+.2f}"
        lines.append(f"| {c['name']} | {c['engine']} | {c['precision']} | {_cell(c['accuracy'], 4)} | {drop} | "
                     f"{_cell(c['p50_ms'], 2)} | {c['p50_source'] or '—'} | {c['size_mb']:.1f} | "
                     f"{c['status']}{mark} |")  # fmt: skip
    lines += ["", "## Trials", "", "| trial | stage | status | wall s | reason |", "|---|---|---|---|---|"]
    for t in doc["trials"]:
        lines.append(f"| {t['name']} | {t['stage']} | {t['status']} | {_cell(t['wall_seconds'], 0)} | "
                     f"{t['reason'] or ''} |")  # fmt: skip
    lines += ["", verdict(doc), ""]
    return "\n".join(lines)


def write_report(result: Any, settings: Any, target: Any, reporter: Any) -> dict[str, Any]:
    doc = document(result, settings, target)
    out = result.out
    if result.recommended is not None:
        publish(out / result.recommended.location, out / RECOMMENDED_DIR)
    else:
        _remove_stale(out / RECOMMENDED_DIR)
    write_json_atomic(out / "optimize.json", doc)
    write_text_atomic(out / "optimize.md", markdown(doc))
    write_text_atomic(out / "report.html", render_html(doc))
    reporter.note(verdict(doc).replace("**", ""))
    return doc


def publish(source: Path, destination: Path) -> None:
    """Copy exactly the files the artifact's manifest lists (verified before and after) into place."""
    from edgekit.artifact import MANIFEST_NAME, load_manifest
    from edgekit.outputs import atomic_directory

    manifest = load_manifest(source, verify=True)
    with atomic_directory(destination, "artifact", [source]) as staging:
        for relative in [*manifest.files, MANIFEST_NAME]:
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, target)
        load_manifest(staging, verify=True)


def _remove_stale(folder: Path) -> None:
    """A recommendation from an earlier run must not outlive a run that recommends nothing."""
    from edgekit.outputs import read_marker

    if folder.is_dir() and (read_marker(folder) or {}).get("kind") == "artifact":
        shutil.rmtree(folder)
