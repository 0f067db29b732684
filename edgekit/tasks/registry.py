"""The task registry, conversion half: how ``convert`` loads a model, reads data and makes
example inputs for one task. The runtime half (raw input → feed, outputs → prediction) lives
in ``edgekit.runtime.tasks`` and is chosen by the manifest's ``task``, so a device never
imports this module.

A task is one module that builds a ``TaskSpec`` and calls ``register_task``; third-party
packages can do the same through the entry-point group ``edgekit.tasks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import RecipeError
from edgekit.plugins import PluginGroup

ENTRY_POINT_GROUP = "edgekit.tasks"


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the manifest's `task`; the runtime half is registered under the same name
    description: str
    # (reference, revision, trust_remote_code, record_path) -> a loaded source (model + pre-processing)
    load_source: Callable[[str, str | None, bool, bool], Any]
    read_dataset: Callable[[Any], Any]  # a recipe DataSpec -> a dataset of inputs (and labels)
    probe_inputs: Sequence[Any]  # example inputs for export and parity when the user gives no data
    calibration_feeds: Callable[[Path, list[Any]], list[Any]]  # (reference artifact, inputs) -> engine feeds
    # ORT static QDQ operator set when the recipe sets none: measured per model family (docs/stack-findings.md).
    static_op_types: tuple[str, ...] = ("MatMul",)
    # What a bundle for this task builds by default (the quickstart's list), measured on this kind of model.
    default_variants: tuple[str, ...] = ("onnx-fp32", "ort-int8-dynamic", "ort-int8-static", "ov-fp32", "ov-int8")
    nncf_model_type: str | None = "TRANSFORMER"  # NNCF's scheme for ov-int8; None: its default (CNNs)
    # (reference artifact, inputs) -> the same inputs, one at a time, after a change no user would notice
    # (images: saved as JPEG). The gate reports the FP32 reference's agreement with itself under it: the
    # noise floor an INT8 variant's agreement is read against. None: not reported (text has no such change).
    unnoticed_change: Callable[[Path, Iterable[Any]], Iterator[Any]] | None = None
    unnoticed_change_name: str = ""


_TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    existing = _TASKS.get(spec.name)
    if existing is not None and existing is not spec:
        raise RecipeError(f"Task '{spec.name}' is registered twice.")
    _TASKS[spec.name] = spec
    return spec


PLUGINS = PluginGroup(ENTRY_POINT_GROUP, register_task)


def tasks() -> dict[str, TaskSpec]:
    PLUGINS.load()
    return dict(_TASKS)


def get_task(name: str) -> TaskSpec:
    known = tasks()
    if name not in known and (why := PLUGINS.failure(name)):
        raise RecipeError(f"The task plug-in '{name}' failed to load ({why}); fix or reinstall it.")
    if name not in known:
        raise RecipeError(f"Unknown task '{name}'. edgekit converts: {', '.join(known)}.")
    return known[name]
