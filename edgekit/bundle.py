"""A multi-variant output folder: choose the recommended variant and describe them all.

``summary.json`` (rendered to ``summary.md`` and the terminal table) holds, per variant,
the gate figures, the benchmark on the target and the pre-flight expectation, plus the
name of the recommended variant: the fastest one that passed the accuracy gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.gate import GateReport
from edgekit.preflight import Outlook
from edgekit.variants import REFERENCE, VARIANTS

SIMILAR_WITHIN = 0.05  # latency ratios within 5% are noise on these machines (STACK-NOTES)


@dataclass
class VariantRecord:
    name: str
    engine: str
    precision: str
    size_mb: float
    gate: GateReport | None  # None for the reference
    parity_passed: bool = True
    latency_ms: dict[str, float] | None = None  # p50/p90/p99 from the benchmark
    outlook: Outlook | None = None
    notes: list[str] = field(default_factory=list)
    is_source: bool = False  # the PyTorch checkpoint, timed for comparison; never recommended
    accuracy: float | None = None  # for the source row, from the benchmark harness

    @property
    def passed(self) -> bool:
        return not self.is_source and self.parity_passed and (self.gate is None or self.gate.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "engine": self.engine,
            "precision": self.precision,
            "size_mb": round(self.size_mb, 2),
            "passed": self.passed,
            "parity_passed": self.parity_passed,
            "gate": self.gate.to_dict() if self.gate else None,
            "latency_ms": self.latency_ms,
            "preflight": self.outlook.to_dict() if self.outlook else None,
            "notes": self.notes,
            "is_source": self.is_source,
            "accuracy": self.accuracy if self.is_source else (self.gate.accuracy if self.gate else None),
        }


def choose_recommended(records: list[VariantRecord], outlooks: list[Outlook]) -> tuple[str, str]:
    """(name, why). Measured latency decides; without a benchmark, the pre-flight does."""
    passing = [r for r in records if r.passed]
    artifacts = [r for r in records if not r.is_source]
    if all(r.latency_ms for r in passing):
        quickest = min(passing, key=lambda r: r.latency_ms["median"])
        # Differences under SIMILAR_WITHIN are noise here: among those, keep the most accurate, then the smallest.
        close = [r for r in passing if r.latency_ms["median"] <= quickest.latency_ms["median"] * (1 + SIMILAR_WITHIN)]
        best = min(close, key=lambda r: (r.gate.drop_points if r.gate else 0.0, r.size_mb))
        why = f"fastest variant that passed the gate ({best.latency_ms['median']:.2f} ms p50)"
        if best is not quickest:
            more_accurate = (best.gate.drop_points if best.gate else 0.0) < (
                quickest.gate.drop_points if quickest.gate else 0.0
            )
            why = (
                f"passed the gate, within {SIMILAR_WITHIN:.0%} of the fastest ({quickest.name}, "
                f"{quickest.latency_ms['median']:.2f} vs {best.latency_ms['median']:.2f} ms p50), and "
                + ("more accurate" if more_accurate else "as accurate but smaller")
            )
        fastest = min(artifacts, key=lambda r: r.latency_ms["median"] if r.latency_ms else float("inf"))
        if not fastest.passed and fastest.latency_ms:
            why += f"; {fastest.name} was faster but failed the gate"
        return best.name, why
    expected_faster = {(o.engine, o.precision) for o in outlooks if o.verdict == "faster"}
    for record in passing:
        if (record.engine, record.precision) in expected_faster:
            return record.name, "not benchmarked: first passing variant the pre-flight expects to be faster"
    return REFERENCE, "not benchmarked, and no reduced-precision variant is expected to be faster"


def check_outlook_against_measurement(records: list[VariantRecord]) -> list[str]:
    """Where the benchmark contradicts the pre-flight, say so (the measurement wins)."""
    remarks = []
    fp32 = {r.engine: r for r in records if r.precision == "fp32" and r.latency_ms and not r.is_source}
    for record in records:
        base = fp32.get(record.engine)
        if record.outlook is None or base is None or record is base or not record.latency_ms:
            continue
        speedup = base.latency_ms["median"] / record.latency_ms["median"]
        measured = "faster" if speedup > 1 + SIMILAR_WITHIN else "slower" if speedup < 1 - SIMILAR_WITHIN else "similar"
        record.notes.append(f"measured {speedup:.2f}x vs {base.name} ({measured})")
        if record.outlook.verdict in ("faster", "slower", "similar") and measured != record.outlook.verdict:
            remarks.append(
                f"{record.name}: the pre-flight expected '{record.outlook.verdict}' vs {base.name}, "
                f"measured {speedup:.2f}x ({measured}) on this host"
            )
    return remarks


COLUMNS = ["variant", "engine", "precision", "size MB", "accuracy", "Δ pts", "agreement", "gate", "p50 ms",
           "p90 ms", "speed-up", ""]  # fmt: skip


def _baseline(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Speed-ups are relative to PyTorch when it was timed, else to the FP32 ONNX reference."""
    timed = [v for v in variants if v["latency_ms"]]
    return next((v for v in timed if v["is_source"]), next((v for v in timed if v["name"] == REFERENCE), None))


