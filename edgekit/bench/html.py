"""A self-contained HTML report (inline CSS and SVG, no scripts, no network) rendered from a
benchmark results document only: latency ranges per variant, accuracy against latency with
the Pareto front, and memory and size bars."""

from __future__ import annotations

import html
from typing import Any

from edgekit.bench.report import (
    COLD_START_TITLE,
    COLUMNS,
    SHAPES_TITLE,
    Table,
    caption,
    cold_start_table,
    emulated_items,
    estimate_table,
    estimate_title,
    header,
    headline,
    memory_caps,
    rows,
    shape_table,
)
from edgekit.bench.svg import nice_ticks, place_labels, x_axis, y_axis

WIDTH, ROW, LEFT = 760, 28, 190
PAGE_STYLE = """  # shared by every edgekit HTML report
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#222;max-width:80rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
td:first-child,th:first-child{text-align:left}svg{display:block;margin:.5rem 0 1.5rem}
.caption{color:#555}text{font:12px system-ui,sans-serif}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the (name, latency, accuracy) points no other point beats on both counts."""
    front = []
    for name, latency, accuracy in points:
        dominated = any((l2 <= latency and a2 >= accuracy) and (l2 < latency or a2 > accuracy) for _, l2, a2 in points)
        if not dominated:
            front.append(name)
    return front


def _latency_chart(variants: list[dict[str, Any]]) -> str:
    ticks = nice_ticks(0.0, max(v["latency_ms"]["p99"] for v in variants))
    scale = (WIDTH - LEFT - 30) / ticks[-1]
    bottom = 20 + ROW * len(variants)
    height = bottom + 44

    def to_x(ms: float) -> float:
        return LEFT + ms * scale

    parts = [f'<svg id="latency" width="{WIDTH}" height="{height}" role="img" aria-label="latency per variant">',
             x_axis(ticks, to_x, 12, bottom, "")]  # fmt: skip
    for i, v in enumerate(variants):
        lat, y = v["latency_ms"], 20 + i * ROW
        x = {k: to_x(lat[k]) for k in ("min", "median", "p90", "p99")}
        parts += [
            f'<text x="{LEFT - 8}" y="{y + 14}" text-anchor="end">{esc(v["name"])}</text>',
            f'<line x1="{x["min"]:.1f}" y1="{y + 10}" x2="{x["p99"]:.1f}" y2="{y + 10}" stroke="#999"/>',
            f'<rect x="{x["median"]:.1f}" y="{y + 3}" width="{max(x["p90"] - x["median"], 1):.1f}" '
            f'height="14" fill="#9ecae1"><title>p50 {lat["median"]:.2f} ms, p90 {lat["p90"]:.2f}, '
            f"p99 {lat['p99']:.2f}</title></rect>",
            f'<line x1="{x["median"]:.1f}" y1="{y + 1}" x2="{x["median"]:.1f}" y2="{y + 19}" '
            'stroke="#08519c" stroke-width="2"/>',
        ]
    parts.append(f'<text x="{LEFT}" y="{height - 6}">latency (ms): min–p99 line, p50–p90 box, p50 mark</text>')
    return "".join(parts) + "</svg>"


def accuracy_range(accuracies: list[float]) -> tuple[list[float], str]:
    """Y ticks zoomed on the measured accuracies (ties get a band around them), and a note when
    the axis does not start at 0, so a small difference is not read as a large one."""
    lo, hi = min(accuracies), max(accuracies)
    margin = max((hi - lo) * 0.15, 0.005)
    ticks = nice_ticks(max(0.0, lo - margin), min(1.0, hi + margin), 4)
    note = f"accuracy axis zoomed: it starts at {ticks[0]:g}, not 0" if ticks[0] > 0 else ""
    return ticks, note


def _pareto_chart(variants: list[dict[str, Any]]) -> str:
    points = [(v["name"], v["latency_ms"]["median"], v["accuracy"]) for v in variants if v.get("accuracy") is not None]
    if not points:
        return "<p>No accuracy measured (the data had no labels): no accuracy/latency chart.</p>"
    front = set(pareto_front(points))
    width, height, left, right, top, bottom = WIDTH, 340, 70, WIDTH - 20, 14, 340 - 48
    x_ticks = nice_ticks(0.0, max(p[1] for p in points))
    y_ticks, zoom_note = accuracy_range([p[2] for p in points])

    def xy(latency: float, accuracy: float) -> tuple[float, float]:
        x = left + latency / x_ticks[-1] * (right - left)
        return x, bottom - (accuracy - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (bottom - top)

    parts = [f'<svg id="pareto" width="{width}" height="{height}" role="img" aria-label="accuracy against latency">',
             x_axis(x_ticks, lambda v: xy(v, y_ticks[0])[0], top, bottom),
             y_axis(y_ticks, lambda v: xy(0.0, v)[1], left, right)]  # fmt: skip
    ordered = sorted((p for p in points if p[0] in front), key=lambda p: p[1])
    if len(ordered) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(lat, acc) for _, lat, acc in ordered))
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="#31a354" stroke-dasharray="4 3"/>')
    placed = place_labels([(name, *xy(lat, acc)) for name, lat, acc in points], (left, 0, right - left, bottom))
    for (name, latency, accuracy), (lx, ly, anchor, _) in zip(points, placed, strict=True):
        x, y = xy(latency, accuracy)
        colour = "#31a354" if name in front else "#888"
        if abs(ly - 4 - y) > 16:  # moved away from its point to avoid a neighbour: a leader line says whose it is
            parts.append(f'<line class="leader" x1="{x:.1f}" y1="{y:.1f}" x2="{lx:.1f}" y2="{ly - 4:.1f}" '
                         'stroke="#bbb"/>')  # fmt: skip
        parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}">'
                     f'<title>{esc(name)}: {latency:.2f} ms, accuracy {accuracy:.4f}</title></circle>'
                     f'<text class="label" x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">'
                     f"{esc(name)}</text>")  # fmt: skip
    note = f"; {zoom_note}" if zoom_note else ""
    parts.append(f'<text x="{left}" y="{height - 8}">p50 latency (ms) →; accuracy ↑; green: Pareto front'
                 f"{esc(note)}</text>")  # fmt: skip
    return "".join(parts) + "</svg>"


