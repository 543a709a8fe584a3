"""Fake quantization with a straight-through estimator, and the modules that apply it during calibration/QAT."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.accelerator.deployable.conv import FusedConv3d

from .qparams import (DYNAMIC, QMAX, QMIN, WEIGHT_QMAX, ChannelQParams, QParams, SampleQParams, fold_input_scales,
                      kernel_input_qparams, quantize_weight, sample_qparams, sample_requantization,
                      weight_scales)


class _FakeQuantize(torch.autograd.Function):
    """Quantize-dequantize; the gradient passes where the value was inside the representable range, else is 0."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        q = torch.round(x / scale) + zero_point
        ctx.save_for_backward((q >= qmin) & (q <= qmax))
        return (q.clamp(qmin, qmax) - zero_point) * scale

    @staticmethod
    def backward(ctx, grad_output):
        (inside,) = ctx.saved_tensors
        return grad_output * inside, None, None, None, None


def fake_quantize(x: torch.Tensor, qparams) -> torch.Tensor:
    """Asymmetric int8 fake quantization, per tensor (QParams), per channel along dim 1 (ChannelQParams) or per sample
    along dim 0 (SampleQParams)."""
    if isinstance(qparams, (ChannelQParams, SampleQParams)):
        return _FakeQuantize.apply(x, *qparams.broadcast(x), QMIN, QMAX)
    return _FakeQuantize.apply(x, qparams.scale, qparams.zero_point, QMIN, QMAX)