def _delta(v: dict[str, Any], reference_accuracy: float | None) -> str:
    gate = v["gate"]
    if not gate:
        return "—"
    if gate["basis"] != "accuracy" or reference_accuracy is None:
        return "n/a"
    return f"{(gate['accuracy'] - reference_accuracy) * 100:+.2f}"


def _gate_cell(v: dict[str, Any]) -> str:
    if v["is_source"]:
        return "source"
    if not v["gate"]:
        return "reference"
    return "pass" if v["passed"] else "REJECTED"


def table_rows(summary: dict[str, Any]) -> list[list[str]]:
    variants = summary["variants"]
    base = _baseline(variants)
    reference_accuracy = summary.get("reference_accuracy")
    rows = []
    for v in variants:
        gate, lat = v["gate"], v["latency_ms"]
        accuracy = v["accuracy"] if v["is_source"] or gate else reference_accuracy
        speedup = f"{base['latency_ms']['median'] / lat['median']:.2f}x" if base and lat else "—"
        rows.append(
            [
                v["name"],
                v["engine"],
                v["precision"],
                f"{v['size_mb']:.1f}",
                "—" if accuracy is None else f"{accuracy:.4f}",
                _delta(v, reference_accuracy),
                "—" if v["is_source"] else "1.0000" if not gate else f"{gate['agreement']:.4f}",
                _gate_cell(v),
                "—" if not lat else f"{lat['median']:.2f}",
                "—" if not lat else f"{lat['p90']:.2f}",
                speedup,
                "★ recommended" if v["name"] == summary["recommended"] else "",
            ]
        )
    return rows


def _subject(summary: dict[str, Any]) -> str:
    distilled = summary.get("distillation")
    if distilled:
        return f"the {distilled['student_layers']}-layer student of {summary['source']}"
    return summary["source"]


def markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Variants of {_subject(summary)}", "", _caption(summary), ""]
    lines += ["| " + " | ".join(c or "note" for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(summary)]
    base = _baseline(summary["variants"])
    if base:
        lines += ["", f"Speed-up is relative to {base['name']}; Δ pts and agreement are relative to {REFERENCE}."]
    lines += ["", f"**Recommended: {summary['recommended']}** — {summary['recommended_because']}.", ""]
    if summary.get("distillation"):
        from edgekit.pipeline import describe_distillation

        lines += [f"Distillation: {describe_distillation(summary['distillation'])}.", ""]
    lines += ["## Pre-flight", ""] + [f"- {o['engine']} {o['precision']}: expected **{o['verdict']}** — {o['reason']}"
                                      for o in summary["preflight"]]  # fmt: skip
    if summary["preflight_vs_measured"]:
        lines += ["", "Where the measurement disagreed with the pre-flight:", ""]
        lines += [f"- {remark}" for remark in summary["preflight_vs_measured"]]
    return "\n".join(lines) + "\n"


def _caption(summary: dict[str, Any]) -> str:
    bench = summary.get("bench")
    timing = (
        f"Latency: batch 1, {bench['threads']} threads, tokenization included, {bench['runs']} runs x "
        f"{bench['rounds']} alternating rounds per variant, each in its own process, target "
        f"{summary['target']} ({bench['mode']})."
        if bench
        else "Not benchmarked (--no-bench)."
    )
    gate = summary["gate"]
    return (
        f"Gate: accuracy drop vs {REFERENCE} at most {gate['allowed_drop_points']:.2f} points on "
        f"{gate['rows']} rows of {gate['data']} (batch 1). {timing}"
    )


def rich_table(summary: dict[str, Any]):
    from rich.table import Table

    table = Table(title=f"edgekit convert: variants of {_subject(summary)}", caption=_caption(summary),
                  caption_justify="left")  # fmt: skip
    left = {"variant", "engine", "precision", "gate", ""}
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in left else "right", no_wrap=column == "variant")
    for row in table_rows(summary):
        style = "bold green" if row[-1] else ("red" if row[7] == "REJECTED" else None)
        table.add_row(*row, style=style)
    return table


def describe_kinds() -> str:
    return ", ".join(f"{k.name} ({k.description})" for k in VARIANTS.values())
