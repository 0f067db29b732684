"""How a loaded artifact runs: engine, threads, device option and batching, from the caller or the target.

At conversion, the target profile's runtime defaults (threads; each engine's device option,
e.g. ONNX Runtime's execution providers or OpenVINO's devices, in order of preference) are
written into the manifest's ``runtime`` field, so a device app starts right without reading
a profile (and without importing pydantic or yaml). An app may name another profile, or pass
threads and engine; what it passes explicitly wins. Threads are capped at this machine's
cores: more only slows. Engines, their model-file suffixes and option names come from the
engine registry (``runtime/engines``), never from strings repeated here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.artifact import Manifest
from edgekit.errors import ArtifactError, InputError
from edgekit.runtime.engines import ENGINES, get_engine
from edgekit.runtime.engines.registry import engines_for_file

# Chunk bounds for predict_batch / logits: peak memory follows the largest chunk, not the
# caller's list. Chosen, not yet tuned: 32 rows x 4,096 padded tokens held 10,000 SST-2
# sentences to 254 MiB (FP32 MiniLM); their effect on throughput is still to be measured.
DEFAULT_MAX_BATCH_ROWS = 32
DEFAULT_MAX_BATCH_TOKENS = 4096


@dataclass(frozen=True)
class RuntimeSettings:
    engine: str
    threads: int | None  # None: the engine's own default
    # Each registered engine's device option by its name: {"providers": [...], "devices": [...]}.
    options: dict[str, list[str]] = field(default_factory=dict)
    source: str = "engine defaults"  # where the defaults came from: the artifact, a named target
    notes: list[str] = field(default_factory=list)
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS  # rows per engine call in predict_batch / logits
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS  # rows x padded length per engine call
    batch_invariant: bool = True  # False: every row runs alone, unpadded (same answer in any batch)
    batch_invariant_source: str = "the manifest"

    def option(self, name: str) -> list[str]:
        """A device option by name; an engine's default when the settings do not carry it."""
        if name in self.options:
            return list(self.options[name])
        for spec in ENGINES.values():
            if spec.option == name:
                return list(spec.default_option)
        return []

    @property
    def engine_option(self) -> list[str]:
        """The chosen engine's own device option (its providers, devices, ...)."""
        return self.option(get_engine(self.engine).option)

    # Compatibility accessors (bench and serve read these): the two built-in engines' options.
    @property
    def providers(self) -> list[str]:
        return self.option("providers")

    @property
    def devices(self) -> list[str]:
        return self.option("devices")


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
    from edgekit.targets.profiles import load_target, runtime_defaults  # pydantic + yaml: only when asked

    return runtime_defaults(load_target(target)), f"target {target}"


def default_batch_invariant(manifest: Manifest) -> tuple[bool, str]:
    """Whether to trust batching for an artifact, and why.

    The manifest's ``batch_invariant`` says so when recorded. Older manifests do not record it:
    ONNX Runtime INT8 artifacts may be dynamically quantized, whose activation scales are
    computed over the whole padded batch, so they are treated as not invariant (each row runs
    alone: slower in batches, never a different answer); everything else is batched.
    """
    recorded = getattr(manifest, "batch_invariant", None)
    if recorded is not None:
        if not isinstance(recorded, bool):
            raise ArtifactError(f"manifest.json's batch_invariant must be true, false or absent, not {recorded!r}.")
        return recorded, "the manifest"
    if manifest.engine == "onnxruntime" and manifest.precision == "int8":
        return False, "default for onnxruntime int8 artifacts that do not record batch_invariant"
    return True, f"default for {manifest.engine} {manifest.precision} artifacts that do not record batch_invariant"


def _positive(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive int, got {value!r}; leave it out for the default.")
    return value


def resolve_settings(
    manifest: Manifest,
    model_path: Path,
    target: str | Mapping[str, Any] | None,
    threads: int | None,
    engine: str | None,
    *,
    max_batch_rows: int | None = None,
    max_batch_tokens: int | None = None,
    batch_invariant: bool | None = None,
) -> RuntimeSettings:
    chosen = engine or manifest.engine
    spec = get_engine(chosen)  # an unknown engine: ArtifactError naming the registered ones
    if not spec.loads(model_path):
        others = [name for name in engines_for_file(model_path) if name != chosen]
        hint = f"Load it with engine='{others[0]}'" if others else "No registered engine loads it"
        raise ArtifactError(
            f"This artifact's model file is {model_path.name}; {spec.title} loads only "
            f"{', '.join(spec.suffixes)} files. {hint}, or use the artifact's variant for {spec.title}."
        )
    defaults, source = _defaults(manifest, target)
    notes: list[str] = []
    if threads is None and defaults.get("threads"):
        wanted = int(defaults["threads"])
        threads = min(wanted, _usable_cores())
        if threads < wanted:
            notes.append(f"{source} asks for {wanted} threads; this machine has {threads} cores")
    per_engine = defaults.get("engines", {}) or {}
    options: dict[str, list[str]] = {}
    for name, each in ENGINES.items():  # every registered engine's option: bench and serve report them
        recorded = (per_engine.get(name) or {}).get(each.option)
        options.setdefault(each.option, list(recorded or each.default_option))
    recorded = (per_engine.get(chosen) or {}).get(spec.option)  # the chosen engine's own entry wins
    options[spec.option] = list(recorded or spec.default_option)
    if batch_invariant is None:
        invariant, invariant_source = default_batch_invariant(manifest)
    else:
        invariant, invariant_source = bool(batch_invariant), "the caller"
    return RuntimeSettings(
        engine=chosen,
        threads=threads,
        options=options,
        source=source,
        notes=notes,
        max_batch_rows=_positive("max_batch_rows", max_batch_rows, DEFAULT_MAX_BATCH_ROWS),
        max_batch_tokens=_positive("max_batch_tokens", max_batch_tokens, DEFAULT_MAX_BATCH_TOKENS),
        batch_invariant=invariant,
        batch_invariant_source=invariant_source,
    )


def with_providers(base: str | Mapping[str, Any] | None, chosen: dict[str, dict[str, list[str]]]) -> Any:
    """``base`` runtime defaults (a mapping, or "host"/None: none) with the chosen engine options on top."""
    if not chosen:
        return base
    merged: dict[str, Any] = dict(base) if isinstance(base, Mapping) else {}
    engines = {name: dict(options) for name, options in (merged.get("engines") or {}).items()}
    for name, options in chosen.items():
        engines[name] = {**engines.get(name, {}), **options}
    merged["engines"] = engines
    return merged
