"""Imitating a less capable target on this host, as far as it honestly can be done.

Threads are capped to the target's; the worker is pinned to the profile's CPUs
(``os.sched_setaffinity``) and its memory capped at the profile's (a cgroup where one can
be made, else ``RLIMIT_AS``; see ``bench/memcap.py``).
For OpenVINO on x86, oneDNN's ``ONEDNN_MAX_CPU_ISA`` caps the instruction set its kernels
may use, so an AVX2-only box can be imitated on an AVX-512/VNNI host (measured here: with
the cap at AVX2, NNCF INT8 MiniLM went from 1.9 ms to 6.6 ms while OpenVINO FP32 went
from 2.9 to 3.8 ms, as on a real AVX2-only EPYC). ONNX Runtime's MLAS kernels have no
such switch: ORT results on a host with a richer ISA than the target's stay optimistic,
and the results say so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from edgekit.errors import TargetError
from edgekit.targets.host import HostInfo
from edgekit.targets.profiles import TargetProfile

# Highest first: the first level whose features the target has is its cap.
_ONEDNN_LEVELS = [
    ("AVX512_CORE_BF16", {"avx512f", "avx512_vnni", "avx512_bf16"}),
    ("AVX512_CORE_VNNI", {"avx512f", "avx512_vnni"}),
    ("AVX512_CORE", {"avx512f"}),
    ("AVX2_VNNI", {"avx2", "avx_vnni"}),
    ("AVX2", {"avx2"}),
    ("AVX", {"avx"}),
]


def onednn_isa_cap(features: list[str] | tuple[str, ...]) -> str | None:
    present = set(features)
    return next((level for level, needed in _ONEDNN_LEVELS if needed <= present), None)


@dataclass(frozen=True)
class EmulationPlan:
    threads: int
    engine_env: dict[str, dict[str, str]] = field(default_factory=dict)  # engine -> environment variables
    applied: list[str] = field(default_factory=list)  # what was imitated, for the results' label
    caveats: list[str] = field(default_factory=list)
    latency_representative: bool = True  # False when the host cannot stand for the device at all
    cpu_affinity: tuple[int, ...] | None = None  # CPUs the worker is pinned to
    memory_cap_mb: int | None = None  # address-space cap of the worker

    @property
    def label(self) -> str:
        return "emulated-on-host (" + ", ".join(self.applied) + ")"


@dataclass(frozen=True)
class TargetRun:
    """How variants are run for a target here: threads, per-engine environment, and the label."""

    threads: int
    plan: EmulationPlan | None  # None: the target is this host
    device_caveats: tuple[str, ...] = ()  # on-device: where this machine differs from the profile

    def env_for(self, engine: str) -> tuple[tuple[str, str], ...]:
        return tuple(self.plan.engine_env.get(engine, {}).items()) if self.plan else ()

    @property
    def cpu_affinity(self) -> tuple[int, ...] | None:
        return self.plan.cpu_affinity if self.plan else None

    @property
    def memory_cap_mb(self) -> int | None:
        return self.plan.memory_cap_mb if self.plan else None

    @property
    def mode(self) -> str:
        return "measured-on-device" if self.plan is None else "emulated-on-host"

    @property
    def description(self) -> str:
        return self.mode if self.plan is None else self.plan.label

    def target_info(self, name: str) -> dict:
        info: dict = {"name": name, "mode": self.mode}
        if self.plan is not None:
            info.update(emulated=self.plan.applied, caveats=self.plan.caveats)
        elif self.device_caveats:
            info["caveats"] = list(self.device_caveats)
        return info


def target_run(target: TargetProfile, threads: int | None = None, on_device: bool = False) -> TargetRun:
    """Plan a run for ``target`` on this host; ``threads`` overrides the profile's.

    ``on_device``: this machine *is* the target (e.g. ``edgekit bench --remote`` running on
    the device): nothing is imitated and results are labelled measured-on-device. A machine
    of another architecture than the profile's is refused rather than mislabelled.
    """
    from edgekit.targets.host import detect_host

    caveats: tuple[str, ...] = ()
    if on_device and not target.is_host:
        host = detect_host()
        if host.arch != target.arch:
            raise TargetError(
                f"--on-device says this machine is '{target.name}' ({target.arch}), but it is {host.arch} "
                f"({host.cpu_model}). Run on the device itself, or drop --on-device to emulate the profile."
            )
        caveats = tuple(_device_differences(target, host))
    plan = None if target.is_host or on_device else plan_emulation(target, detect_host())
    wanted = threads or (plan.threads if plan else target.threads)
    if plan is None and not target.is_host:  # on the device: never more threads than it has cores
        wanted = min(wanted, detect_host().usable_cores)
    return TargetRun(wanted, plan, caveats)


def _device_differences(target: TargetProfile, host: HostInfo) -> list[str]:
    """Same architecture, but is it the profile's device? Say what does not match."""
    differences = []
    if host.usable_cores != target.cores:
        differences.append(f"the profile has {target.cores} cores; this machine lets us use {host.usable_cores}")
    missing = sorted(set(target.isa_features) - set(host.isa_features))
    if missing:
        differences.append(f"this machine lacks the profile's ISA features {missing}")
    from edgekit.targets.profiles import KNOWN_ISA_FEATURES

    extra = sorted((set(host.isa_features) & KNOWN_ISA_FEATURES) - set(target.isa_features))
    if extra:
        differences.append(f"this machine has ISA features the profile lacks {extra} (INT8 may gain more here)")
    return [f"measured on {host.cpu_model}, taken as {target.name}: {d}" for d in differences]


