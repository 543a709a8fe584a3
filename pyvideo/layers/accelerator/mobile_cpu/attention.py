"""Squeeze-excitation efficient block."""
from typing import Optional

import torch
import torch.nn as nn

from pyvideo.accelerator.deployable.activation import activation_kind_of
from pyvideo.accelerator.deployable.squeeze_excitation import FusedSqueezeExcitation, linear_from_pointwise_conv
from pyvideo.accelerator.efficient_blocks.efficient_block_base import EfficientBlockBase


class _SqueezeExcitationOriginal(nn.Module):
    """fvcore's squeeze-excitation layout (``block`` = [conv, activation, conv, Sigmoid]), so checkpoints load as is."""

    def __init__(self, num_channels, num_channels_reduced=None, reduction_ratio=2.0, is_3d=False, activation=None):
        super().__init__()
        if num_channels_reduced is None:
            num_channels_reduced = int(num_channels // reduction_ratio)
        conv = nn.Conv3d if is_3d else nn.Conv2d
        self.avg_pool = nn.AdaptiveAvgPool3d(1) if is_3d else nn.AdaptiveAvgPool2d(1)
        self.block = nn.Sequential(
            conv(num_channels, num_channels_reduced, kernel_size=1, bias=True),
            nn.ReLU() if activation is None else activation,
            conv(num_channels_reduced, num_channels, kernel_size=1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(self.avg_pool(x))


class SqueezeExcitation(EfficientBlockBase):
    """Squeeze-excitation (Hu et al., arXiv:1709.01507) with fvcore's constructor; ``self.se`` holds the layers.

    Deploy form: ``self.se`` becomes a :class:`FusedSqueezeExcitation` whose two 1×1 convs are Linear layers.
    """

    def __init__(
        self,
        num_channels: int,
        num_channels_reduced: Optional[int] = None,
        reduction_ratio: float = 2.0,
        is_3d: bool = False,
        activation: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        self.se = _SqueezeExcitationOriginal(num_channels, num_channels_reduced, reduction_ratio, is_3d, activation)
        self.is_3d = is_3d
        self.convert_flag = False

    def convert(self, *args, **kwargs):
        if self.convert_flag:
            raise RuntimeError("SqueezeExcitation: already converted, cannot be converted again")
        conv0, hidden_activation, conv1 = self.se.block[0], self.se.block[1], self.se.block[2]
        hidden_kind = activation_kind_of(hidden_activation)
        if hidden_kind is None:
            raise ValueError(f"SqueezeExcitation: cannot convert hidden activation {type(hidden_activation).__name__}")
        self.se = FusedSqueezeExcitation(linear_from_pointwise_conv(conv0), linear_from_pointwise_conv(conv1), hidden_kind)
        self.convert_flag = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(x)
