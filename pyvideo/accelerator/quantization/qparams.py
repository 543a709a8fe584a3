"""Quantization parameters and the exact int8 arithmetic shared by observers, fake-quant and int8 modules.

Activations: per-tensor asymmetric int8, ``real = scale * (q - zero_point)``, q in [-128, 127]; a tensor whose
readers can take it (a squeeze-excitation output read by pointwise convs) may instead be per-channel
(:class:`ChannelQParams`: one scale and zero point per channel, dim 1).
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


class ChannelQParams(NamedTuple):
    """Per-channel activation quantization along dim 1: ``real[:, c] = scale[c] * (q[:, c] - zero_point[c])``."""

    scale: torch.Tensor  # float32 [C], > 0
    zero_point: torch.Tensor  # int32 [C], in [-128, 127]

    def broadcast(self, dim: int):
        """(scale, zero_point) shaped to broadcast along dim 1 of a ``dim``-D tensor, as float32."""
        shape = [1, -1] + [1] * (dim - 2)
        return self.scale.float().reshape(shape), self.zero_point.float().reshape(shape)


def channel_activation_qparams(min_val: torch.Tensor, max_val: torch.Tensor) -> ChannelQParams:
    """:func:`activation_qparams` for each channel of 1-D ``min_val`` / ``max_val``."""
    if min_val.shape != max_val.shape or min_val.dim() != 1:
        raise ValueError(f"channel_activation_qparams: need equal 1-D ranges, got {tuple(min_val.shape)} and {tuple(max_val.shape)}")
    per_channel = [activation_qparams(float(lo), float(hi)) for lo, hi in zip(min_val.tolist(), max_val.tolist())]
    return ChannelQParams(torch.tensor([qp.scale for qp in per_channel], dtype=torch.float32),
                          torch.tensor([qp.zero_point for qp in per_channel], dtype=torch.int32))


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


def _scale_and_zero_point(qparams, dim: int):
    return qparams.broadcast(dim) if isinstance(qparams, ChannelQParams) else (qparams.scale, qparams.zero_point)


def quantize(x: torch.Tensor, qparams) -> torch.Tensor:
    """float -> int8: clamp(round(x / scale) + zero_point) (per tensor, or per channel along dim 1)."""
    scale, zero_point = _scale_and_zero_point(qparams, x.dim())
    q = torch.round(x.float() / scale) + zero_point
    return q.clamp_(QMIN, QMAX).to(torch.int8)


def dequantize(q: torch.Tensor, qparams) -> torch.Tensor:
    """int8 -> float32: (q - zero_point) * scale (per tensor, or per channel along dim 1)."""
    scale, zero_point = _scale_and_zero_point(qparams, q.dim())
    return (q.float() - zero_point) * scale


def quantize_weight(weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """float weight -> int8 with per-output-channel ``scales``."""
    per_channel = scales.reshape(-1, *([1] * (weight.dim() - 1)))
    return torch.round(weight.detach().float() / per_channel).clamp_(-WEIGHT_QMAX, WEIGHT_QMAX).to(torch.int8)
