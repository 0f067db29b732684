"""Latency estimates for devices that are not here (docs/targets.md, "Estimates")."""

from edgekit.estimate.estimate import Estimate, estimate_latency, target_model

__all__ = ["Estimate", "estimate_latency", "target_model"]
