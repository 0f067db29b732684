"""Target device profiles: what a device is, which engines it runs, and what it must meet.

A profile lives in ``targets/<name>.yaml``. It is validated by pydantic so that a typo
names the field instead of failing later in a benchmark. The special profile ``host``
has ``detect: true``: its CPU facts are read from the running machine at load time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgekit.errors import TargetError, describe_validation_error
from edgekit.targets.host import detect_host
from edgekit.yaml_files import read_yaml_mapping

KNOWN_ISA_FEATURES = frozenset(
    {
        # x86
        "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
        "avx_vnni", "avx512_bf16", "amx", "amx_int8",
        # Arm
        "neon", "dotprod", "i8mm", "bf16", "sve", "sve2", "fp16",
    }
)  # fmt: skip

DeviceClass = Literal["phone", "board", "box", "jetson", "desktop", "server", "host"]
Precision = Literal["fp32", "fp16", "int8"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineChoice(_Strict):
    """One inference engine, with its execution providers / device in order of preference."""

    engine: str = Field(description="a runtime engine (edgekit.runtime.engines): onnxruntime, openvino, ...")
    providers: list[str] | None = Field(None, description="ONNX Runtime execution providers, in order")
    device: str | None = Field(None, description="OpenVINO device name (CPU, GPU, NPU)")

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, name: str) -> str:
        from edgekit.runtime.engines import engine_names

        if name not in engine_names():
            raise ValueError(f"unknown engine '{name}'; known: {', '.join(engine_names())}")
        return name

    def option_values(self) -> list[str]:
        """This choice in the engine's own option (``providers`` or ``devices``, per the engine registry)."""
        from edgekit.runtime.engines import get_engine

        spec = get_engine(self.engine)
        given = [self.device] if self.device else self.providers
        return list(given or spec.default_option)


class QuantizationPrefs(_Strict):
    format: Literal["QDQ", "QOperator"] = "QOperator"
    per_channel: bool = True
    # Needed where the ISA lacks VNNI-style instructions and saturates u8*s8 sums.
    reduce_range: bool = False


class PrecisionPrefs(_Strict):
    preferred: list[Precision] = Field(default_factory=lambda: ["int8", "fp32"], min_length=1)
    quantization: QuantizationPrefs = Field(default_factory=QuantizationPrefs)


class Budgets(_Strict):
    """Limits a variant must meet on this device; ``None`` means no limit."""

    p95_latency_ms: float | None = Field(None, gt=0)
    peak_ram_mb: float | None = Field(None, gt=0)
    model_mb: float | None = Field(None, gt=0)
    max_accuracy_drop: float | None = Field(None, ge=0, description="accuracy points; the gate uses 1.0 when unset")


class BenchmarkShapes(_Strict):
    batch_sizes: list[int] = Field(default_factory=lambda: [1], min_length=1)
    sequence_lengths: list[int] = Field(default_factory=lambda: [16, 64, 128], min_length=1)


class Emulation(_Strict):
    """How a host can imitate this device: fewer threads, pinned cores, less memory."""

    threads: int | None = Field(None, ge=1)
    cpu_affinity: list[int] | None = None
    memory_cap_mb: int | None = Field(None, ge=64)


class CostModel(_Strict):
    """Datasheet figures for estimates; each is a peak, not a measurement."""

    peak_gflops: dict[Precision, float] = Field(default_factory=dict)
    memory_bandwidth_gbs: float | None = Field(None, gt=0)
    clock_ghz: float | None = Field(None, gt=0, description="clock of the cores the profile's threads run on")
    # Confidence tag per figure ("peak_gflops.fp32": "D/U"), as in docs/devices.md §1.1; an
    # untagged figure counts as unsourced, and the estimator widens its band for "U".
    tags: dict[str, str] = Field(default_factory=dict)


class TargetProfile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    display_name: str
    device_class: DeviceClass
    arch: Literal["x86_64", "aarch64", "armv7"]
    cpu: str
    cores: int = Field(ge=1)
    isa_features: list[str] = Field(default_factory=list)
    ram_mb: int = Field(ge=64)
    accelerators: list[str] = Field(default_factory=list)
    engines: list[EngineChoice] = Field(min_length=1)
    threads: int = Field(ge=1)
    precision: PrecisionPrefs = Field(default_factory=PrecisionPrefs)
    budgets: Budgets = Field(default_factory=Budgets)
    benchmark: BenchmarkShapes = Field(default_factory=BenchmarkShapes)
    emulation: Emulation = Field(default_factory=Emulation)
    cost_model: CostModel = Field(default_factory=CostModel)
    sources: list[str] = Field(default_factory=list, description="where the figures come from")
    detect: bool = Field(False, description="fill CPU facts from the running machine")

    @model_validator(mode="after")
    def _check(self) -> TargetProfile:
        unknown = sorted(set(self.isa_features) - KNOWN_ISA_FEATURES)
        if unknown:
            raise ValueError(f"isa_features has unknown names {unknown}; use some of {sorted(KNOWN_ISA_FEATURES)}")
        if self.threads > self.cores:
            raise ValueError(f"threads ({self.threads}) cannot exceed cores ({self.cores})")
        return self

    @property
    def is_host(self) -> bool:
        return self.detect


