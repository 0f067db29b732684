"""The Pareto set over (accuracy up, p50 latency down, size down) and the recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FLOAT_NOISE = 1e-9  # accuracies computed two ways (points vs fractions) differ by rounding, not by a miss


@dataclass(frozen=True)
class Point:
    name: str
    accuracy: float
    p50_ms: float
    size_mb: float


def dominates(a: Point, b: Point) -> bool:
    """``a`` is at least as good as ``b`` on every axis and strictly better on one."""
    at_least = a.accuracy >= b.accuracy and a.p50_ms <= b.p50_ms and a.size_mb <= b.size_mb
    strictly = a.accuracy > b.accuracy or a.p50_ms < b.p50_ms or a.size_mb < b.size_mb
    return at_least and strictly


def pareto_set(points: Sequence[Point]) -> list[Point]:
    """The points no other point dominates, fastest first (quadratic: a search has tens of points)."""
    front = [p for p in points if not any(dominates(q, p) for q in points)]
    return sorted(front, key=lambda p: (p.p50_ms, -p.accuracy, p.size_mb, p.name))


def recommend(points: Sequence[Point], floor_accuracy: float) -> Point | None:
    """The fastest point whose accuracy is at least ``floor_accuracy`` (the teacher's minus the
    budget); ties: the more accurate, then the smaller. None when no point keeps the budget."""
    within = [p for p in points if p.accuracy >= floor_accuracy - FLOAT_NOISE]
    return min(within, key=lambda p: (p.p50_ms, -p.accuracy, p.size_mb, p.name), default=None)
