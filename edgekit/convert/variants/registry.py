"""The variant registry: what ``convert`` can build from the packaged FP32 ONNX reference.

A variant kind is a pass in the Olive sense: a class with its name, the engine and precision
it produces, whether it needs calibration data, whether its answers depend on the rest of a
batch, its own options model (pydantic, unknown fields refused), and ``build``, which writes
the model file(s) into an empty folder. The pipeline packages, gates and benchmarks every
variant the same way, so adding one is one module plus ``register_variant``.

Third-party packages register kinds through the entry-point group ``edgekit.variants``
(each entry point names a ``VariantKind`` subclass). This module is import-light: kinds
import their libraries inside ``build``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from edgekit.errors import RecipeError
from edgekit.plugins import PluginGroup
from edgekit.runtime.engines import ENGINES, engine_names
from edgekit.targets.profiles import TargetProfile

REFERENCE = "onnx-fp32"
ENTRY_POINT_GROUP = "edgekit.variants"


class VariantOptions(BaseModel):
    """Options of one variant kind; a kind with options subclasses this."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class BuildContext:
    """What every build gets: the packaged reference, the target and the user's data.

    ``source`` is the loaded PyTorch model (a ``LoadedSource``) for kinds that export from
    PyTorch themselves (ExecuTorch, Core ML); ``calibration_texts`` are raw task inputs
    (texts, or images for an image task) despite the historical name.
    """

    reference_dir: Path  # the packaged onnx-fp32 artifact
    target: TargetProfile
    calibration_texts: list[Any]
    validation: Callable[[int], tuple[list[Any], list[int]] | None] = lambda _: None  # labelled rows, when any
    source: Any = None  # edgekit.convert.sources.LoadedSource, when the build has one
    task: str = "text-classification"  # the manifest's task: how raw inputs become feeds
    _feeds: list[Any] | None = field(default=None, repr=False)

    @property
    def reference_onnx(self) -> Path:
        return self.reference_dir / "model.onnx"

    def feeds(self) -> list[Any]:
        """Calibration inputs, tokenized by the runtime exactly as a device will (computed once)."""
        if self._feeds is None:
            from edgekit.tasks import get_task

            self._feeds = get_task(self.task).calibration_feeds(self.reference_dir, self.calibration_texts)
        return self._feeds

    def per_channel(self, chosen: bool | None) -> bool:
        return self.target.precision.quantization.per_channel if chosen is None else chosen

    def reduce_range(self, chosen: bool | None) -> bool:
        return self.target.precision.quantization.reduce_range if chosen is None else chosen


@dataclass(frozen=True)
class BuildOutput:
    model_file: str
    settings: dict[str, Any]  # what was chosen, recorded in the manifest's metrics.build
    # Manifest fields the build sets itself (ORT Mobile, Core ML: `mobile`); `notes` are appended.
    manifest_fields: dict[str, Any] = field(default_factory=dict)


class VariantKind:
    """Subclass, set the class attributes, implement ``build``, then ``register_variant``."""

    name: ClassVar[str]
    engine: ClassVar[str]  # a runtime engine name (edgekit.runtime.engines)
    precision: ClassVar[str]  # fp32, fp16, int8
    description: ClassVar[str]
    needs_calibration: ClassVar[bool] = False
    strict_parity: ClassVar[bool] = False  # fp32 kinds must match PyTorch within parity.atol
    # False when a row's answer depends on the other rows of its batch (dynamic activation
    # scales computed over the batch): the runtime then runs such an artifact row by row.
    batch_invariant: ClassVar[bool] = True
    # Built from the PyTorch module (torch.export): impossible when the source is an ONNX file.
    needs_source_model: ClassVar[bool] = False
    quickstart_roles: ClassVar[tuple[str, ...]] = ()  # "teacher" / "student": built by `edgekit quickstart`
    Options: ClassVar[type[VariantOptions]] = VariantOptions

    def recipe_defaults(self, recipe: Any) -> dict[str, Any]:
        """Option values taken from the recipe's shared sections (``quantization:``, ``openvino:``);
        options given on the variant's own entry override them."""
        return {}

    def build(self, ctx: BuildContext, folder: Path, options: Any) -> BuildOutput:
        raise NotImplementedError(f"{self.name} is the reference and is not built from itself")

    @classmethod
    def installed(cls) -> bool:
        """Whether this machine has what the variant needs to be built and run."""
        spec = ENGINES.get(cls.engine)
        return spec is not None and all(importlib.util.find_spec(m) for m in (spec.module, *cls.build_modules()))

    @classmethod
    def build_modules(cls) -> tuple[str, ...]:
        """Python modules ``build`` imports besides the engine's own."""
        return ()


_REGISTRY: dict[str, VariantKind] = {}


def register_variant(kind: type[VariantKind] | VariantKind) -> VariantKind:
    """Add a variant kind (a class or an instance); a second kind with the same name is refused."""
    instance = kind() if isinstance(kind, type) else kind
    existing = _REGISTRY.get(instance.name)
    if existing is not None and type(existing) is not type(instance):
        raise RecipeError(f"Variant '{instance.name}' is registered twice ({type(existing)} and {type(instance)}).")
    if instance.engine not in engine_names():
        raise RecipeError(
            f"Variant '{instance.name}' runs on engine '{instance.engine}', which no runtime engine provides "
            f"(known: {', '.join(engine_names())}). Register the engine first."
        )
    _REGISTRY[instance.name] = instance
    return instance


PLUGINS = PluginGroup(ENTRY_POINT_GROUP, register_variant)


def variants() -> dict[str, VariantKind]:
    """Every registered variant kind, by name (built-in ones first, then plugins)."""
    PLUGINS.load()
    return dict(_REGISTRY)


def get_variant(name: str) -> VariantKind:
    known = variants()
    if name not in known and (why := PLUGINS.failure(name)):
        raise RecipeError(f"The variant plug-in '{name}' failed to load ({why}); fix or reinstall it.")
    if name not in known:
        raise RecipeError(f"Unknown variant '{name}'. Choose from: {', '.join(known)}.")
    return known[name]


def resolve_options(kind: VariantKind, recipe: Any, given: dict[str, Any]) -> VariantOptions:
    """The kind's options: the recipe's shared sections, then the variant's own entry, validated."""
    return kind.Options.model_validate({**kind.recipe_defaults(recipe), **given})


def variant_table() -> str:
    """The Markdown table of variants in docs/recipes.md (a test keeps the docs in step)."""
    rows = ["| variant | engine | precision | calibration | batch-invariant | options | what it is |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for kind in variants().values():
        options = ", ".join(f"`{name}`" for name in kind.Options.model_fields) or "—"
        rows.append(
            f"| `{kind.name}` | {kind.engine} | {kind.precision} | {'yes' if kind.needs_calibration else 'no'} | "
            f"{'yes' if kind.batch_invariant else 'no (run row by row)'} | {options} | {kind.description} |"
        )
    return "\n".join(rows)
