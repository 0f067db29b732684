"""The ``estimated`` section of an ``edgekit bench`` results document: per variant and per
sequence length, the device's latency as estimated from this host's measurement of it.

Used when the profile is not this host's architecture (or is a phone): the host's timings
stay in the document, labelled as this host's, and the device's figures are only estimates.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from edgekit.artifact import read_manifest
from edgekit.errors import EdgekitError
from edgekit.targets.host import HostInfo


def needs_estimates(profile, host: HostInfo, on_device: bool) -> bool:
    """Host timings cannot stand for this device: another architecture, or a phone."""
    if on_device or profile.is_host:
        return False
    return profile.arch != host.arch or profile.device_class == "phone"


def host_label(host: HostInfo, threads: int) -> str:
    return f"this host ({host.arch} {host.cpu_model}, {threads} threads), not the device"


def _reference_onnx(folder: Path) -> Path | None:
    """The bundle's ONNX reference (onnx-fp32) beside a variant, for formats with no ONNX graph."""
    candidate = folder.parent / "onnx-fp32"
    try:
        manifest = read_manifest(candidate)
    except EdgekitError:
        return None
    model = candidate / manifest.model_file
    return model if model.suffix.lower() == ".onnx" else None


def _target_cannot_run(profile, engine: str) -> str | None:
    """Why the target cannot run this engine's artifacts at all (Core ML exists only on Apple devices:
    a target without Core ML in its engines or providers gets no Core ML estimate), else ``None``."""
    if engine != "coreml":
        return None
    names = {c.engine for c in profile.engines} | {p for c in profile.engines for p in (c.providers or [])}
    if "coreml" in names or "CoreMLExecutionProvider" in names:
        return None
    return (f"not estimated: {profile.name} has no Core ML (its profile lists neither the coreml engine "
            "nor CoreMLExecutionProvider)")  # fmt: skip


def _calibration_source(folder: Path, measured: dict[Path, dict[str, Any]]) -> Path | None:
    """The measured variant to calibrate ``folder`` from: itself, else one of the same precision, else FP32."""
    if folder in measured:
        return folder
    precision = read_manifest(folder).precision
    same = [f for f in measured if measured[f]["precision"] == precision]
    fp32 = [f for f in measured if measured[f]["precision"] == "fp32"]
    return (same or fp32 or [None])[0]


def estimated_section(
    profile, host: HostInfo, threads: int, folders: list[Path], summaries: list[dict[str, Any]]
) -> dict[str, Any]:
    """``{"host_label", "variants": [{"name", "estimates": [...]} | {"name", "error"}], "note"?}``."""
    section: dict[str, Any] = {"host_label": host_label(host, threads), "target": profile.name, "variants": []}
    if importlib.util.find_spec("onnx") is None:
        section["note"] = "no estimates: costing a graph needs the onnx package (pip install 'edgekit[convert]')"
        return section
    from edgekit.estimate.calibrate import HostMeasurement
    from edgekit.estimate.estimate import estimate_latency
    from edgekit.estimate.host_peak import host_clock, host_model

    clock = host_clock()
    section["host_clock"] = f"{clock.ghz:.2f} GHz ({clock.source})" if clock else None
    by_path = {Path(s["path"]).expanduser().resolve(): s for s in summaries if s.get("kind") == "artifact"}
    measured = {f: by_path[f.resolve()] for f in folders if f.resolve() in by_path}
    for folder in folders:
        entry: dict[str, Any] = {"name": folder.name}
        section["variants"].append(entry)
        cannot_run = _target_cannot_run(profile, read_manifest(folder).engine)
        if cannot_run:
            entry["error"] = cannot_run
            continue
        source = _calibration_source(folder, measured)
        if clock is None or source is None or not measured[source].get("by_sequence_length"):
            entry["error"] = ("no host measurement by sequence length to calibrate from (run with --shapes)"
                              if clock else "this host's clock could not be read")  # fmt: skip
            continue
        shapes = measured[source]["by_sequence_length"]
        device = host_model(threads, set(host.isa_features), clock, "this host")
        measurement = HostMeasurement({s["tokens"]: s["latency_ms"]["median"] for s in shapes}, device,
                                      host_label(host, threads))  # fmt: skip
        try:
            entry["estimates"] = [
                estimate_latency(folder, profile, measurement, s["tokens"], _reference_onnx(folder), source).to_dict()
                for s in shapes
            ]
        except EdgekitError as exc:  # a profile without figures: say so per variant, keep the host run
            entry["error"] = str(exc)
    return section
