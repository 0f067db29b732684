"""Inference engines: a registry of ``EngineSpec`` (name, model suffixes, module, extra, device
option, factory) and ``create_engine``. Adding an engine is one module with a factory and a
spec, registered with ``register_engine`` or the ``edgekit.engines`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ArtifactError
from edgekit.runtime.engines.base import Engine, EngineFactory, EngineSpec
from edgekit.runtime.engines.registry import (
    ENGINES,
    ENTRY_POINT_GROUP,
    describe_engines,
    engine_names,
    engines_for_file,
    get_engine,
    register_engine,
    unregister_engine,
)

__all__ = [
    "ENGINES",
    "ENTRY_POINT_GROUP",
    "Engine",
    "EngineFactory",
    "EngineSpec",
    "create_engine",
    "describe_engines",
    "engine_names",
    "engines_for_file",
    "get_engine",
    "register_engine",
    "unregister_engine",
]


def create_engine(engine: str, model_path: Path, threads: int | None, option: list[str]) -> Engine:
    """Load ``model_path`` on the named engine with its device option (providers, devices, ...)."""
    spec = get_engine(engine)
    if (reason := spec.unavailable_reason()) is not None:  # before "not installed": installing would not help
        raise ArtifactError(f"This artifact runs on {spec.title}, which cannot run on this machine: {reason}")
    if not spec.installed():
        raise ArtifactError(
            f"This artifact runs on {spec.title}, which is not installed. Install it with {spec.install_hint()}."
        )
    return spec.factory(model_path, threads, list(option))