def fake_quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 fake quantization, with scales from the current weight (not learned)."""
    scales = weight_scales(weight).reshape(-1, *([1] * (weight.dim() - 1)))
    return _FakeQuantize.apply(weight, scales, 0, -WEIGHT_QMAX, WEIGHT_QMAX)


class ActivationQuantizer(nn.Module):
    """Inserted after every tensor that will be int8: it observes the tensor and, in QAT, fake-quantizes it.

    ``observe`` (update the observer) and ``fake_quant`` (return fake-quantized values) are plain flags;
    ``prepare`` sets them for calibration (observe only) or QAT (both), ``freeze_observers`` clears ``observe``.
    ``dynamic`` (set by ``mark_dynamic``): the int8 model quantizes this tensor per sample with each sample's own range
    (``qparams()`` is then DYNAMIC, and fake quantization uses each sample's range too).
    """

    def __init__(self, observer, observe: bool = True, fake_quant: bool = False):
        super().__init__()
        self.observer = observer
        self.observe = observe
        self.fake_quant = fake_quant
        self.dynamic = False
        self._last_sample_qparams = None

    def qparams(self):
        return DYNAMIC if self.dynamic else self.observer.qparams()

    def last_sample_qparams(self) -> Optional[SampleQParams]:
        """The per-sample qparams this (dynamic, fake-quantizing) quantizer used in its last call, else None: the
        readers snap their bias to the int32 grid of those scales, as the int8 model does per sample."""
        return self._last_sample_qparams if self.dynamic and self.fake_quant else None

    def qparams_if_observed(self) -> Optional[QParams]:
        """The static qparams once data was observed (None before, and for a dynamic tensor: no fixed grid)."""
        return self.observer.qparams() if self.observer.has_data and not self.dynamic else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observe:
            self.observer.observe(x.detach())
        if self.fake_quant and self.dynamic:
            self._last_sample_qparams = sample_qparams(x.detach())
            return fake_quantize(x, self._last_sample_qparams)
        if self.fake_quant and self.observer.has_data:
            return fake_quantize(x, self.observer.qparams())
        return x

    def extra_repr(self) -> str:
        return (f"observer={type(self.observer).__name__}, observe={self.observe}, fake_quant={self.fake_quant}"
                f"{', dynamic' if self.dynamic else ''}")


def fake_quantize_bias(bias: torch.Tensor, weight: torch.Tensor, input_qparams) -> torch.Tensor:
    """Round the bias to the int32 grid of the int8 model (step input_scale * weight_scale[c], both after
    ``fold_input_scales`` for per-channel inputs); identity gradient."""
    step = torch.tensor(kernel_input_qparams(input_qparams).scale, dtype=torch.float32) * weight_scales(
        fold_input_scales(weight.detach(), input_qparams))
    return bias + (torch.round(bias / step) * step - bias).detach()


def fake_quantize_sample_bias(bias: torch.Tensor, weight: torch.Tensor, input_qparams: SampleQParams) -> torch.Tensor:
    """``[N, C_out]``: the bias on each sample's int32 grid, as an int8 layer with a dynamic input uses it
    (``qparams.sample_requantization``); identity gradient."""
    scales = weight_scales(weight.detach())
    dequant_scale, bias_int32 = sample_requantization(bias, quantize_weight(weight, scales), scales,
                                                      input_qparams.scale)
    snapped = (bias_int32.double() * dequant_scale.double()).float()
    return bias[None, :] + (snapped - bias.detach()[None, :])


class _FakeQuantWeights:
    """Weight and bias as the int8 model will see them. ``input_qparams`` (a callable set by ``prepare``) gives the
    current input qparams (None before any data is observed), which fix the bias grid; ``input_sample_qparams``
    gives a dynamic input's per-sample qparams of the current call (None for a static input)."""

    input_qparams = None
    input_sample_qparams = None

    def _current_input_qparams(self):
        return self.input_qparams() if self.input_qparams is not None else None

    def _sample_bias(self) -> Optional[torch.Tensor]:
        """The per-sample bias [N, C_out] for a dynamic input in QAT, else None."""
        qparams = self.input_sample_qparams() if self.input_sample_qparams is not None else None
        if self.bias is None or qparams is None:
            return None
        return fake_quantize_sample_bias(self.bias, self.weight, qparams)

    def fake_weight(self) -> torch.Tensor:
        """Per-channel inputs: the weight with the input channels' scales folded in, as the int8 model quantizes it;
        the forward pass then divides the input by those scales (giving back the integers q - zero_point)."""
        return fake_quantize_weight(fold_input_scales(self.weight, self._current_input_qparams()))

    def fake_bias(self):
        input_qparams = self._current_input_qparams()
        if self.bias is None or input_qparams is None:
            return self.bias
        return fake_quantize_bias(self.bias, self.weight, input_qparams)


class FakeQuantConv3d(_FakeQuantWeights, FusedConv3d):
    """FusedConv3d whose weight (per channel) and bias are fake-quantized in every forward (QAT)."""

    @classmethod
    def from_fused(cls, conv: FusedConv3d) -> "FakeQuantConv3d":
        fake = cls(conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups, conv.activation,
                   conv.adds_residual)  # fmt: skip
        fake.weight, fake.bias = conv.weight, conv.bias  # share the trained parameters
        return fake

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        input_qparams = self._current_input_qparams()
        if isinstance(input_qparams, ChannelQParams):  # see fake_weight
            x = x / input_qparams.broadcast(x)[0]
        return super().forward(x, residual)

    def forward_weight(self) -> torch.Tensor:
        return self.fake_weight()

    def forward_bias(self) -> Optional[torch.Tensor]:
        sample_bias = self._sample_bias()  # [N, C_out] for a dynamic input
        return self.fake_bias() if sample_bias is None else sample_bias


class FakeQuantLinear(_FakeQuantWeights, nn.Linear):
    """nn.Linear whose weight (per output feature) and bias are fake-quantized in every forward (QAT)."""

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "FakeQuantLinear":
        fake = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        fake.weight, fake.bias = linear.weight, linear.bias
        return fake

    def forward(self, x):
        sample_bias = self._sample_bias()
        if sample_bias is None:
            return F.linear(x, self.fake_weight(), self.fake_bias())
        out = F.linear(x, self.fake_weight())
        return out + sample_bias.reshape(sample_bias.shape[0], *([1] * (out.dim() - 2)), -1)
