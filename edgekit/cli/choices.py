"""Closed sets of option values, as enums so typer lists them in ``--help`` and refuses others."""

from __future__ import annotations

import enum


class Quantize(str, enum.Enum):
    dynamic = "dynamic"
    static = "static"
    none = "none"


class Exporter(str, enum.Enum):
    optimum = "optimum"
    dynamo = "dynamo"


class CalibrationMethod(str, enum.Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


def value(choice: enum.Enum | None) -> str | None:
    """The plain string a recipe field takes (None stays None)."""
    return None if choice is None else str(choice.value)
