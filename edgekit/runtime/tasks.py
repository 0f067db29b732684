"""The runtime half of the task registry: a manifest's ``task`` -> pre- and post-processing.

A task turns raw input into the model's feed (its pre-processor: input checks, encoding
without padding, collation into padded arrays) and the model's output into predictions (its
post-processor). ``text-classification`` and ``image-classification`` are built in; another
task is one module with a pre-processor and a post-processor, registered with ``register_task``. The conversion half
(loaders, datasets, example inputs) lives with the converter, not here: this stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgekit.errors import ArtifactError


class Preprocessor(Protocol):
    """Raw input -> model feed. Records are whatever ``encode`` returns: one per input, unpadded.

    Optional: ``window_chunks`` (int), how many chunks of inputs ``predict_batch`` encodes at once
    before planning chunks (default 16: texts are sorted by length within the window; images, all
    one size, use 1, so that only one chunk of decoded images is held).
    """

    probe_input: Any  # one valid raw input, fed at load when the output width must be measured

    def check_one(self, item: object, index: int = 0) -> Any: ...  # InputError when not usable

    def check(self, items: object) -> list[Any]: ...  # a batch as a list, every item checked

    def encode(self, items: list[Any], first_index: int = 0) -> list[Any]: ...

    def size(self, record: Any) -> int: ...  # its unpadded length: what chunks are bounded by

    def collate(self, records: list[Any]) -> dict[str, np.ndarray]: ...

    def __call__(self, items: list[Any]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class TaskSpec:
    name: str
    preprocessor: Callable[[Path, Any], Preprocessor]  # (artifact folder, manifest) -> pre-processor
    postprocess: Callable[[np.ndarray, Sequence[str]], list[Any]]  # (outputs, labels) -> one result per row
    output_width: Callable[[Any], int]  # the last output axis the manifest implies (its label count)
    check_manifest: Callable[[Any], None] = lambda manifest: None  # ArtifactError on task fields that cannot work


TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
    if spec.name in TASKS and TASKS[spec.name] is not spec and not replace:
        raise ValueError(f"A task named '{spec.name}' is already registered; pass replace=True to override it.")
    TASKS[spec.name] = spec
    return spec


ENTRY_POINT_GROUP = "edgekit.runtime_tasks"  # a plug-in task's runtime half (a TaskSpec), for devices
_broken: dict[str, str] = {}


def _load_plugin(name: str) -> None:
    """Look for ``name`` among the installed plug-ins, only when it is not built in (no scan otherwise)."""
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == name and name not in TASKS:
            try:
                register_task(point.load())
            except Exception as exc:  # say which plug-in broke, at the lookup that needed it
                _broken[name] = f"{point.value}: {type(exc).__name__}: {exc}"


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        _load_plugin(name)
    if name in _broken and name not in TASKS:
        raise ArtifactError(f"The runtime task plug-in '{name}' failed to load ({_broken[name]}); fix or reinstall it.")
    if name not in TASKS:
        raise ArtifactError(
            f"This artifact's task '{name}' is not one this edgekit runtime can run "
            f"(it runs: {', '.join(TASKS)}). Upgrade edgekit, or convert the model for a supported task."
        )
    return TASKS[name]


def _check_labels(manifest: Any) -> None:
    labels = manifest.labels
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise ArtifactError(
            f"manifest.json's labels must be a non-empty list of strings, not {labels!r}; re-export the artifact."
        )


def _classification(name: str, preprocessor: Callable[[Path, Any], Preprocessor]) -> TaskSpec:
    """A classification task: its own pre-processor; logits -> softmax predictions over the manifest's labels."""
    from edgekit.runtime.classification import predictions

    return TaskSpec(
        name=name,
        preprocessor=preprocessor,
        postprocess=predictions,
        output_width=lambda manifest: len(manifest.labels),
        check_manifest=_check_labels,
    )


def _text_classification() -> TaskSpec:
    from edgekit.runtime.preprocess import TextPreprocessor

    return _classification("text-classification", TextPreprocessor.for_artifact)


def _image_preprocessor(root: Path, manifest: Any) -> Preprocessor:
    from edgekit.runtime.image_preprocess import ImagePreprocessor  # Pillow: only when an image artifact loads

    return ImagePreprocessor.for_artifact(root, manifest)


def _image_classification() -> TaskSpec:
    return _classification("image-classification", _image_preprocessor)


register_task(_text_classification())
register_task(_image_classification())
