"""report.html: one self-contained page (inline CSS and SVG, no scripts, no network) with the
accuracy/latency scatter of every timed candidate, the Pareto set, the budget line and the tables.
Drawn with the benchmark report's SVG helpers, in its look."""

from __future__ import annotations

from typing import Any

from edgekit.bench.html import PAGE_STYLE, accuracy_range, esc
from edgekit.bench.svg import nice_ticks, place_labels, x_axis, y_axis
from edgekit.optimize.store import RECOMMENDED_DIR

WIDTH, HEIGHT = 820, 380


def pareto_chart(doc: dict[str, Any]) -> str:
    """p50 (x) against accuracy (y); green: the Pareto set, star: the recommendation, red line: the budget."""
    points = [(c["name"], c["p50_ms"], c["accuracy"]) for c in doc["candidates"]
              if c["p50_ms"] is not None and c["accuracy"] is not None and c["p50_ms"] == c["p50_ms"]]  # fmt: skip
    pytorch = (doc["bench"] or {}).get("pytorch_teacher")
    if pytorch and pytorch.get("accuracy") is not None:
        points.append(("PyTorch FP32 teacher", pytorch["p50_ms"], pytorch["accuracy"]))
    if not points:
        return "<p>No candidate was timed (benchmarks off): no accuracy/latency chart.</p>"
    floor = doc["teacher_fp32_accuracy"] - doc["settings"]["max_accuracy_drop"] / 100
    front, best = set(doc["pareto"]), (doc["recommended"] or {}).get("name")
    left, right, top, bottom = 70, WIDTH - 20, 14, HEIGHT - 48
    x_ticks = nice_ticks(0.0, max(p[1] for p in points))
    y_ticks, zoom_note = accuracy_range([p[2] for p in points] + [floor])

    def xy(latency: float, accuracy: float) -> tuple[float, float]:
        x = left + latency / x_ticks[-1] * (right - left)
        return x, bottom - (accuracy - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (bottom - top)

    parts = [f'<svg id="pareto" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="accuracy against latency">',
             x_axis(x_ticks, lambda v: xy(v, y_ticks[0])[0], top, bottom),
             y_axis(y_ticks, lambda v: xy(0.0, v)[1], left, right)]  # fmt: skip
    floor_y = xy(0.0, floor)[1]
    parts.append(
        f'<line class="budget" x1="{left}" y1="{floor_y:.1f}" x2="{right}" y2="{floor_y:.1f}" '
        f'stroke="#d62728" stroke-dasharray="6 4"><title>budget: accuracy {floor:.4f}</title></line>'
    )
    ordered = sorted((p for p in points if p[0] in front), key=lambda p: p[1])
    if len(ordered) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(lat, acc) for _, lat, acc in ordered))
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="#31a354" stroke-dasharray="4 3"/>')
    placed = place_labels([(name, *xy(lat, acc)) for name, lat, acc in points], (left, 0, right - left, bottom))
    for (name, latency, accuracy), (lx, ly, anchor, _) in zip(points, placed, strict=True):
        x, y = xy(latency, accuracy)
        colour = "#31a354" if name in front else ("#1f77b4" if name.startswith("PyTorch") else "#888")
        radius = 7 if name == best else 5
        label = f"★ {name}" if name == best else name
        parts.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}">'
            f"<title>{esc(name)}: {latency:.2f} ms, accuracy {accuracy:.4f}</title></circle>"
            f'<text class="label" x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">{esc(label)}</text>'
        )
    note = f"; {zoom_note}" if zoom_note else ""
    parts.append(f'<text x="{left}" y="{HEIGHT - 8}">p50 latency (ms) →; accuracy ↑; green: Pareto set (accuracy, '
                 f"p50, size); red dashes: the budget{esc(note)}</text>")  # fmt: skip
    return "".join(parts) + "</svg>"


def _table(doc: dict[str, Any]) -> str:
    head = ["candidate", "accuracy", "Δ pts", "p50 ms", "p50 from", "size MB", "status"]
    rows = []
    for c in doc["candidates"]:
        drop = "—" if c["drop_points"] is None else f"{0.0 - c['drop_points'] + 0.0:+.2f}"
        cells = [c["name"], "—" if c["accuracy"] is None else f"{c['accuracy']:.4f}", drop,
                 "—" if c["p50_ms"] is None else f"{c['p50_ms']:.2f}", c["p50_source"] or "—", f"{c['size_mb']:.1f}",
                 c["status"] + (" · Pareto" if c["name"] in doc["pareto"] else "")]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in cells) + "</tr>")
    return "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"


def _trials(doc: dict[str, Any]) -> str:
    rows = ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in (
        t["name"], t["status"], "—" if t["wall_seconds"] is None else f"{t['wall_seconds']:.0f}", t["reason"]))
        + "</tr>" for t in doc["trials"]]  # fmt: skip
    return "<table><tr><th>trial</th><th>status</th><th>wall s</th><th>reason</th></tr>" + "".join(rows) + "</table>"


def render_html(doc: dict[str, Any]) -> str:
    host = doc["host"]
    caption = (f"Budget {doc['settings']['max_accuracy_drop']:g} pts below the teacher's FP32 accuracy "
               f"{doc['teacher_fp32_accuracy']:.4f}; host {host['cpu_model']} ({', '.join(host['isa_features'])}); "
               f"target {doc['target']}.")  # fmt: skip
    line = esc(verdict(doc).replace("**", "").replace("`", ""))
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>edgekit optimize</title>"
            f"<style>{PAGE_STYLE}</style></head><body><h1>edgekit optimize: {esc(doc['settings']['model'])}</h1>"
            f"<p class=\"caption\">{esc(caption)}</p><p><strong>{line}</strong></p>"
            f"<h2>Accuracy against latency</h2>{pareto_chart(doc)}<h2>Candidates</h2>{_table(doc)}"
            f"<h2>Trials</h2>{_trials(doc)}</body></html>\n")  # fmt: skip


def verdict(doc: dict[str, Any]) -> str:
    best = doc["recommended"]
    if best is None:
        closest = doc["closest"]
        near = f" Closest: {closest['name']} at {0.0 - closest['drop_points'] + 0.0:+.2f} pts." if closest else ""
        return f"**No variant within the budget.**{near}"
    times = best["speedup_vs_pytorch"]
    speedup = f", {times:.2f}x faster than the PyTorch FP32 teacher" if times else ""
    return f"**Recommended: {best['name']}** ({best['because']}{speedup}); copied to `{RECOMMENDED_DIR}/`."
