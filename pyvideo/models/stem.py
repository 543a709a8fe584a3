"""Stems: the first convolution (plus norm, activation, pool) of a network, and ViT patch embedding."""
from typing import Callable, Tuple

import torch
import torch.nn as nn

from pyvideo.layers.convolutions import ConvReduce3D
from pyvideo.layers.utils import set_attributes


def create_res_basic_stem(
    *,
    in_channels: int,
    out_channels: int,
    conv_kernel_size: Tuple[int] = (3, 7, 7),
    conv_stride: Tuple[int] = (1, 2, 2),
    conv_padding: Tuple[int] = (1, 3, 3),
    conv_bias: bool = False,
    conv: Callable = nn.Conv3d,
    pool: Callable = nn.MaxPool3d,
    pool_kernel_size: Tuple[int] = (1, 3, 3),
    pool_stride: Tuple[int] = (1, 2, 2),
    pool_padding: Tuple[int] = (0, 1, 1),
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """ResNet stem: conv → norm → activation → pool; any part but the conv may be ``None``."""
    conv_module = conv(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=conv_kernel_size,
        stride=conv_stride,
        padding=conv_padding,
        bias=conv_bias,
    )
    return _assemble_stem(
        conv_module, out_channels, norm, norm_eps, norm_momentum, activation,
        pool, pool_kernel_size, pool_stride, pool_padding,
    )


def create_acoustic_res_basic_stem(
    *,
    in_channels: int,
    out_channels: int,
    conv_kernel_size: Tuple[int] = (3, 7, 7),
    conv_stride: Tuple[int] = (1, 1, 1),
    conv_padding: Tuple[int] = (1, 3, 3),
    conv_bias: bool = False,
    pool: Callable = nn.MaxPool3d,
    pool_kernel_size: Tuple[int] = (1, 3, 3),
    pool_stride: Tuple[int] = (1, 2, 2),
    pool_padding: Tuple[int] = (0, 1, 1),
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """Spectrogram stem: the conv is split into a (kt,1,1) temporal and a (1,kh,kw) frequency conv, summed."""
    conv_module = ConvReduce3D(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=((conv_kernel_size[0], 1, 1), (1, conv_kernel_size[1], conv_kernel_size[2])),
        stride=(conv_stride, conv_stride),
        padding=((conv_padding[0], 0, 0), (0, conv_padding[1], conv_padding[2])),
        bias=(conv_bias, conv_bias),
        reduction_method="sum",
    )
    return _assemble_stem(
        conv_module, out_channels, norm, norm_eps, norm_momentum, activation,
        pool, pool_kernel_size, pool_stride, pool_padding,
    )


def _assemble_stem(
    conv_module, out_channels, norm, norm_eps, norm_momentum, activation,
    pool, pool_kernel_size, pool_stride, pool_padding,
) -> nn.Module:
    return ResNetBasicStem(
        conv=conv_module,
        norm=None if norm is None else norm(num_features=out_channels, eps=norm_eps, momentum=norm_momentum),
        activation=None if activation is None else activation(),
        pool=None
        if pool is None
        else pool(kernel_size=pool_kernel_size, stride=pool_stride, padding=pool_padding),
    )


class ResNetBasicStem(nn.Module):
    """conv → norm → activation → pool, skipping whichever of the last three is ``None``."""

    def __init__(
        self,
        *,
        conv: nn.Module = None,
        norm: nn.Module = None,
        activation: nn.Module = None,
        pool: nn.Module = None,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if self.conv is None:
            raise ValueError("ResNetBasicStem needs a conv module")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        if self.pool is not None:
            x = self.pool(x)
        return x


class PatchEmbed(nn.Module):
    """Applies ``patch_model`` (a strided conv) and returns the tokens as (B, L, C)."""

    def __init__(self, *, patch_model: nn.Module = None) -> None:
        super().__init__()
        set_attributes(self, locals())
        if self.patch_model is None:
            raise ValueError("PatchEmbed needs a patch_model")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_model(x).flatten(2).transpose(1, 2)


def create_conv_patch_embed(
    *,
    in_channels: int,
    out_channels: int,
    conv_kernel_size: Tuple[int] = (1, 16, 16),
    conv_stride: Tuple[int] = (1, 4, 4),
    conv_padding: Tuple[int] = (1, 7, 7),
    conv_bias: bool = True,
    conv: Callable = nn.Conv3d,
) -> nn.Module:
    """Patch embedding for vision transformers: a strided conv whose output positions become tokens."""
    return PatchEmbed(
        patch_model=conv(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=conv_kernel_size,
            stride=conv_stride,
            padding=conv_padding,
            bias=conv_bias,
        )
    )
