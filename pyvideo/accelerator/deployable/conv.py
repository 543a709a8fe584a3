"""FusedConv3d: the one convolution module of the deploy form."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .activation import apply_activation, check_activation_kind


def triple(value) -> Tuple[int, int, int]:
    """An int or a 3-sequence (a kernel size, stride or padding) as a 3-tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * 3


def fold_batchnorm(weight: torch.Tensor, bias: Optional[torch.Tensor], bn: nn.modules.batchnorm._BatchNorm):
    """Weight and bias of ``conv`` followed by ``bn`` in eval mode, as one conv: w·γ/σ and (b−μ)·γ/σ + β."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    inv_std = torch.rsqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.affine else torch.ones_like(inv_std)
    beta = bn.bias if bn.affine else torch.zeros_like(inv_std)
    channel_scale = gamma * inv_std
    bias = torch.zeros_like(bn.running_mean) if bias is None else bias
    folded_weight = weight * channel_scale.reshape(-1, *([1] * (weight.dim() - 1)))
    folded_bias = (bias - bn.running_mean) * channel_scale + beta
    return folded_weight, folded_bias


class FusedConv3d(nn.Module):
    """``activation(conv3d(x, weight) + bias [+ residual])`` with BatchNorm already folded into weight and bias.

    Attributes read by the quantizer and the native lowering:
        weight (Parameter): [C_out, C_in / groups, kT, kH, kW], float32.
        bias (Parameter): [C_out], float32 (always present; zero when the conv had none).
        stride, padding, dilation (tuple of 3 ints, T/H/W order); groups (int); padding is zero padding.
        activation (str): one of ``ACTIVATION_KINDS``; applied after the residual add.
        adds_residual (bool): forward takes a second tensor, shaped like the output, added before the activation.
        kind (str): ``pointwise`` | ``depthwise`` | ``temporal`` (kT×1×1) | ``spatial`` (1×kH×kW) | ``dense``.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: Optional[torch.Tensor],
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        activation: str = "identity",
        adds_residual: bool = False,
    ):
        super().__init__()
        if weight.dim() != 5:
            raise ValueError(f"FusedConv3d needs a 5-D weight [C_out, C_in/groups, kT, kH, kW], got {tuple(weight.shape)}")
        self.weight = nn.Parameter(weight.detach().clone())
        bias = torch.zeros(weight.shape[0]) if bias is None else bias
        self.bias = nn.Parameter(bias.detach().clone().to(device=weight.device, dtype=weight.dtype))
        self.stride = triple(stride)
        self.padding = triple(padding)
        self.dilation = triple(dilation)
        self.groups = groups
        self.activation = check_activation_kind(activation)
        self.adds_residual = adds_residual

    @classmethod
    def from_conv(cls, conv: nn.Conv3d, bn: Optional[nn.Module] = None, activation: str = "identity"):
        """Fold ``conv`` (and ``bn`` in eval semantics, if given) into one FusedConv3d."""
        if conv.padding_mode != "zeros":
            raise ValueError(f"FusedConv3d supports zero padding only, got padding_mode={conv.padding_mode!r}")
        if isinstance(conv.padding, str):
            raise ValueError(f"FusedConv3d needs numeric padding, got padding={conv.padding!r}")
        with torch.no_grad():
            weight, bias = conv.weight, conv.bias
            if bn is not None:
                weight, bias = fold_batchnorm(weight, bias, bn)
        return cls(weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups, activation)

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def kernel_size(self) -> Tuple[int, int, int]:
        return tuple(self.weight.shape[2:])

    @property
    def kind(self) -> str:
        kt, kh, kw = self.kernel_size
        if self.groups > 1 and self.groups == self.in_channels == self.out_channels:
            return "depthwise"
        if self.groups == 1 and (kt, kh, kw) == (1, 1, 1) and self.padding == (0, 0, 0):
            return "pointwise" if self.stride == (1, 1, 1) else "spatial"
        if self.groups == 1 and kh == kw == 1 and kt > 1:
            return "temporal"
        if self.groups == 1 and kt == 1:
            return "spatial"
        return "dense"

    def fold_batchnorm(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        """Absorb an eval-mode BatchNorm applied to this conv's output (before any activation or residual)."""
        if self.activation != "identity" or self.adds_residual:
            raise ValueError("a BatchNorm can only be folded into a conv that has no activation and no residual")
        with torch.no_grad():
            weight, bias = fold_batchnorm(self.weight, self.bias, bn)
            self.weight.copy_(weight)
            self.bias.copy_(bias)

    def fuse_activation(self, activation: str) -> None:
        """Apply ``activation`` to the output; only allowed while the output activation is identity."""
        if self.activation != "identity":
            raise ValueError(f"FusedConv3d already ends in {self.activation!r}")
        self.activation = check_activation_kind(activation)

    def fuse_residual(self, activation: str) -> None:
        """Make this conv add a residual input, then apply ``activation``; its own activation must be identity."""
        if self.activation != "identity" or self.adds_residual:
            raise ValueError("a residual add can only be fused into a conv that has no activation and no residual yet")
        self.activation = check_activation_kind(activation)
        self.adds_residual = True

    def forward_weight(self) -> torch.Tensor:
        """The weight the forward pass uses (quantization-aware training substitutes a fake-quantized one; same for
        ``forward_bias``, which may also give one bias per sample, ``[N, C_out]``)."""
        return self.weight

    def forward_bias(self) -> Optional[torch.Tensor]:
        return self.bias

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        if (residual is not None) != self.adds_residual:
            raise RuntimeError(
                f"FusedConv3d(adds_residual={self.adds_residual}) called with{'' if residual is not None else 'out'} a residual"
            )
        bias = self.forward_bias()
        per_sample = bias is not None and bias.dim() == 2
        out = F.conv3d(x, self.forward_weight(), None if per_sample else bias, self.stride, self.padding, self.dilation,
                       self.groups)
        if per_sample:
            out = out + bias[:, :, None, None, None]
        if residual is not None:
            out = out + residual
        return apply_activation(out, self.activation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, kind={self.kind}, "
            f"activation={self.activation}, adds_residual={self.adds_residual}"
        )
