"""How a loaded artifact runs: engine, threads and providers, from the caller or the target.

At conversion, the target profile's runtime defaults (threads; each engine's execution
providers or device, in order of preference) are written into the manifest's ``runtime``
field, so a device app starts right without reading a profile (and without importing
pydantic or yaml). An app may name another profile, or pass threads and engine; what it
passes explicitly wins. Threads are capped at this machine's cores: more only slows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.artifact import Manifest
from edgekit.errors import ArtifactError


@dataclass(frozen=True)
class RuntimeSettings:
    engine: str
    threads: int | None  # None: the engine's own default
    providers: list[str] = field(default_factory=lambda: ["CPUExecutionProvider"])  # ONNX Runtime
    devices: list[str] = field(default_factory=lambda: ["CPU"])  # OpenVINO: the first available is used
    source: str = "engine defaults"  # where the defaults came from: the artifact, a named target
    notes: list[str] = field(default_factory=list)


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _defaults(manifest: Manifest, target: str | Mapping[str, Any] | None) -> tuple[Mapping[str, Any], str]:
    if target is None:
        if manifest.runtime:
            return manifest.runtime, f"the artifact (target {manifest.target})"
        return {}, "engine defaults (the artifact records none)"
    if isinstance(target, Mapping):  # runtime defaults already resolved (as in a manifest's `runtime`)
        return target, "the given runtime defaults"
    if target == "host":  # this machine's CPU with the engine's own thread count: no profile to read
        return {}, "target host (this machine's CPU)"
    from edgekit.targets import load_target, runtime_defaults  # pydantic + yaml: only when asked

    return runtime_defaults(load_target(target)), f"target {target}"


def resolve_settings(
    manifest: Manifest,
    model_path: Path,
    target: str | Mapping[str, Any] | None,
    threads: int | None,
    engine: str | None,
) -> RuntimeSettings:
    chosen = engine or manifest.engine
    if chosen == "onnxruntime" and model_path.suffix != ".onnx":
        raise ArtifactError(
            f"This artifact holds an OpenVINO model ({model_path.name}); ONNX Runtime cannot run it. "
            "Load it with engine='openvino', or use the artifact's ONNX variant."
        )
    defaults, source = _defaults(manifest, target)
    notes: list[str] = []
    if threads is None and defaults.get("threads"):
        wanted = int(defaults["threads"])
        threads = min(wanted, _usable_cores())
        if threads < wanted:
            notes.append(f"{source} asks for {wanted} threads; this machine has {threads} cores")
    choice = defaults.get("engines", {}).get(chosen) or {}
    return RuntimeSettings(
        engine=chosen,
        threads=threads,
        providers=list(choice.get("providers") or ["CPUExecutionProvider"]),
        devices=list(choice.get("devices") or ["CPU"]),
        source=source,
        notes=notes,
    )
