"""Fake quantization with a straight-through estimator, and the modules that apply it during calibration/QAT."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.accelerator.deployable.conv import FusedConv3d

from .qparams import QMAX, QMIN, WEIGHT_QMAX, QParams, weight_scales


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


def fake_quantize(x: torch.Tensor, qparams: QParams) -> torch.Tensor:
    """Per-tensor asymmetric int8 fake quantization."""
    return _FakeQuantize.apply(x, qparams.scale, qparams.zero_point, QMIN, QMAX)


def fake_quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 fake quantization, with scales from the current weight (not learned)."""
    scales = weight_scales(weight).reshape(-1, *([1] * (weight.dim() - 1)))
    return _FakeQuantize.apply(weight, scales, 0, -WEIGHT_QMAX, WEIGHT_QMAX)


class ActivationQuantizer(nn.Module):
    """Inserted after every tensor that will be int8: it observes the tensor and, in QAT, fake-quantizes it.

    ``observe`` (update the observer) and ``fake_quant`` (return fake-quantized values) are plain flags;
    ``prepare`` sets them for calibration (observe only) or QAT (both), ``freeze_observers`` clears ``observe``.
    """

    def __init__(self, observer, observe: bool = True, fake_quant: bool = False):
        super().__init__()
        self.observer = observer
        self.observe = observe
        self.fake_quant = fake_quant

    def qparams(self) -> QParams:
        return self.observer.qparams()

    def qparams_if_observed(self) -> Optional[QParams]:
        return self.observer.qparams() if self.observer.has_data else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observe:
            self.observer.observe(x.detach())
        if self.fake_quant and self.observer.has_data:
            return fake_quantize(x, self.observer.qparams())
        return x

    def extra_repr(self) -> str:
        return f"observer={type(self.observer).__name__}, observe={self.observe}, fake_quant={self.fake_quant}"


def fake_quantize_bias(bias: torch.Tensor, weight: torch.Tensor, input_qparams: QParams) -> torch.Tensor:
    """Round the bias to the int32 grid of the int8 model (step input_scale * weight_scale[c]); identity gradient."""
    step = torch.tensor(input_qparams.scale, dtype=torch.float32) * weight_scales(weight)
    return bias + (torch.round(bias / step) * step - bias).detach()


class _FakeQuantWeights:
    """Weight and bias as the int8 model will see them. ``input_qparams`` (a callable set by ``prepare``) gives the
    current input qparams (None before any data is observed), which fix the bias grid."""

    input_qparams = None

    def fake_weight(self) -> torch.Tensor:
        return fake_quantize_weight(self.weight)

    def fake_bias(self):
        input_qparams = self.input_qparams() if self.input_qparams is not None else None
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

    def forward_weight(self) -> torch.Tensor:
        return self.fake_weight()

    def forward_bias(self) -> torch.Tensor:
        return self.fake_bias()


class FakeQuantLinear(_FakeQuantWeights, nn.Linear):
    """nn.Linear whose weight (per output feature) and bias are fake-quantized in every forward (QAT)."""

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "FakeQuantLinear":
        fake = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        fake.weight, fake.bias = linear.weight, linear.bias
        return fake

    def forward(self, x):
        return F.linear(x, self.fake_weight(), self.fake_bias())
