"""The engine registry: name -> ``EngineSpec``. Built-ins first; third-party engines on demand.

A package adds an engine without touching edgekit by declaring an entry point in the group
``edgekit.engines`` whose object is an ``EngineSpec`` (or a function returning one)::

    [project.entry-points."edgekit.engines"]
    tflite = "my_package.edgekit_engine:SPEC"

Entry points are read only when a name is not built in (or when all engines are listed), so
loading a built-in artifact never scans installed packages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgekit.errors import ArtifactError
from edgekit.runtime.engines import coreml_engine, executorch_engine, onnxruntime_engine, openvino_engine
from edgekit.runtime.engines.base import EngineSpec

ENTRY_POINT_GROUP = "edgekit.engines"

ENGINES: dict[str, EngineSpec] = {}
_entry_points_loaded = False


def register_engine(spec: EngineSpec, *, replace: bool = False) -> EngineSpec:
    """Make ``spec`` loadable by name; a second engine under a taken name is refused unless ``replace``."""
    if not isinstance(spec, EngineSpec):
        raise TypeError(f"register_engine takes an EngineSpec, not {type(spec).__name__}")
    if spec.name in ENGINES and ENGINES[spec.name] is not spec and not replace:
        raise ValueError(f"An engine named '{spec.name}' is already registered; pass replace=True to override it.")
    if not spec.suffixes or not all(s.startswith(".") and s == s.lower() for s in spec.suffixes):
        raise ValueError(f"Engine '{spec.name}': suffixes must be lower-case and start with a dot, e.g. ('.onnx',).")
    ENGINES[spec.name] = spec
    return spec


def unregister_engine(name: str) -> None:
    """Remove an engine (tests, or an app that wants to forbid one)."""
    ENGINES.pop(name, None)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points  # only when needed: it costs a few ms to import

    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in ENGINES:
            continue  # built-ins and explicit registrations win over plug-ins
        try:
            loaded = point.load()
            spec = loaded() if isinstance(loaded, Callable) and not isinstance(loaded, EngineSpec) else loaded
            register_engine(spec)
        except Exception as exc:  # a broken plug-in must not break built-in engines; say why at lookup
            _broken[point.name] = f"{point.value}: {type(exc).__name__}: {exc}"


_broken: dict[str, str] = {}


def engine_names() -> list[str]:
    """Every engine this runtime can name, built-in and plug-ins alike (installed or not)."""
    _load_entry_points()
    return list(ENGINES)


def describe_engines() -> str:
    """``onnxruntime (installed), openvino (not installed: pip install ...)``: for error messages."""
    parts = []
    for name in engine_names():
        spec = ENGINES[name]
        parts.append(f"{name} (installed)" if spec.installed() else f"{name} (not installed: {spec.install_hint()})")
    return ", ".join(parts)


def get_engine(name: str) -> EngineSpec:
    """The engine called ``name``; an ``ArtifactError`` naming the available ones otherwise."""
    if name not in ENGINES:
        _load_entry_points()
    if name in ENGINES:
        return ENGINES[name]
    if name in _broken:
        raise ArtifactError(f"The engine plug-in '{name}' failed to load ({_broken[name]}); fix or reinstall it.")
    raise ArtifactError(
        f"Unknown engine '{name}': this edgekit runtime does not provide it. "
        f"Supported: {describe_engines()}; pass engine= one of them, or install a package that "
        f"registers '{name}' in the '{ENTRY_POINT_GROUP}' entry-point group."
    )


def engines_for_file(model_file: Path | str) -> list[str]:
    """The registered engines that load a model file with this suffix, built-ins first."""
    return [name for name, spec in ENGINES.items() if spec.loads(model_file)]


for _spec in (onnxruntime_engine.SPEC, openvino_engine.SPEC, coreml_engine.SPEC, executorch_engine.SPEC):
    register_engine(_spec)
