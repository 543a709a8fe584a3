"""Activation observers: they watch float tensors during calibration or QAT and yield per-tensor QParams."""
import math
from collections import deque

import torch

from .qparams import ChannelQParams, QParams, activation_qparams, channel_activation_qparams


_KEPT_BATCHES = 4096  # per-batch magnitudes kept (QAT observes every training step)


def batch_spread(observer):
    """How much a tensor's magnitude changed between calibration batches: (largest batch abs-max / median batch
    abs-max, largest, median), or None before 3 batches. One static int8 range cannot serve a tensor whose scale
    depends on the input by orders of magnitude; ``quantize_model`` warns about those."""
    maxima = sorted(getattr(observer, "batch_absmax", ()))
    if len(maxima) < 3:
        return None
    median = maxima[len(maxima) // 2]
    return (maxima[-1] / median if median > 0 else float("inf")), maxima[-1], median


def _refuse_non_finite(observer, finite: bool) -> None:
    if not finite:
        raise ValueError(f"{type(observer).__name__}: the observed tensor holds NaN or inf (calibration and QAT "
                         "inputs must be finite, and so must what the model computes from them)")


class MinMaxObserver:
    """Range = the smallest and largest value ever seen. ``batch_absmax`` keeps each batch's largest magnitude (the
    last 4096 batches)."""

    def __init__(self):
        self.min_val = None
        self.max_val = None
        self.batch_absmax = deque(maxlen=_KEPT_BATCHES)

    @property
    def has_data(self) -> bool:
        return self.min_val is not None

    def _update(self, low: float, high: float) -> None:
        self.min_val = low if self.min_val is None else min(self.min_val, low)
        self.max_val = high if self.max_val is None else max(self.max_val, high)

    def observe(self, x: torch.Tensor) -> None:
        if x.numel():
            low, high = float(x.min()), float(x.max())
            _refuse_non_finite(self, math.isfinite(low) and math.isfinite(high))
            self.batch_absmax.append(max(-low, high))
            self._update(low, high)

    def qparams(self) -> QParams:
        if not self.has_data:
            raise RuntimeError(f"{type(self).__name__}: no data observed; run calibration batches first")
        return activation_qparams(self.min_val, self.max_val)


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Range = exponential moving average of per-batch min and max (for QAT, where weights keep changing)."""

    def __init__(self, averaging_constant: float = 0.01):
        super().__init__()
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant must be in (0, 1], got {averaging_constant}")
        self.averaging_constant = averaging_constant

    def _update(self, low: float, high: float) -> None:
        if not self.has_data:
            self.min_val, self.max_val = low, high
            return
        c = self.averaging_constant
        self.min_val += c * (low - self.min_val)
        self.max_val += c * (high - self.max_val)


class PercentileObserver(MinMaxObserver):
    """Range = per-batch (100 - percentile, percentile) percentiles, averaged over batches; ignores rare outliers."""

    def __init__(self, percentile: float = 99.99, max_samples: int = 1 << 20):
        super().__init__()
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        self.percentile = percentile
        self.max_samples = max_samples
        self._sums = [0.0, 0.0]
        self._batches = 0

    def observe(self, x: torch.Tensor) -> None:
        values = x.detach().reshape(-1).float()
        if not values.numel():
            return
        _refuse_non_finite(self, bool(torch.isfinite(values).all()))
        if values.numel() > self.max_samples:  # a fixed stride keeps it deterministic
            values = values[:: values.numel() // self.max_samples + 1]
        self.batch_absmax.append(float(values.abs().max()))
        n = values.numel()
        k_high = max(1, min(n, int(round(n * self.percentile / 100.0))))
        k_low = max(1, n + 1 - k_high)
        self._sums[0] += float(values.kthvalue(k_low).values)
        self._sums[1] += float(values.kthvalue(k_high).values)
        self._batches += 1
        self.min_val, self.max_val = self._sums[0] / self._batches, self._sums[1] / self._batches


class ChannelMinMaxObserver(MinMaxObserver):
    """Per-channel (dim 1) ranges for tensors quantized per channel: min/max, or with ``averaging_constant`` an
    exponential moving average of the per-batch ranges (QAT). Zero-size tensors are ignored. ``strength`` is passed
    to :func:`channel_activation_qparams` (post-training quantization picks it per tensor, see
    ``graph_quantizer.choose_channel_strengths``)."""

    def __init__(self, averaging_constant=None, strength: float = 1.0):
        if averaging_constant is not None and not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant must be in (0, 1], got {averaging_constant}")
        super().__init__()  # min_val / max_val hold float32 [C] tensors here
        self.averaging_constant = averaging_constant
        self.strength = strength

    def observe(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"ChannelMinMaxObserver needs a tensor with a channel dim 1, got shape {tuple(x.shape)}")
        if not x.numel():
            return
        per_channel = x.detach().float().transpose(0, 1).reshape(x.shape[1], -1)
        low, high = per_channel.amin(dim=1), per_channel.amax(dim=1)
        _refuse_non_finite(self, bool(torch.isfinite(low).all() and torch.isfinite(high).all()))
        self.batch_absmax.append(max(-float(low.min()), float(high.max())))
        if not self.has_data:
            self.min_val, self.max_val = low, high
        elif self.min_val.shape != low.shape:
            raise ValueError(f"ChannelMinMaxObserver: {low.numel()} channels after {self.min_val.numel()}")
        elif self.averaging_constant is None:
            self.min_val, self.max_val = torch.minimum(self.min_val, low), torch.maximum(self.max_val, high)
        else:
            c = self.averaging_constant
            self.min_val, self.max_val = self.min_val + c * (low - self.min_val), self.max_val + c * (high - self.max_val)

    def qparams(self) -> ChannelQParams:
        if not self.has_data:
            raise RuntimeError(f"{type(self).__name__}: no data observed; run calibration batches first")
        return channel_activation_qparams(self.min_val, self.max_val, self.strength)


def make_channel_observer(observer):
    """The per-channel counterpart of a per-tensor observer choice: a moving average for "moving_average" (QAT),
    min/max otherwise (the percentile and custom observers work per tensor)."""
    if observer == "moving_average":
        return ChannelMinMaxObserver(averaging_constant=MovingAverageMinMaxObserver().averaging_constant)
    return ChannelMinMaxObserver()


OBSERVERS = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageMinMaxObserver,
    "percentile": PercentileObserver,
}


def make_observer(observer):
    """An observer from a name in OBSERVERS or a zero-argument factory."""
    if callable(observer):
        return observer()
    if observer not in OBSERVERS:
        raise ValueError(f"unknown observer {observer!r}; expected one of {sorted(OBSERVERS)} or a factory")
    return OBSERVERS[observer]()
