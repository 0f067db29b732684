"""This host's arithmetic peak, derived from its ISA, its clock and the threads used.

peak GFLOP/s = threads x GHz x FLOPs per cycle per core, with FLOPs per cycle = SIMD lanes
x 2 (a fused multiply-add is two FLOPs) x FMA pipes. The pipe count is not in /proc/cpuinfo:
2 is assumed on every ISA here (the usual count on server x86 and on Arm big cores), so it
is an assumption that the estimate's band has to absorb, and it is listed in every estimate.

INT8 multiplies that by how many 8-bit multiply-adds one instruction does per FP32 FMA lane:
VNNI's VPDPBUSD and Arm's SDOT do 4, Arm's SMMLA (i8mm) 8, and AVX2 without VNNI 2 (the
VPMADDUBSW + VPMADDWD pair). AMX tiles are not counted: whether ONNX Runtime uses them for
a batch-1 matrix product is not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.estimate.device_model import DeviceModel

FMA_PIPES_ASSUMED = 2


@dataclass(frozen=True)
class Clock:
    ghz: float
    source: str  # where the figure was read


def host_clock(root: Path = Path("/")) -> Clock | None:
    """The cores' clock: cpufreq's maximum where the kernel exposes it, else /proc/cpuinfo's MHz
    (in a VM often the nominal clock, as the hypervisor reports it)."""
    max_freq = root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
    try:
        return Clock(int(max_freq.read_text().strip()) / 1e6, "cpufreq cpuinfo_max_freq")
    except (OSError, ValueError):
        pass
    try:
        text = (root / "proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "cpu mhz":
            try:
                return Clock(float(value) / 1e3, "/proc/cpuinfo cpu MHz")
            except ValueError:
                return None
    return None


def simd_lanes_fp32(features: set[str]) -> int:
    if "avx512f" in features:
        return 16
    if {"avx2", "fma"} <= features or "avx2" in features:
        return 8
    return 4  # SSE or NEON: 128-bit


def int8_per_fp32(features: set[str]) -> int:
    if "i8mm" in features:
        return 8
    if {"dotprod", "avx512_vnni", "avx_vnni"} & features:
        return 4
    return 2


def host_model(threads: int, features: set[str], clock: Clock, name: str = "this host") -> DeviceModel:
    """The host's peaks over ``threads`` cores; memory bandwidth is not modelled on the host."""
    fp32 = threads * clock.ghz * simd_lanes_fp32(features) * 2 * FMA_PIPES_ASSUMED
    return DeviceModel(name, {"fp32": fp32, "int8": fp32 * int8_per_fp32(features)}, None, clock.ghz)


# What an oneDNN ISA cap (targets/emulation.py) leaves of the host's features.
ISA_CAP_FEATURES = {
    "AVX2": {"avx", "avx2", "fma"},
    "AVX2_VNNI": {"avx", "avx2", "fma", "avx_vnni"},
    "AVX512_CORE": {"avx", "avx2", "fma", "avx512f"},
    "AVX512_CORE_VNNI": {"avx", "avx2", "fma", "avx512f", "avx512_vnni"},
}
