"""Activation observers: they watch float tensors during calibration or QAT and yield per-tensor QParams."""
import torch

from .qparams import QParams, activation_qparams


class MinMaxObserver:
    """Range = the smallest and largest value ever seen."""

    def __init__(self):
        self.min_val = None
        self.max_val = None

    @property
    def has_data(self) -> bool:
        return self.min_val is not None

    def _update(self, low: float, high: float) -> None:
        self.min_val = low if self.min_val is None else min(self.min_val, low)
        self.max_val = high if self.max_val is None else max(self.max_val, high)

    def observe(self, x: torch.Tensor) -> None:
        if x.numel():
            self._update(float(x.min()), float(x.max()))

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
        if values.numel() > self.max_samples:  # a fixed stride keeps it deterministic
            values = values[:: values.numel() // self.max_samples + 1]
        n = values.numel()
        k_high = max(1, min(n, int(round(n * self.percentile / 100.0))))
        k_low = max(1, n + 1 - k_high)
        self._sums[0] += float(values.kthvalue(k_low).values)
        self._sums[1] += float(values.kthvalue(k_high).values)
        self._batches += 1
        self.min_val, self.max_val = self._sums[0] / self._batches, self._sums[1] / self._batches


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
