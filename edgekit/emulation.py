"""Imitating a less capable target on this host, as far as it honestly can be done.

Threads are capped to the target's. For OpenVINO on x86, oneDNN's ``ONEDNN_MAX_CPU_ISA``
caps the instruction set its kernels may use, so an AVX2-only box can be imitated on an
AVX-512/VNNI host (measured here: with the cap at AVX2, NNCF INT8 MiniLM went from 1.9 ms
to 6.6 ms while OpenVINO FP32 went from 2.9 to 3.8 ms, as on a real AVX2-only EPYC).
ONNX Runtime's MLAS kernels have no such switch: ORT results on a host with a richer ISA
than the target's stay optimistic, and the results say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.hostinfo import HostInfo
from edgekit.targets import TargetProfile

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

    @property
    def label(self) -> str:
        return "emulated-on-host (" + ", ".join(self.applied) + ")"


@dataclass(frozen=True)
class TargetRun:
    """How variants are run for a target here: threads, per-engine environment, and the label."""

    threads: int
    plan: EmulationPlan | None  # None: the target is this host

    def env_for(self, engine: str) -> tuple[tuple[str, str], ...]:
        return tuple(self.plan.engine_env.get(engine, {}).items()) if self.plan else ()

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
        return info


def target_run(target: TargetProfile, threads: int | None = None) -> TargetRun:
    """Plan a run for ``target`` on this host; ``threads`` overrides the profile's."""
    from edgekit.hostinfo import detect_host

    plan = None if target.is_host else plan_emulation(target, detect_host())
    return TargetRun(threads or (plan.threads if plan else target.threads), plan)


def plan_emulation(target: TargetProfile, host: HostInfo) -> EmulationPlan:
    wanted = target.emulation.threads or target.threads
    threads = max(1, min(wanted, host.usable_cores))
    applied = [f"threads={threads}"]
    caveats: list[str] = []
    if threads < target.threads:
        caveats.append(f"the target runs {target.threads} threads; emulated with {threads} on this host")
    engine_env: dict[str, dict[str, str]] = {}
    if target.arch != host.arch:
        caveats.append(f"the target is {target.arch}, this host {host.arch}: latencies are not the device's")
    elif target.arch == "x86_64":
        cap, host_cap = onednn_isa_cap(target.isa_features), onednn_isa_cap(host.isa_features)
        if cap and cap != host_cap and set(target.isa_features) <= set(host.isa_features):
            engine_env["openvino"] = {"ONEDNN_MAX_CPU_ISA": cap}
            applied.append(f"OpenVINO ISA capped at {cap}")
            caveats.append("ONNX Runtime still uses this host's full instruction set (no cap exists for it)")
    return EmulationPlan(threads, engine_env, applied, caveats, latency_representative=target.arch == host.arch)
