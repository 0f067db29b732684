"""ONNX Runtime's static QDQ arithmetic, simulated in PyTorch for quantization-aware fine-tuning.

``SimulatedLayer`` wraps a Conv/Linear: it observes its activation ranges on the calibration inputs,
then runs with the weights and activations rounded as ORT's QDQ quantizer will round them (fake
quantization: the rounding is applied in the forward pass, gradients pass straight through).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class QuantScheme:
    """The arithmetic ORT's static quantizer will use, as the variant chose it."""

    per_channel: bool
    reduce_range: bool
    signed_activations: bool
    symmetric_activations: bool

    @property
    def weight_qmax(self) -> int:
        return 64 if self.reduce_range else 127  # ORT's symmetric INT8 weight range

    def activation_qparams(self, low: float, high: float) -> tuple[float, int, int, int]:
        """scale, zero point, qmin, qmax for an activation seen in [low, high] (ORT's compute_scale_zp)."""
        qmin, qmax = (-128, 127) if self.signed_activations else (0, 255)
        low, high = min(low, 0.0), max(high, 0.0)
        if self.symmetric_activations:
            high = max(abs(low), abs(high))
            low = -high
        scale = (high - low) / (qmax - qmin) or 1.0
        zero = int(np.clip(np.round(qmin - low / scale), qmin, qmax))
        return scale, zero, qmin, qmax


class SimulatedLayer(nn.Module):
    """A Conv/Linear that observes its activation ranges, runs with INT8 simulated, or runs in FP32."""

    def __init__(self, layer: nn.Module, scheme: QuantScheme, quantize_output: bool):
        super().__init__()
        self.layer, self.scheme, self.quantize_output = layer, scheme, quantize_output
        self.mode = "fp32"
        self.ranges = {"input": [np.inf, -np.inf], "output": [np.inf, -np.inf]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "fp32":
            return self.layer(x)
        if self.mode == "observe":
            y = self.layer(x)
            self._observe("input", x)
            self._observe("output", y)
            return y
        y = self._run_layer(self._fake_activation(x, "input"), self._fake_weight(self.layer.weight))
        return self._fake_activation(y, "output") if self.quantize_output else y

    def _observe(self, which: str, tensor: torch.Tensor) -> None:
        low, high = self.ranges[which]
        self.ranges[which] = [min(low, float(tensor.min())), max(high, float(tensor.max()))]

    def _fake_activation(self, tensor: torch.Tensor, which: str) -> torch.Tensor:
        scale, zero, qmin, qmax = self.scheme.activation_qparams(*self.ranges[which])
        return torch.fake_quantize_per_tensor_affine(tensor, scale, zero, qmin, qmax)

    def _fake_weight(self, weight: torch.Tensor) -> torch.Tensor:
        qmax = self.scheme.weight_qmax
        if self.scheme.per_channel:
            scale = (weight.detach().abs().flatten(1).amax(1) / qmax).clamp_min(1e-12).float()
            zero = torch.zeros_like(scale, dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -qmax, qmax)
        scale = max(float(weight.detach().abs().max()) / qmax, 1e-12)
        return torch.fake_quantize_per_tensor_affine(weight, scale, 0, -qmax, qmax)

    def _run_layer(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # The layer's own forward with the rounded weight: a subclass's padding or the like still applies.
        return torch.func.functional_call(self.layer, {"weight": weight}, (x,), strict=False)


def set_mode(wrappers: list[SimulatedLayer], mode: str) -> None:
    for wrapper in wrappers:
        wrapper.mode = mode
