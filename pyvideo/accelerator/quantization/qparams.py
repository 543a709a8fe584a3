"""Quantization parameters and the exact int8 arithmetic shared by observers, fake-quant and int8 modules.

Activations: per-tensor asymmetric int8, ``real = scale * (q - zero_point)``, q in [-128, 127].
Weights: per-output-channel symmetric int8, ``real = scale[c] * q``, q in [-127, 127].
Rounding is round-half-to-even (``torch.round``). Scales are float32-representable Python floats.
"""
from typing import NamedTuple

import torch

QMIN, QMAX = -128, 127
WEIGHT_QMAX = 127
_MIN_SCALE = 1e-8


class QParams(NamedTuple):
    """Per-tensor activation quantization: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int


def _as_float32(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32))


def activation_qparams(min_val: float, max_val: float) -> QParams:
    """Scale and zero point mapping [min_val, max_val] (widened to include 0, so zero is exact) onto [-128, 127]."""
    if not (min_val <= max_val):
        raise ValueError(f"activation_qparams: need min_val <= max_val, got {min_val} and {max_val}")
    min_val, max_val = min(min_val, 0.0), max(max_val, 0.0)
    scale = _as_float32(max((max_val - min_val) / (QMAX - QMIN), _MIN_SCALE))
    zero_point = int(round(QMIN - min_val / scale))
    return QParams(scale, max(QMIN, min(QMAX, zero_point)))


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel scales (float32 [C_out]): abs-max of each channel over 127."""
    absmax = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1)
    return (absmax / WEIGHT_QMAX).clamp_min(_MIN_SCALE).float()


def quantize(x: torch.Tensor, qparams: QParams) -> torch.Tensor:
    """float -> int8: clamp(round(x / scale) + zero_point)."""
    q = torch.round(x.float() / qparams.scale) + qparams.zero_point
    return q.clamp_(QMIN, QMAX).to(torch.int8)


def dequantize(q: torch.Tensor, qparams: QParams) -> torch.Tensor:
    """int8 -> float32: (q - zero_point) * scale."""
    return (q.float() - qparams.zero_point) * qparams.scale


def quantize_weight(weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """float weight -> int8 with per-output-channel ``scales``."""
    per_channel = scales.reshape(-1, *([1] * (weight.dim() - 1)))
    return torch.round(weight.detach().float() / per_channel).clamp_(-WEIGHT_QMAX, WEIGHT_QMAX).to(torch.int8)
