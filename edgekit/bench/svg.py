"""Plot furniture for the HTML report's inline SVG: axis ticks, gridlines and label placement.

No plotting library: the report stays one self-contained file with no scripts (the slim runtime's
dependency budget). Text boxes are estimated from the character count (``CHAR_W`` px per
character at the report's 12px font, generous so estimates err on the side of more space).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

CHAR_W, TEXT_H = 7.2, 13.0
Box = tuple[float, float, float, float]  # x, y (top), width, height


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 x 10^k), about ``count`` of them."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)  # the ticks enclose [lo, hi]
    return [round(k * step, 10) for k in range(first, max(last, first + 1) + 1)]


def tick_label(value: float, step: float) -> str:
    digits = max(0, -math.floor(math.log10(step)) if step < 1 else 0)
    return f"{value:.{digits}f}"


def x_axis(ticks: list[float], to_x: Callable[[float], float], top: float, bottom: float, unit: str = "") -> str:
    """Vertical gridlines from ``top`` to ``bottom`` and tick labels under the axis."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    parts = [f'<line class="axis" x1="{to_x(ticks[0]):.1f}" y1="{bottom:.1f}" x2="{to_x(ticks[-1]):.1f}" '
             f'y2="{bottom:.1f}" stroke="#444"/>']  # fmt: skip
    for value in ticks:
        x = to_x(value)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#e5e5e5"/>'
                     f'<line class="tick" x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 4:.1f}" '
                     'stroke="#444"/>'
                     f'<text class="tick-label" x="{x:.1f}" y="{bottom + 16:.1f}" text-anchor="middle">'
                     f"{tick_label(value, step)}{html.escape(unit)}</text>")  # fmt: skip
    return "".join(parts)


def y_axis(ticks: list[float], to_y: Callable[[float], float], left: float, right: float) -> str:
    """Horizontal gridlines from ``left`` to ``right`` and tick labels left of the axis."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    parts = [f'<line class="axis" x1="{left:.1f}" y1="{to_y(ticks[0]):.1f}" x2="{left:.1f}" '
             f'y2="{to_y(ticks[-1]):.1f}" stroke="#444"/>']  # fmt: skip
    for value in ticks:
        y = to_y(value)
        parts.append(f'<line class="grid" x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                     f'<line class="tick" x1="{left - 4:.1f}" y1="{y:.1f}" x2="{left:.1f}" y2="{y:.1f}" stroke="#444"/>'
                     f'<text class="tick-label" x="{left - 7:.1f}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{tick_label(value, step)}</text>")  # fmt: skip
    return "".join(parts)


def text_box(x: float, y: float, text: str, anchor: str = "start") -> Box:
    """The box a label occupies when drawn at (x, baseline y)."""
    width = CHAR_W * len(text)
    left = x - width if anchor == "end" else x
    return left, y - TEXT_H + 2, width, TEXT_H


def overlaps(a: Box, b: Box, gap: float = 0.0) -> bool:
    """Do the boxes overlap, or come closer than ``gap`` px (so neighbours do not read as one label)?"""
    return (
        a[0] < b[0] + b[2] + gap and b[0] < a[0] + a[2] + gap and a[1] < b[1] + b[3] + gap and b[1] < a[1] + a[3] + gap
    )


def place_labels(
    points: list[tuple[str, float, float]], bounds: Box, radius: float = 5.0
) -> list[tuple[float, float, str, Box]]:
    """For each (text, x, y) point: (label x, baseline y, anchor, box), no two boxes overlapping.

    Greedy: around each point, try the four corners, then further out above and below (for points
    stacked on one accuracy), keeping the first spot that meets no earlier label, no point and the
    plot's bounds. Points are placed left to right, so ties on accuracy fan out vertically.
    """
    markers = [(x - radius, y - radius, 2 * radius, 2 * radius) for _, x, y in points]
    placed: list[tuple[float, float, str, Box]] = []
    order = sorted(range(len(points)), key=lambda i: (points[i][1], points[i][2]))
    result: dict[int, tuple[float, float, str, Box]] = {}
    for index in order:
        text, x, y = points[index]
        spots = [(x + 7, y - 6, "start"), (x + 7, y + 15, "start"), (x - 7, y - 6, "end"), (x - 7, y + 15, "end")]
        for level in range(1, 12):
            dy = level * (TEXT_H + 2)
            spots += [(x + 7, y - 6 - dy, "start"), (x + 7, y + 15 + dy, "start"),
                      (x - 7, y - 6 - dy, "end"), (x - 7, y + 15 + dy, "end")]  # fmt: skip
        chosen = None
        for lx, ly, anchor in spots:
            box = text_box(lx, ly, text, anchor)
            inside = bounds[0] <= box[0] and box[0] + box[2] <= bounds[0] + bounds[2] and bounds[1] <= box[1] and (
                box[1] + box[3] <= bounds[1] + bounds[3])  # fmt: skip
            if (
                inside
                and not any(overlaps(box, other[3], gap=6) for other in placed)
                and not any(overlaps(box, marker) for marker in markers)
            ):
                chosen = (lx, ly, anchor, box)
                break
        if chosen is None:  # no free spot: stack below everything placed so far, still without overlap
            lowest = max((other[3][1] + other[3][3] for other in placed), default=y)
            chosen = (x + 7, lowest + TEXT_H + 2, "start", text_box(x + 7, lowest + TEXT_H + 2, text))
        placed.append(chosen)
        result[index] = chosen
    return [result[i] for i in range(len(points))]
