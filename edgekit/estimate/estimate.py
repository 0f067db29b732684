"""The estimator's front: a device's batch-1 latency for an artifact, from the artifact's own
graph, the profile's datasheet figures and a measurement of the same artifact on this host.

An estimate is never a measurement: it carries ``basis`` (how it was made), a band (how far
off it can be, from ``benchmarks/results/estimator-validation.md``) and its assumptions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from edgekit.artifact import read_manifest
from edgekit.errors import TargetError
from edgekit.estimate.calibrate import HostMeasurement, fit, predict_ms
from edgekit.estimate.device_model import DeviceModel, missing_peaks
from edgekit.estimate.graph_cost import GraphCost, as_precision, graph_cost
from edgekit.estimate.host_peak import FMA_PIPES_ASSUMED

# Relative error bands: the max |error| of the validation experiments, rounded up to 5%
# (benchmarks/results/estimator-validation.md, MiniLM-L6 SST-2, 16/64/128 tokens; two runs on
# 2026-11-30, one on a loaded machine and one on an idle one).
# "same ISA": 77% (ov-fp32 predicted at 2 threads from 1 thread, idle run: thread scaling is the
# largest same-ISA error), 32% (the same run measured twice, loaded), 16% (onnx-fp32 -> ov-fp32).
# "other ISA": 60% (AVX-512 -> AVX2 under the oneDNN cap, idle run) and 134% (fp32 -> int8 at
# 16 tokens, loaded run). x86 -> Arm could not be checked at all: Arm devices get the "other
# ISA" band, widened further below.
BAND_SAME_ISA = 0.80
BAND_OTHER_ISA = 1.35
# A figure tagged unsourced ("U", e.g. a peak derived with an assumed FMA pipe count) could be
# off by the ratio of the plausible pipe counts (2 vs 4 on Arm big cores): a factor of 2.
UNSOURCED_FACTOR = 2.0


@dataclass(frozen=True)
class Estimate:
    value_ms: float
    low_ms: float
    high_ms: float
    basis: str
    assumptions: tuple[str, ...]
    tokens: int = 0
    label: str = "estimated"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["assumptions"] = list(self.assumptions)
        return data


def target_model(profile) -> DeviceModel:
    """The profile's cost figures as a device model; refuses, naming the fields, when there are none."""
    cost = profile.cost_model
    if not cost.peak_gflops:
        raise TargetError(
            f"Target '{profile.name}' has no cost figures, so its latency cannot be estimated: "
            "cost_model.peak_gflops (at least fp32) is missing. Add sourced or derived figures with their "
            "derivation and confidence tag (docs/targets.md, docs/devices.md), or benchmark on the device (--remote)."
        )
    return DeviceModel(profile.name, dict(cost.peak_gflops), cost.memory_bandwidth_gbs, cost.clock_ghz)


@lru_cache(maxsize=64)
def _cost(onnx_file: str, tokens: int) -> GraphCost:
    return graph_cost(onnx_file, 1, tokens)


def artifact_cost(artifact: Path, tokens: int, reference_onnx: Path | None = None) -> GraphCost:
    """The artifact's ONNX graph; for other formats (OpenVINO IR, .pte, Core ML) the bundle's ONNX
    reference of the same model at the artifact's precision, said in the cost's notes."""
    manifest = read_manifest(artifact)
    model_file = artifact / manifest.model_file
    if model_file.suffix.lower() == ".onnx":
        return _cost(str(model_file), tokens)
    if reference_onnx is None:
        raise TargetError(
            f"{artifact.name} is {model_file.suffix} and has no ONNX graph to cost; estimate it from a bundle that "
            "also holds the ONNX reference (onnx-fp32)."
        )
    why = f"{model_file.suffix} not costed directly: its ONNX reference ({reference_onnx.name}) at {manifest.precision}"
    return as_precision(_cost(str(reference_onnx), tokens), manifest.precision, why)


def _band(profile, cost: GraphCost, device: DeviceModel, same_isa: bool) -> tuple[float, float, list[str]]:
    """(low factor, high factor, assumptions) around the value."""
    base = BAND_SAME_ISA if same_isa else BAND_OTHER_ISA
    widen, notes = 1.0, []
    used = {f"peak_gflops.{op.precision}" for op in cost.ops if op.flops > 0 and op.precision in device.peak_gflops}
    if device.memory_bandwidth_gbs:
        used.add("memory_bandwidth_gbs")
    for figure in sorted(used):
        tag = profile.cost_model.tags.get(figure, "U")
        if "U" in tag:
            widen = UNSOURCED_FACTOR
            notes.append(f"{figure} is tagged [{tag}]: band widened {UNSOURCED_FACTOR:g}x")
    return 1 / ((1 + base) * widen), (1 + base) * widen, notes


def estimate_latency(
    artifact: Path,
    profile,
    host_measurement: HostMeasurement,
    tokens: int,
    reference_onnx: Path | None = None,
    measured_artifact: Path | None = None,
) -> Estimate:
    """The device's batch-1 latency at ``tokens`` tokens for ``artifact``.

    ``host_measurement`` is of ``measured_artifact`` (default: the artifact itself). A variant
    that cannot run here (a .pte on this host) is calibrated from another one's measurement.
    """
    device = target_model(profile)
    cost = artifact_cost(artifact, tokens, reference_onnx)
    missing = missing_peaks(cost, device)
    if missing:
        fields = ", ".join(f"cost_model.peak_gflops.{p}" for p in missing)
        raise TargetError(f"Target '{profile.name}' lacks {fields}, which {artifact.name} computes in.")
    measured = measured_artifact or artifact
    calibration = fit(host_measurement, lambda n: artifact_cost(measured, n, reference_onnx))
    value = predict_ms(calibration, cost, device)
    host = host_measurement.device
    same_isa = profile.arch == "x86_64" and host.peak_gflops == device.peak_gflops
    low, high, notes = _band(profile, cost, device, same_isa)
    assumptions = [
        f"calibrated on {host_measurement.label}: {calibration.efficiency:.1%} of its peak, "
        f"{calibration.overhead_ms:.2f} ms fixed overhead (fit within {calibration.residual_pct:.0f}%)",
        f"the host's efficiency carries over to {profile.name} (host peak: {FMA_PIPES_ASSUMED} FMA pipes assumed)",
        "CPU execution only: no NPU, GPU or Neural Engine is modelled",
        *cost.notes,
        *notes,
    ]
    if measured != artifact:
        assumptions.append(f"{artifact.name} cannot run on this host: calibrated from {measured.name}'s measurement")
    if device.memory_bandwidth_gbs is None:
        assumptions.append("memory bandwidth unknown ([U]): compute-only, the figure may be low if memory-bound")
    else:
        assumptions.append("weights are read from memory once per inference; activations stay in cache")
    if not (host.clock_ghz and device.clock_ghz):
        assumptions.append("the fixed overhead is not scaled (a clock is unknown)")
    if cost.uncosted:
        assumptions.append(f"ops with unknown shapes not costed: {', '.join(cost.uncosted)}")
    basis = f"roofline from the graph's work x {profile.name}'s cost_model, calibrated on this host"
    return Estimate(value, value * low, value * high, basis, tuple(assumptions), tokens)
