"""Facts about the machine we are running on: CPU model, ISA features, cores, memory.

Torch-free and dependency-free so that the benchmark harness can record the environment
on a device where only ``edgekit[runtime]`` is installed.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

# ISA features that matter for inference speed, under the names target profiles use.
# /proc/cpuinfo spells some of them differently on x86 ("flags") and Arm ("Features").
_X86_FEATURES = {
    "sse4_2": "sse4_2",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512_vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "avx512_bf16": "avx512_bf16",
    "amx_tile": "amx",
    "amx_int8": "amx_int8",
}
_ARM_FEATURES = {
    "asimd": "neon",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
    "bf16": "bf16",
    "sve": "sve",
    "sve2": "sve2",
    "fphp": "fp16",
}


@dataclass(frozen=True)
class HostInfo:
    arch: str
    cpu_model: str
    logical_cores: int
    usable_cores: int
    isa_features: tuple[str, ...]
    ram_mb: int | None
    os: str
    python: str
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["isa_features"] = list(self.isa_features)
        return data


def _normalise_arch(machine: str) -> str:
    machine = machine.lower()
    if machine in {"amd64", "x86_64"}:
        return "x86_64"
    if machine in {"arm64", "aarch64"}:
        return "aarch64"
    return machine


def detectable_features() -> set[str]:
    """Every feature name ``detect_host`` can report."""
    return set(_X86_FEATURES.values()) | set(_ARM_FEATURES.values())


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """Return (cpu model, sorted edgekit feature names) from /proc/cpuinfo text."""
    model = ""
    raw: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in {"model name", "hardware", "cpu model"} and not model:
            model = value.strip()
        elif key in {"flags", "features"} and not raw:
            raw = set(value.split())
    features = {name for flag, name in {**_X86_FEATURES, **_ARM_FEATURES}.items() if flag in raw}
    return model, tuple(sorted(features))


def _ram_mb() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)
    except (ValueError, OSError, AttributeError):
        return None


def detect_host() -> HostInfo:
    """Describe the running machine. Fields that cannot be read are left empty, never guessed."""
    model, features, source = isa_facts(platform.system())
    logical = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = logical
    return HostInfo(
        arch=_normalise_arch(platform.machine()),
        cpu_model=model or platform.processor() or "unknown",
        logical_cores=logical,
        usable_cores=usable,
        isa_features=features,
        ram_mb=_ram_mb(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        extra={"isa_source": source} if source else {},
    )


def isa_facts(system: str) -> tuple[str, tuple[str, ...], str]:
    """(CPU model, ISA features, where they were read): /proc/cpuinfo, sysctl, py-cpuinfo or the Windows API."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model, features = parse_cpuinfo(cpuinfo.read_text(errors="replace"))
        return model, features, "/proc/cpuinfo"
    from edgekit.targets import host_platforms  # stdlib only; py-cpuinfo if installed

    if system == "Darwin":
        model, features = host_platforms.macos_facts()
        return model, features, "sysctl" if features else ""
    if system == "Windows":
        model, features, source = host_platforms.windows_facts()
        return model, features, source if features else ""
    return "", (), ""