def _bars(variants: list[dict[str, Any]], key: str, label: str, chart_id: str) -> str:
    values = [(v["name"], v.get(key)) for v in variants if v.get(key) is not None]
    if not values:
        return ""
    ticks = nice_ticks(0.0, max(value for _, value in values))
    span = WIDTH - LEFT - 80
    bottom = 10 + ROW * len(values)
    height = bottom + 40
    parts = [f'<svg id="{chart_id}" width="{WIDTH}" height="{height}" role="img" aria-label="{esc(label)}">',
             x_axis(ticks, lambda v: LEFT + v / ticks[-1] * span, 4, bottom)]  # fmt: skip
    for i, (name, value) in enumerate(values):
        y, w = 10 + i * ROW, value / ticks[-1] * span
        parts += [f'<text x="{LEFT - 8}" y="{y + 14}" text-anchor="end">{esc(name)}</text>',
                  f'<rect x="{LEFT}" y="{y + 3}" width="{w:.1f}" height="16" fill="#fdae6b"/>',
                  f'<text x="{LEFT + w + 6:.1f}" y="{y + 15}">{value:.1f}</text>']  # fmt: skip
    parts.append(f'<text x="{LEFT}" y="{height - 4}">{esc(label)}</text>')
    return "".join(parts) + "</svg>"


def timing_status(document: dict[str, Any]) -> str:
    """How this row's timings were taken, for a column of the table itself (not only a bullet below)."""
    if "estimated" in document:
        return "this host; device estimated"
    if document["target"].get("mode") == "emulated-on-host":
        return "emulated on host"
    return "measured"


def notes(document: dict[str, Any]) -> list[str]:
    """The bullets under the table, each once: the emulation's plain "memory capped at N MB" gives way
    to the line saying how it was capped (cgroup, systemd scope or RLIMIT_AS)."""
    target = document["target"]
    mechanism = memory_caps(document["variants"])
    emulated = emulated_items(document)
    misfits = [f"did not fit the emulated memory: {m['name']}" for m in document.get("did_not_fit", [])]
    skipped = [f"not run here: {s['name']}: {s['reason']}" for s in document.get("skipped", [])]
    ordered = emulated + mechanism + target.get("caveats", []) + misfits + skipped
    return list(dict.fromkeys(ordered))


def _table(table: Table | None, title: str = "") -> str:
    if table is None:
        return ""
    header, body = table
    head = "".join(f"<th>{esc(c)}</th>" for c in header)
    cells = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in body)
    heading = f"<h2>{esc(title)}</h2>" if title else ""
    return f"{heading}<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"


def render_html(document: dict[str, Any], title: str = "edgekit benchmark") -> str:
    variants = document["variants"]
    emulation = "".join(f"<li>{esc(item)}</li>" for item in notes(document))
    status = timing_status(document)
    table = ([*header(document, COLUMNS), "timings"], [[*row, status] for row in rows(document)])
    estimated = ""
    if document.get("estimated"):  # the device's figures: estimates only, with band and assumptions
        assumptions = {a for e in document["estimated"]["variants"] for x in e.get("estimates", [])[:1]
                       for a in x["assumptions"]}  # fmt: skip
        items = "".join(f"<li>{esc(a)}</li>" for a in sorted(assumptions))
        estimated = _table(estimate_table(document), estimate_title(document)) + f"<ul class=caption>{items}</ul>"
        title = f"{title}: {headline(document)}"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
        f"<style>{PAGE_STYLE}</style></head><body><h1>{esc(title)}</h1>"
        f'<p class="caption">{esc(caption(document))}</p>'
        f"{_table(table)}{estimated}"
        f"{f'<ul class=caption>{emulation}</ul>' if emulation else ''}"
        f"<h2>Latency per variant{' on this host (not the device)' if estimated else ''}</h2>"
        f"{_latency_chart(variants)}"
        f"<h2>Accuracy against latency</h2>{_pareto_chart(variants)}"
        f"<h2>Memory and size</h2>{_bars(variants, 'peak_rss_mb', 'peak RSS (MB, kernel VmHWM)', 'memory')}"
        f"{_bars(variants, 'model_size_mb', 'model size (MB)', 'size')}"
        f"{_table(shape_table(variants), SHAPES_TITLE)}{_table(cold_start_table(variants), COLD_START_TITLE)}"
        f"<p class=caption>Created {esc(document['created_at'])} from results schema {esc(document['schema'])}.</p>"
        "</body></html>\n"
    )
