"""A bundle's ``summary.json``, typed: what was built, gated, measured and recommended.

The document is written by ``convert.bundle`` and read by the CLI, the quickstart, reuse
checks and reports through ``BundleSummary``, never by key. The runtime reads only the few
fields it needs (``locations``, ``recommended``) with ``edgekit.artifact.read_summary``.
It renders to ``summary.md`` and the terminal table here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.artifact import bundle_variant_dir, read_summary
from edgekit.convert.variants import REFERENCE
from edgekit.errors import ArtifactError


@dataclass
class BundleSummary:
    source: str  # the model's name or hub id (never a build-machine path)
    target: str
    recipe_hash: str
    weights_sha256: str | None
    distillation: dict[str, Any] | None
    recommended: str
    recommended_because: str
    reference_accuracy: float | None
    gate: dict[str, Any]  # allowed_drop_points, rows, data, labelled, reference_under_change (images)
    bench: dict[str, Any] | None  # threads, runs, rounds, mode, caveats; None when not benchmarked
    preflight: list[dict[str, Any]]
    preflight_vs_measured: list[str]
    built: list[str]  # the artifacts written (passing and rejected)
    locations: dict[str, str]  # variant -> folder relative to the bundle
    variants: list[dict[str, Any]]  # one VariantRecord.to_dict() per row, the PyTorch source first when timed
    # variant -> sha256 of its manifest.json: the runtime checks a variant against it, so a pin on
    # summary.json covers every file of every variant (edgekit.artifact.MANIFEST_DIGESTS)
    manifest_sha256: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know, kept on rewrite

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        return {**document.pop("extra"), **document}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BundleSummary:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        fields = dataclasses.fields(cls)
        required = {f.name for f in fields if f.default is f.default_factory is dataclasses.MISSING}
        missing = required - set(document)
        if missing:
            raise ArtifactError(f"summary.json lacks {sorted(missing)}; re-run `edgekit convert`.")
        known = {k: v for k, v in document.items() if k in names}
        return cls(**known, extra={k: v for k, v in document.items() if k not in names})

    @classmethod
    def read(cls, root: Path) -> BundleSummary:
        """summary.json as the runtime checks it (a plain file, locations confined), then typed."""
        return cls.from_dict(read_summary(root))

    def variant_dir(self, root: Path, name: str) -> Path:
        """A variant's folder inside the bundle at ``root`` (confined: no link, no escape)."""
        return bundle_variant_dir(root, {"locations": self.locations}, name)

    def variant(self, name: str) -> dict[str, Any]:
        return next(v for v in self.variants if v["name"] == name)

    @property
    def rejected(self) -> list[str]:
        """Variants the gate refused (not those it could not run here: see ``not_runnable``)."""
        refused = [v for v in self.variants if not v["passed"] and not v["is_source"] and not v.get("not_runnable")]
        return [v["name"] for v in refused]

    @property
    def not_runnable(self) -> dict[str, str]:
        """Variant -> why this machine could not run it (built, sealed, never gated or recommended)."""
        return {v["name"]: v["not_runnable"] for v in self.variants if v.get("not_runnable")}


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


def _agreement_cell(v: dict[str, Any]) -> str:
    if v["is_source"] or v.get("not_runnable"):
        return "—"
    return "1.0000" if not v["gate"] else f"{v['gate']['agreement']:.4f}"


def _gate_cell(v: dict[str, Any]) -> str:
    if v["is_source"]:
        return "source"
    if v.get("not_runnable"):  # summaries from before the field lack the key
        return f"not runnable here: {v['not_runnable']}"
    if not v["gate"]:
        return "reference"
    return "pass" if v["passed"] else "REJECTED"


def table_rows(summary: BundleSummary) -> list[list[str]]:
    variants = summary.variants
    base = _baseline(variants)
    reference_accuracy = summary.reference_accuracy
    rows = []
    for v in variants:
        gate, lat = v["gate"], v["latency_ms"]
        accuracy = v["accuracy"] if v["is_source"] or gate or v.get("not_runnable") else reference_accuracy
        speedup = f"{base['latency_ms']['median'] / lat['median']:.2f}x" if base and lat else "—"
        rows.append(
            [
                v["name"],
                v["engine"],
                v["precision"],
                f"{v['size_mb']:.1f}",
                "—" if accuracy is None else f"{accuracy:.4f}",
                _delta(v, reference_accuracy),
                _agreement_cell(v),
                _gate_cell(v),
                "—" if not lat else f"{lat['median']:.2f}",
                "—" if not lat else f"{lat['p90']:.2f}",
                speedup,
                "★ recommended" if v["name"] == summary.recommended else "",
            ]
        )
    return rows


def _subject(summary: BundleSummary) -> str:
    distilled = summary.distillation
    if distilled:
        return f"the {distilled['student_layers']}-layer student of {summary.source}"
    return summary.source


def markdown(summary: BundleSummary) -> str:
    lines = [f"# Variants of {_subject(summary)}", "", _caption(summary), ""]
    lines += ["| " + " | ".join(c or "note" for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(summary)]
    base = _baseline(summary.variants)
    if base:
        lines += ["", f"Speed-up is relative to {base['name']}; Δ pts and agreement are relative to {REFERENCE}."]
    lines += ["", f"**Recommended: {summary.recommended}** — {summary.recommended_because}.", ""]
    if summary.distillation:
        from edgekit.convert.distillation import describe_distillation

        lines += [f"Distillation: {describe_distillation(summary.distillation)}.", ""]
    lines += ["## Pre-flight", ""] + [f"- {o['engine']} {o['precision']}: expected **{o['verdict']}** — {o['reason']}"
                                      for o in summary.preflight]  # fmt: skip
    if summary.preflight_vs_measured:
        lines += ["", "Where the measurement disagreed with the pre-flight:", ""]
        lines += [f"- {remark}" for remark in summary.preflight_vs_measured]
    return "\n".join(lines) + "\n"


def _caption(summary: BundleSummary) -> str:
    bench = summary.bench
    timing = (
        f"Latency: batch 1, {bench['threads']} threads, tokenization included, {bench['runs']} runs x "
        f"{bench['rounds']} alternating rounds per variant, each in its own process, target "
        f"{summary.target} ({bench['mode']})."
        if bench
        else "Not benchmarked (--no-bench)."
    )
    gate = summary.gate
    floor = ""
    if stable := gate.get("reference_under_change"):
        top5 = f", top-5 overlap {stable['top5_overlap']:.4f}" if "top5_overlap" in stable else ""
        floor = f" {REFERENCE} against itself with {stable['change']}: agreement {stable['agreement']:.4f}{top5}."
    return (
        f"Gate: accuracy drop vs {REFERENCE} at most {gate['allowed_drop_points']:.2f} points on "
        f"{gate['rows']} rows of {gate['data']} (batch 1).{floor} {timing}"
    )


def rich_table(summary: BundleSummary):
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
