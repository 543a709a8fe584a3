"""Transmuters from plain ``nn.Conv3d`` layers to the mobile_cpu conv efficient blocks.

Each returns an efficient block without BN and with identity activation, holding a copy of the conv's weight
and bias, or None when the conv does not have the block's exact geometry.
"""
from typing import Optional

import torch.nn as nn

from pyvideo.layers.accelerator.mobile_cpu.convolutions import (
    Conv3d3x1x1BnAct,
    Conv3d3x3x3DwBnAct,
    Conv3d5x1x1BnAct,
    Conv3dPwBnAct,
    Conv3dTemporalKernel1BnAct,
)


def _plain_conv3d(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Conv3d)
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
        and module.weight is not None
    )


def _with_weights(block: nn.Module, conv: nn.Conv3d) -> nn.Module:
    block.kernel.conv.load_state_dict(conv.state_dict())
    block.train(conv.training)
    return block


def transmute_Conv3dPwBnAct(input_module: nn.Module) -> Optional[nn.Module]:
    """1×1×1 conv, groups 1, stride 1, padding 0, dilation 1."""
    if not _plain_conv3d(input_module):
        return None
    m = input_module
    if (
        m.kernel_size == (1, 1, 1)
        and m.groups == 1
        and m.stride == (1, 1, 1)
        and m.padding == (0, 0, 0)
        and m.dilation == (1, 1, 1)
    ):
        block = Conv3dPwBnAct(m.in_channels, m.out_channels, bias=m.bias is not None, activation="identity", use_bn=False)
        return _with_weights(block, m)
    return None


def transmute_Conv3d3x3x3DwBnAct(input_module: nn.Module) -> Optional[nn.Module]:
    """Depthwise 3×3×3 conv, temporal stride 1, equal spatial strides, padding 1, dilation 1."""
    if not _plain_conv3d(input_module):
        return None
    m = input_module
    if (
        m.kernel_size == (3, 3, 3)
        and m.in_channels == m.out_channels == m.groups
        and m.stride[0] == 1
        and m.stride[1] == m.stride[2]
        and m.padding == (1, 1, 1)
        and m.dilation == (1, 1, 1)
    ):
        block = Conv3d3x3x3DwBnAct(
            m.in_channels, spatial_stride=m.stride[1], bias=m.bias is not None, activation="identity", use_bn=False
        )
        return _with_weights(block, m)
    return None


def transmute_Conv3dTemporalKernel1BnAct(input_module: nn.Module) -> Optional[nn.Module]:
    """1×k×k conv with square spatial kernel/stride/padding/dilation and no temporal stride, padding or dilation;
    pointwise convs are left to transmute_Conv3dPwBnAct."""
    if not _plain_conv3d(input_module):
        return None
    m = input_module
    is_pointwise = m.kernel_size == (1, 1, 1) and m.stride == (1, 1, 1) and m.padding == (0, 0, 0) and m.groups == 1
    if (
        m.kernel_size[0] == 1
        and m.kernel_size[1] == m.kernel_size[2]
        and m.stride[0] == 1
        and m.stride[1] == m.stride[2]
        and m.padding[0] == 0
        and m.padding[1] == m.padding[2]
        and m.dilation[0] == 1
        and m.dilation[1] == m.dilation[2]
        and not is_pointwise
    ):
        block = Conv3dTemporalKernel1BnAct(
            m.in_channels,
            m.out_channels,
            bias=m.bias is not None,
            groups=m.groups,
            spatial_kernel=m.kernel_size[1],
            spatial_stride=m.stride[1],
            spatial_padding=m.padding[1],
            spatial_dilation=m.dilation[1],
            activation="identity",
            use_bn=False,
        )
        return _with_weights(block, m)
    return None


def _transmute_temporal(input_module: nn.Module, block_type, kernel: int) -> Optional[nn.Module]:
    if not _plain_conv3d(input_module):
        return None
    m = input_module
    if (
        m.kernel_size == (kernel, 1, 1)
        and m.stride == (1, 1, 1)
        and m.padding == (kernel // 2, 0, 0)
        and m.dilation == (1, 1, 1)
    ):
        block = block_type(
            m.in_channels, m.out_channels, groups=m.groups, bias=m.bias is not None, activation="identity", use_bn=False
        )
        return _with_weights(block, m)
    return None


def transmute_Conv3d3x1x1BnAct(input_module: nn.Module) -> Optional[nn.Module]:
    """3×1×1 conv, stride 1, padding (1, 0, 0), dilation 1."""
    return _transmute_temporal(input_module, Conv3d3x1x1BnAct, 3)


def transmute_Conv3d5x1x1BnAct(input_module: nn.Module) -> Optional[nn.Module]:
    """5×1×1 conv, stride 1, padding (2, 0, 0), dilation 1."""
    return _transmute_temporal(input_module, Conv3d5x1x1BnAct, 5)


EFFICIENT_BLOCK_TRANSMUTER_MOBILE_CPU = [
    transmute_Conv3dPwBnAct,
    transmute_Conv3d3x3x3DwBnAct,
    transmute_Conv3dTemporalKernel1BnAct,
    transmute_Conv3d3x1x1BnAct,
    transmute_Conv3d5x1x1BnAct,
]
