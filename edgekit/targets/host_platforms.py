"""ISA features off Linux, so the pre-flight is not blind on a Mac or a Windows PC.

macOS: ``sysctl -a`` — Intel Macs list CPUID flags in ``machdep.cpu.features`` and
``machdep.cpu.leaf7_features`` and both kinds list ``hw.optional.*: 1`` (Apple silicon:
``hw.optional.arm.FEAT_DotProd``, ``FEAT_I8MM``, ``FEAT_BF16``, ``FEAT_FP16``, ``hw.optional.neon``).
Windows: ``py-cpuinfo`` when installed (its flags are CPUID's, as on Linux), else the kernel's
``IsProcessorFeaturePresent`` (ctypes; a few features only: it has no FMA, F16C or VNNI bits).
Every reader is pure over its input text or callable, so tests feed them recorded outputs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

# sysctl flag words (machdep.cpu.*features, upper case) -> edgekit names
_MAC_CPUID = {"SSE4.2": "sse4_2", "AVX1.0": "avx", "AVX2": "avx2", "FMA": "fma", "F16C": "f16c",
              "AVX512F": "avx512f", "AVX512BW": "avx512bw", "AVX512VNNI": "avx512_vnni"}  # fmt: skip
# hw.optional.<key>: 1 -> edgekit names
_MAC_OPTIONAL = {
    "sse4_2": "sse4_2", "avx1_0": "avx", "avx2_0": "avx2", "fma": "fma", "f16c": "f16c",
    "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512vnni": "avx512_vnni",
    "neon": "neon", "arm.AdvSIMD": "neon", "neon_fp16": "fp16", "arm.FEAT_FP16": "fp16",
    "arm.FEAT_DotProd": "dotprod", "arm.FEAT_I8MM": "i8mm", "arm.FEAT_BF16": "bf16",
}  # fmt: skip
# py-cpuinfo flag names (lower case, CPUID and /proc/cpuinfo spellings) -> edgekit names
_CPUINFO_FLAGS = {"sse4_2": "sse4_2", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
                  "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512vnni": "avx512_vnni",
                  "avx512_vnni": "avx512_vnni", "avxvnni": "avx_vnni", "avx_vnni": "avx_vnni",
                  "avx512_bf16": "avx512_bf16", "amx_int8": "amx_int8", "amx_tile": "amx",
                  "asimd": "neon", "neon": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "bf16": "bf16"}  # fmt: skip
# IsProcessorFeaturePresent constants (winnt.h) -> edgekit names
WINDOWS_PF = {38: "sse4_2", 39: "avx", 40: "avx2", 41: "avx512f", 19: "neon", 43: "dotprod"}


def parse_sysctl(text: str) -> tuple[str, tuple[str, ...]]:
    """(CPU model, sorted edgekit feature names) from ``sysctl -a`` (or ``sysctl machdep.cpu hw.optional``)."""
    model, features = "", set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            key, sep, value = line.partition("=")  # `sysctl` on BSDs prints key=value
        key, value = key.strip(), value.strip()
        if key == "machdep.cpu.brand_string":
            model = value
        elif key in ("machdep.cpu.features", "machdep.cpu.leaf7_features"):
            features |= {name for word, name in _MAC_CPUID.items() if word in value.upper().split()}
        elif key.startswith("hw.optional.") and value == "1":
            name = _MAC_OPTIONAL.get(key.removeprefix("hw.optional."))
            if name:
                features.add(name)
    return model, tuple(sorted(features))


def macos_facts(run: Callable[[list[str]], str] | None = None) -> tuple[str, tuple[str, ...]]:
    """Read ``sysctl`` on a Mac; ("", ()) when it cannot be run."""
    run = run or _run
    try:
        return parse_sysctl(run(["sysctl", "machdep.cpu", "hw.optional"]))
    except (OSError, subprocess.SubprocessError):
        return "", ()


def features_from_cpuinfo_flags(flags: list[str]) -> tuple[str, ...]:
    return tuple(sorted({_CPUINFO_FLAGS[f.lower()] for f in flags if f.lower() in _CPUINFO_FLAGS}))


def windows_facts(
    cpuinfo: Callable[[], dict] | None = None, present: Callable[[int], bool] | None = None
) -> tuple[str, tuple[str, ...], str]:
    """(CPU model, features, source) on Windows: py-cpuinfo if installed, else IsProcessorFeaturePresent."""
    if cpuinfo is None:
        try:
            from cpuinfo import get_cpu_info  # py-cpuinfo: optional

            cpuinfo = get_cpu_info
        except ImportError:
            cpuinfo = None
    if cpuinfo is not None:
        try:
            info = cpuinfo()
            return info.get("brand_raw", ""), features_from_cpuinfo_flags(info.get("flags", [])), "py-cpuinfo"
        except Exception:  # a CPUID probe that fails must not stop a benchmark; try the kernel's answer
            pass
    if present is None:
        try:
            import ctypes

            present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
        except (ImportError, AttributeError, OSError):
            return "", (), "none"
    return "", tuple(sorted({name for code, name in WINDOWS_PF.items() if present(code)})), "IsProcessorFeaturePresent"


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout
