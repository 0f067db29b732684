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
    estimate_table,
    estimate_title,
    header,
    headline,
    memory_caps,
    rows,
    shape_table,
)

WIDTH, ROW, LEFT = 760, 28, 190
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#222;max-width:80rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
td:first-child,th:first-child{text-align:left}svg{display:block;margin:.5rem 0 1.5rem}
.caption{color:#555}text{font:12px system-ui,sans-serif}
"""


def _esc(value: object) -> str:
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
    top = max(v["latency_ms"]["p99"] for v in variants) * 1.05
    scale = (WIDTH - LEFT - 20) / top
    height = ROW * len(variants) + 40
    parts = [f'<svg id="latency" width="{WIDTH}" height="{height}" role="img" aria-label="latency per variant">']
    for i, v in enumerate(variants):
        lat, y = v["latency_ms"], 20 + i * ROW
        x = {k: LEFT + lat[k] * scale for k in ("min", "median", "p90", "p99")}
        parts += [
            f'<text x="{LEFT - 8}" y="{y + 14}" text-anchor="end">{_esc(v["name"])}</text>',
            f'<line x1="{x["min"]:.1f}" y1="{y + 10}" x2="{x["p99"]:.1f}" y2="{y + 10}" stroke="#999"/>',
            f'<rect x="{x["median"]:.1f}" y="{y + 3}" width="{max(x["p90"] - x["median"], 1):.1f}" '
            f'height="14" fill="#9ecae1"><title>p50 {lat["median"]:.2f} ms, p90 {lat["p90"]:.2f}, '
            f"p99 {lat['p99']:.2f}</title></rect>",
            f'<line x1="{x["median"]:.1f}" y1="{y + 1}" x2="{x["median"]:.1f}" y2="{y + 19}" '
            'stroke="#08519c" stroke-width="2"/>',
        ]
    parts.append(
        f'<text x="{LEFT}" y="{height - 6}">ms: min–p99 line, p50–p90 box, p50 mark (0 to {top:.1f} ms)</text>'
    )
    return "".join(parts) + "</svg>"


def _pareto_chart(variants: list[dict[str, Any]]) -> str:
    points = [(v["name"], v["latency_ms"]["median"], v["accuracy"]) for v in variants if v.get("accuracy") is not None]
    if not points:
        return "<p>No accuracy measured (the data had no labels): no accuracy/latency chart.</p>"
    front = set(pareto_front(points))
    width, height, pad = WIDTH, 320, 50
    lat_max = max(p[1] for p in points) * 1.1
    acc_lo, acc_hi = min(p[2] for p in points), max(p[2] for p in points)
    span = max(acc_hi - acc_lo, 0.01)

    def xy(latency: float, accuracy: float) -> tuple[float, float]:
        x = pad + latency / lat_max * (width - 2 * pad)
        return x, height - pad - (accuracy - acc_lo) / span * (height - 2 * pad)

    parts = [f'<svg id="pareto" width="{width}" height="{height}" role="img" aria-label="accuracy against latency">']
    ordered = sorted((p for p in points if p[0] in front), key=lambda p: p[1])
    if len(ordered) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(lat, acc) for _, lat, acc in ordered))
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="#31a354" stroke-dasharray="4 3"/>')
    for name, latency, accuracy in points:
        x, y = xy(latency, accuracy)
        colour = "#31a354" if name in front else "#888"
        parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}">'
                     f'<title>{_esc(name)}: {latency:.2f} ms, accuracy {accuracy:.4f}</title></circle>'
                     f'<text x="{x + 7:.1f}" y="{y - 6:.1f}">{_esc(name)}</text>')  # fmt: skip
    parts.append(f'<text x="{pad}" y="{height - 12}">p50 latency (ms) →; accuracy ↑ '
                 f'({acc_lo:.4f}–{acc_hi:.4f}); green: Pareto front</text>')  # fmt: skip
    return "".join(parts) + "</svg>"


def _bars(variants: list[dict[str, Any]], key: str, label: str, chart_id: str) -> str:
    values = [(v["name"], v.get(key)) for v in variants if v.get(key) is not None]
    if not values:
        return ""
    top = max(value for _, value in values) * 1.05
    height = ROW * len(values) + 30
    parts = [f'<svg id="{chart_id}" width="{WIDTH}" height="{height}" role="img" aria-label="{_esc(label)}">']
    for i, (name, value) in enumerate(values):
        y, w = 10 + i * ROW, value / top * (WIDTH - LEFT - 80)
        parts += [f'<text x="{LEFT - 8}" y="{y + 14}" text-anchor="end">{_esc(name)}</text>',
                  f'<rect x="{LEFT}" y="{y + 3}" width="{w:.1f}" height="16" fill="#fdae6b"/>',
                  f'<text x="{LEFT + w + 6:.1f}" y="{y + 15}">{value:.1f}</text>']  # fmt: skip
    parts.append(f'<text x="{LEFT}" y="{height - 4}">{_esc(label)}</text>')
    return "".join(parts) + "</svg>"


def _table(table: Table | None, title: str = "") -> str:
    if table is None:
        return ""
    header, body = table
    head = "".join(f"<th>{_esc(c)}</th>" for c in header)
    cells = "".join("<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in row) + "</tr>" for row in body)
    heading = f"<h2>{_esc(title)}</h2>" if title else ""
    return f"{heading}<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"


def render_html(document: dict[str, Any], title: str = "edgekit benchmark") -> str:
    variants = document["variants"]
    target = document["target"]
    mechanism = memory_caps(variants)
    misfits = [f"did not fit the emulated memory: {m['name']}" for m in document.get("did_not_fit", [])]
    skipped = [f"not run here: {s['name']}: {s['reason']}" for s in document.get("skipped", [])]
    notes = target.get("emulated", []) + mechanism + target.get("caveats", []) + misfits + skipped
    emulation = "".join(f"<li>{_esc(item)}</li>" for item in notes)
    estimated = ""
    if document.get("estimated"):  # the device's figures: estimates only, with band and assumptions
        assumptions = {a for e in document["estimated"]["variants"] for x in e.get("estimates", [])[:1]
                       for a in x["assumptions"]}  # fmt: skip
        items = "".join(f"<li>{_esc(a)}</li>" for a in sorted(assumptions))
        estimated = _table(estimate_table(document), estimate_title(document)) + f"<ul class=caption>{items}</ul>"
        title = f"{title}: {headline(document)}"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_esc(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{_esc(title)}</h1>"
        f'<p class="caption">{_esc(caption(document))}</p>'
        f"{_table((header(document, COLUMNS), rows(document)))}{estimated}"
        f"{f'<ul class=caption>{emulation}</ul>' if emulation else ''}"
        f"<h2>Latency per variant{' on this host (not the device)' if estimated else ''}</h2>"
        f"{_latency_chart(variants)}"
        f"<h2>Accuracy against latency</h2>{_pareto_chart(variants)}"
        f"<h2>Memory and size</h2>{_bars(variants, 'peak_rss_mb', 'peak RSS (MB, kernel VmHWM)', 'memory')}"
        f"{_bars(variants, 'model_size_mb', 'model size (MB)', 'size')}"
        f"{_table(shape_table(variants), SHAPES_TITLE)}{_table(cold_start_table(variants), COLD_START_TITLE)}"
        f"<p class=caption>Created {_esc(document['created_at'])} from results schema {_esc(document['schema'])}.</p>"
        "</body></html>\n"
    )