def runtime_defaults(profile: TargetProfile) -> dict:
    """What an artifact records so that the device's runtime needs no profile to start right.

    ``threads`` is None for a detected profile (``host``): the machine that runs the artifact
    is not the one that converted it, so the engine picks its own core count there.
    """
    from edgekit.runtime.engines import get_engine

    engines: dict[str, dict[str, list[str]]] = {}
    for choice in profile.engines:  # in order of preference; an engine may be listed per device
        values = engines.setdefault(choice.engine, {}).setdefault(get_engine(choice.engine).option, [])
        values += [v for v in choice.option_values() if v not in values]
    return {"threads": None if profile.detect else profile.threads, "engines": engines}


def _repo_targets_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "targets"


def targets_dirs() -> list[Path]:
    """Where profiles are looked up, first match wins.

    ``$EDGEKIT_TARGETS_DIR`` (a user's own profiles), then the checkout's ``targets/``
    (editable installs), then the copy packaged inside the wheel.
    """
    dirs: list[Path] = []
    if env := os.environ.get("EDGEKIT_TARGETS_DIR"):
        dirs.append(Path(env))
    dirs.append(_repo_targets_dir())
    dirs.append(Path(__file__).resolve().parents[1] / "_targets")
    return [d for d in dirs if d.is_dir()]


def list_targets() -> list[str]:
    names: set[str] = set()
    for directory in targets_dirs():
        names.update(p.stem for p in directory.glob("*.yaml"))
    return sorted(names)


def profile_path(name_or_path: str) -> Path:
    """The YAML file a target name (or path) refers to."""
    return _find(name_or_path)


def _find(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if candidate.is_file():
            return candidate
        raise TargetError(f"Target profile file {candidate} does not exist.")
    for directory in targets_dirs():
        path = directory / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    known = ", ".join(list_targets()) or "(none found)"
    raise TargetError(
        f"Unknown target '{name_or_path}'. Known targets: {known}. "
        "Run `edgekit targets list`, or pass a path to a profile YAML."
    )


def load_target(name_or_path: str = "host") -> TargetProfile:
    """Load and validate a profile by name (``raspberry-pi-5``) or by YAML path."""
    path = _find(name_or_path)
    raw = read_yaml_mapping(path, "Target profile", TargetError)
    if raw.get("name") not in (None, path.stem):
        raise TargetError(f"Target profile {path} has name '{raw['name']}'; it must match the file name '{path.stem}'.")
    raw.setdefault("name", path.stem)
    if raw.get("detect"):
        raw = _fill_from_host(raw)
    try:
        return TargetProfile.model_validate(raw)
    except ValidationError as exc:
        raise TargetError(
            describe_validation_error(f"Target profile {path}", exc, "docs/targets.md for the fields a profile takes")
        ) from None


def _fill_from_host(raw: dict) -> dict:
    """For ``detect: true`` profiles, facts about the CPU come from the machine, not the file."""
    host = detect_host()
    filled = dict(raw)
    filled["arch"] = host.arch if host.arch in {"x86_64", "aarch64", "armv7"} else raw.get("arch")
    filled["cpu"] = host.cpu_model
    filled["cores"] = host.usable_cores
    filled["isa_features"] = [f for f in host.isa_features if f in KNOWN_ISA_FEATURES]
    if host.ram_mb:
        filled["ram_mb"] = host.ram_mb
    filled["threads"] = min(int(raw.get("threads", host.usable_cores)), host.usable_cores)
    # Without VNNI, x86 u8*s8 products can saturate 16-bit sums: quantize with reduce_range.
    has_vnni = bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(host.isa_features))
    precision = dict(raw.get("precision") or {})
    quantization = dict(precision.get("quantization") or {})
    quantization["reduce_range"] = host.arch == "x86_64" and not has_vnni
    precision["quantization"] = quantization
    filled["precision"] = precision
    return filled
