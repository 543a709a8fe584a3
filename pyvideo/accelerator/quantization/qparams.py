"""Quantization parameters and the exact int8 arithmetic shared by observers, fake-quant and int8 modules.

Activations: per-tensor asymmetric int8, ``real = scale * (q - zero_point)``, q in [-128, 127]; a tensor whose
readers can take it (a squeeze-excitation output read by pointwise convs) may instead be per-channel
(:class:`ChannelQParams`: one scale and zero point per channel, dim 1), and a tensor whose range depends on the input
by too much for one static range may be quantized dynamically (:data:`DYNAMIC`): each sample (dim 0) gets the qparams
of its own min/max when the model runs (:func:`sample_qparams`, a :class:`SampleQParams`).
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


def _along(qparams, x: torch.Tensor, dim: int):
    """A per-channel or per-sample (scale, zero_point) pair of 1-D tensors as float32 on ``x``'s device, shaped to
    broadcast along ``dim`` of ``x``."""
    shape = [1] * x.dim()
    shape[dim] = -1
    return (qparams.scale.to(x.device, torch.float32).reshape(shape),
            qparams.zero_point.to(x.device, torch.float32).reshape(shape))


class ChannelQParams(NamedTuple):
    """Per-channel activation quantization along dim 1: ``real[:, c] = scale[c] * (q[:, c] - zero_point[c])``."""

    scale: torch.Tensor  # float32 [C], > 0
    zero_point: torch.Tensor  # int32 [C], in [-128, 127]

    def broadcast(self, x: torch.Tensor):
        """(scale, zero_point) as float32 on ``x``'s device, shaped to broadcast along dim 1 of ``x``."""
        return _along(self, x, 1)


class SampleQParams(NamedTuple):
    """Per-sample activation quantization along dim 0 (a run's dynamic qparams):
    ``real[n] = scale[n] * (q[n] - zero_point[n])``."""

    scale: torch.Tensor  # float32 [N], > 0
    zero_point: torch.Tensor  # int32 [N], in [-128, 127]

    def broadcast(self, x: torch.Tensor):
        """(scale, zero_point) as float32 on ``x``'s device, shaped to broadcast along dim 0 of ``x``."""
        return _along(self, x, 0)


class DynamicQParams:
    """The qparams of a dynamically quantized tensor: not fixed when the model is built, but computed for each sample
    from its own range whenever the model runs (:func:`sample_qparams`). Use the singleton :data:`DYNAMIC`."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DYNAMIC"

    def __reduce__(self):  # deepcopy / pickle keep the singleton
        return (DynamicQParams, ())


DYNAMIC = DynamicQParams()


def sample_qparams(x: torch.Tensor, min_scale: float = _MIN_SCALE) -> SampleQParams:
    """Each sample's :func:`activation_qparams` of its own range (min and max over all dims after 0), vectorized with
    the same float64 arithmetic and float32 rounding (so the native runtime, which computes them per sample in C++,
    gets equal values), with scales of at least ``min_scale`` (a float32 value >= 1e-8; readers whose int32 bias
    would overflow on a near-constant sample need more, see ``int8_modules``). Raises ValueError for a tensor
    without a batch dim or with non-finite values (their range would give no usable scale)."""
    if x.dim() < 2 or x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"dynamic quantization needs a non-empty [N, ...] tensor, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("dynamic quantization: the tensor holds non-finite values (NaN or inf)")
    flat = x.detach().float().reshape(x.shape[0], -1)
    low = flat.amin(dim=1).double().clamp(max=0.0)
    high = flat.amax(dim=1).double().clamp(min=0.0)
    scale = ((high - low) / (QMAX - QMIN)).clamp(min=max(min_scale, _MIN_SCALE)).float()
    zero_point = torch.round(QMIN - low / scale.double()).clamp(QMIN, QMAX).to(torch.int32)
    return SampleQParams(scale, zero_point)


def channel_activation_qparams(min_val: torch.Tensor, max_val: torch.Tensor, strength: float = 1.0) -> ChannelQParams:
    """Per-channel qparams for the ranges ``[min_val[c], max_val[c]]`` (1-D). ``strength`` 1 gives each channel
    :func:`activation_qparams` of its own range; 0 gives every channel the scale of the whole tensor's range; in
    between, the geometric interpolation ``tensor_scale^(1 - strength) * channel_scale^strength`` (a reader that folds
    the scales into its weights trades weight precision of weak channels for their activation precision, so the
    best point depends on the layer). Zero points keep each channel's real 0 exact."""
    if min_val.shape != max_val.shape or min_val.dim() != 1:
        raise ValueError(f"channel_activation_qparams: need equal 1-D ranges, got {tuple(min_val.shape)} and {tuple(max_val.shape)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"channel_activation_qparams: strength must be in [0, 1], got {strength}")
    lows, highs = min_val.tolist(), max_val.tolist()
    own = [activation_qparams(lo, hi).scale for lo, hi in zip(lows, highs)]
    whole = activation_qparams(min(lows), max(highs)).scale
    scales, zero_points = [], []
    for lo, scale in zip(lows, own):
        scale = _as_float32(whole ** (1.0 - strength) * scale**strength)
        scales.append(scale)
        zero_points.append(_zero_point(min(lo, 0.0), scale))
    return ChannelQParams(torch.tensor(scales, dtype=torch.float32), torch.tensor(zero_points, dtype=torch.int32))


def _as_float32(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32))