def plan_emulation(target: TargetProfile, host: HostInfo, allowed_cpus: set[int] | None = None) -> EmulationPlan:
    """``allowed_cpus``: the CPUs this process may run on (default: its current affinity)."""
    wanted = target.emulation.threads or target.threads
    threads = max(1, min(wanted, host.usable_cores))
    applied = [f"threads={threads}"]
    caveats: list[str] = []
    if threads < target.threads:
        caveats.append(f"the target runs {target.threads} threads; emulated with {threads} on this host")
    affinity = _plan_affinity(target, threads, allowed_cpus, applied, caveats)
    memory_cap = target.emulation.memory_cap_mb
    if memory_cap:
        if host.ram_mb and memory_cap > host.ram_mb:
            caveats.append(f"the memory cap ({memory_cap} MB) is above this host's RAM ({host.ram_mb} MB)")
        applied.append(f"memory capped at {memory_cap} MB")
    engine_env: dict[str, dict[str, str]] = {}
    if target.arch != host.arch:
        caveats.append(f"the target is {target.arch}, this host {host.arch}: latencies are not the device's")
    elif target.arch == "x86_64":
        cap, host_cap = onednn_isa_cap(target.isa_features), onednn_isa_cap(host.isa_features)
        if cap and cap != host_cap and set(target.isa_features) <= set(host.isa_features):
            engine_env["openvino"] = {"ONEDNN_MAX_CPU_ISA": cap}
            applied.append(f"OpenVINO ISA capped at {cap}")
            caveats.append("ONNX Runtime still uses this host's full instruction set (no cap exists for it)")
    return EmulationPlan(
        threads,
        engine_env,
        applied,
        caveats,
        latency_representative=target.arch == host.arch,
        cpu_affinity=affinity,
        memory_cap_mb=memory_cap,
    )


def _plan_affinity(
    target: TargetProfile, threads: int, allowed_cpus: set[int] | None, applied: list[str], caveats: list[str]
) -> tuple[int, ...] | None:
    """The profile's CPUs that this process may use; fewer CPUs than threads is worth a caveat."""
    wanted = target.emulation.cpu_affinity
    if not wanted:
        return None
    if allowed_cpus is None:
        allowed_cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    if not allowed_cpus:  # macOS and Windows: no affinity API here
        caveats.append("CPU pinning is not available on this OS; the worker runs on any CPU")
        return None
    cpus = tuple(sorted(set(wanted) & allowed_cpus))
    missing = sorted(set(wanted) - allowed_cpus)
    if missing:
        caveats.append(f"CPUs {missing} of the profile's affinity are not available here")
    if not cpus:
        return None
    applied.append("pinned to CPUs " + ",".join(map(str, cpus)))
    if len(cpus) < threads:
        caveats.append(f"{threads} threads share {len(cpus)} pinned CPU(s)")
    return cpus