def activation_qparams(min_val: float, max_val: float) -> QParams:
    """Scale and zero point mapping [min_val, max_val] (widened to include 0, so zero is exact) onto [-128, 127]."""
    if not (min_val <= max_val):
        raise ValueError(f"activation_qparams: need min_val <= max_val, got {min_val} and {max_val}")
    min_val, max_val = min(min_val, 0.0), max(max_val, 0.0)
    scale = _as_float32(max((max_val - min_val) / (QMAX - QMIN), _MIN_SCALE))
    return QParams(scale, _zero_point(min_val, scale))


def _zero_point(min_val: float, scale: float) -> int:
    """The int8 code of real 0 for a range starting at ``min_val`` (<= 0) with step ``scale``, saturated."""
    return max(QMIN, min(QMAX, int(round(QMIN - min_val / scale))))


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel scales (float32 [C_out]): abs-max of each channel over 127."""
    absmax = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1)
    return (absmax / WEIGHT_QMAX).clamp_min(_MIN_SCALE).float()


def _scale_and_zero_point(qparams, x: torch.Tensor):
    if isinstance(qparams, (ChannelQParams, SampleQParams)):
        return qparams.broadcast(x)
    if isinstance(qparams, DynamicQParams):
        raise TypeError("quantize / dequantize need the qparams of this run (sample_qparams(x)), not DYNAMIC")
    return qparams.scale, qparams.zero_point


def quantize(x: torch.Tensor, qparams) -> torch.Tensor:
    """float -> int8: clamp(round(x / scale) + zero_point) (per tensor, per channel along dim 1 or per sample along
    dim 0)."""
    scale, zero_point = _scale_and_zero_point(qparams, x)
    q = torch.round(x.float() / scale) + zero_point
    return q.clamp_(QMIN, QMAX).to(torch.int8)


def dequantize(q: torch.Tensor, qparams) -> torch.Tensor:
    """int8 -> float32: (q - zero_point) * scale (per tensor, per channel along dim 1 or per sample along dim 0)."""
    scale, zero_point = _scale_and_zero_point(qparams, q)
    return (q.float() - zero_point) * scale


def quantize_weight(weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """float weight -> int8 with per-output-channel ``scales``."""
    per_channel = scales.reshape(-1, *([1] * (weight.dim() - 1)))
    return torch.round(weight.detach().float() / per_channel).clamp_(-WEIGHT_QMAX, WEIGHT_QMAX).to(torch.int8)


def int32_bias_bound(weight_int8: torch.Tensor) -> torch.Tensor:
    """L[c] = 2^31 - 1 - 512 * sum |weight_int8[c]| (int64 [C_out]): the largest int32 bias that the native kernels'
    sums (bias minus or plus multiples of the weight sums) cannot overflow with; a dynamic input's bias is clamped
    to it."""
    magnitude = weight_int8.reshape(weight_int8.shape[0], -1).abs().long().sum(dim=1)
    return (2**31 - 1) - 512 * magnitude


def sample_requantization(float_bias: torch.Tensor, weight_int8: torch.Tensor, weight_scale: torch.Tensor,
                          sample_scale: torch.Tensor):
    """The requantization of an int8 conv / linear whose input has per-sample scales ``sample_scale`` ([N]): dequant
    scales ``float32(sample_scale[n] * weight_scale[c])`` and the real bias rounded onto that grid and clamped to
    :func:`int32_bias_bound`, each ``[N, C_out]`` (float32, int32)."""
    dequant_scale = (sample_scale.float()[:, None] * weight_scale.float()[None, :]).float()
    bound = int32_bias_bound(weight_int8).double()
    bias = torch.round(float_bias.detach()[None, :].double() / dequant_scale.double())
    return dequant_scale, torch.minimum(torch.maximum(bias, -bound), bound).to(torch.int32)


def fold_input_scales(weight: torch.Tensor, input_qparams) -> torch.Tensor:
    """The weight an int8 conv/linear multiplies with. For per-channel input qparams, each input channel's scale is
    multiplied into that channel's weights, so the kernel reads the int8 input with scale 1 and zero point 0 (the
    zero points go into the bias, see ``int8_modules``); per-tensor qparams leave the weight as it is. Only for
    ungrouped weights ``[C_out, C_in, ...]`` read without padding (the int8 padding value would not be real 0)."""
    if not isinstance(input_qparams, ChannelQParams):
        return weight
    if weight.dim() < 2 or weight.shape[1] != input_qparams.scale.numel():
        raise ValueError(f"per-channel input qparams of {input_qparams.scale.numel()} channels do not fit a weight of "
                         f"shape {tuple(weight.shape)}")
    return weight * input_qparams.scale.to(weight.device, weight.dtype).reshape(1, -1, *([1] * (weight.dim() - 2)))


def kernel_input_qparams(input_qparams) -> QParams:
    """The per-tensor qparams an int8 kernel applies to its input: scale 1 and zero point 0 after
    :func:`fold_input_scales` for per-channel inputs, the qparams themselves otherwise."""
    return QParams(1.0, 0) if isinstance(input_qparams, ChannelQParams) else input_qparams
