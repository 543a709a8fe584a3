"""Conv3d + BatchNorm + activation efficient blocks.

Each block keeps an ``nn.Sequential`` named ``kernel`` with ``conv`` (Conv3d), an optional ``bn`` (BatchNorm3d) and
``act`` (an activation block), as upstream does, so state_dict keys match. ``convert()`` replaces ``kernel`` by one
:class:`~pyvideo.accelerator.deployable.FusedConv3d` holding the folded weight and bias and the activation; the
deploy form therefore has no shape baked in. ``convert_for_quantize`` and ``native_conv3d_op_qnnpack`` are accepted
for compatibility and change nothing: the deploy form is the same for fp32 and int8.
"""
import logging
from collections import OrderedDict
from typing import Optional, Tuple

import torch.nn as nn

from pyvideo.accelerator.deployable.conv import FusedConv3d
from pyvideo.accelerator.efficient_blocks.efficient_block_base import EfficientBlockBase

from .activation_functions import make_activation

logger = logging.getLogger(__name__)


class _Conv3dBnActBlock(EfficientBlockBase):
    """Shared original form (conv → optional BN → activation) and conversion of the conv blocks below."""

    def __init__(self, conv: nn.Conv3d, use_bn: bool, activation: str, norm_eps: float, norm_momentum: float):
        super().__init__()
        kernel = OrderedDict(conv=conv)
        if use_bn:
            kernel["bn"] = nn.BatchNorm3d(conv.out_channels, eps=norm_eps, momentum=norm_momentum)
        kernel["act"] = make_activation(activation, type(self).__name__)
        self.kernel = nn.Sequential(kernel)
        self.convert_flag = False

    def convert(
        self,
        input_blob_size: Optional[Tuple] = None,
        convert_for_quantize: bool = False,
        native_conv3d_op_qnnpack: bool = False,
        **kwargs,
    ):
        """Replace ``kernel`` by a FusedConv3d (BatchNorm folded with its running statistics, activation fused).

        The arguments are upstream's; none changes the result (see the module docstring)."""
        if self.convert_flag:
            raise RuntimeError(f"{type(self).__name__}: already converted, cannot be converted again")
        bn = getattr(self.kernel, "bn", None)
        self.kernel = FusedConv3d.from_conv(self.kernel.conv, bn, self.kernel.act.activation_kind)
        self.convert_flag = True

    def forward(self, x):
        return self.kernel(x)


class Conv3dPwBnAct(_Conv3dBnActBlock):
    """Pointwise (1×1×1, stride 1, groups 1) Conv3d + optional BN + activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias=False,
        activation: str = "relu",
        use_bn=True,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ):
        conv = nn.Conv3d(in_channels, out_channels, kernel_size=1, bias=bias)
        super().__init__(conv, use_bn, activation, norm_eps, norm_momentum)
        self._in_channels = in_channels
        self._out_channels = out_channels
        self.act = activation


class Conv3d3x3x3DwBnAct(_Conv3dBnActBlock):
    """Depthwise 3×3×3 Conv3d (padding 1, temporal stride 1) + optional BN + activation."""

    def __init__(
        self,
        in_channels: int,
        spatial_stride: int = 1,
        bias=False,
        activation: str = "relu",
        use_bn=True,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ):
        conv = nn.Conv3d(
            in_channels,
            in_channels,
            kernel_size=(3, 3, 3),
            stride=(1, spatial_stride, spatial_stride),
            groups=in_channels,
            padding=1,
            bias=bias,
        )
        super().__init__(conv, use_bn, activation, norm_eps, norm_momentum)


class Conv3dTemporalKernel1BnAct(_Conv3dBnActBlock):
    """Conv3d with a 1×k×k kernel (temporal kernel, stride and dilation 1, no temporal padding) + BN + activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias=False,
        groups: int = 1,
        spatial_kernel: int = 1,
        spatial_stride: int = 1,
        spatial_padding: int = 0,
        spatial_dilation: int = 1,
        activation: str = "relu",
        use_bn=True,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ):
        conv = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=(1, spatial_kernel, spatial_kernel),
            padding=(0, spatial_padding, spatial_padding),
            stride=(1, spatial_stride, spatial_stride),
            dilation=(1, spatial_dilation, spatial_dilation),
            groups=groups,
            bias=bias,
        )
        super().__init__(conv, use_bn, activation, norm_eps, norm_momentum)


class _TemporalConvBnActBlock(_Conv3dBnActBlock):
    """Conv3d with a k×1×1 kernel, 'same' temporal zero padding and stride 1, + BN + activation."""

    temporal_kernel = 0

    def __init__(self, in_channels, out_channels, groups, bias, activation, use_bn, norm_eps, norm_momentum):
        k = self.temporal_kernel
        conv = nn.Conv3d(
            in_channels, out_channels, kernel_size=(k, 1, 1), groups=groups, padding=(k // 2, 0, 0), bias=bias
        )
        super().__init__(conv, use_bn, activation, norm_eps, norm_momentum)


class Conv3d3x1x1BnAct(_TemporalConvBnActBlock):
    """Conv3d 3×1×1 (padding (1, 0, 0)) + optional BN + activation."""

    temporal_kernel = 3

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        groups: int = 1,
        bias=False,
        activation: str = "relu",
        use_bn=True,
        norm_eps=1e-5,
        norm_momentum=0.1,
    ):
        if groups == out_channels:
            logger.warning("Conv3d3x1x1BnAct is slow as a depthwise conv; consider Conv3d3x3x3DwBnAct instead.")
        super().__init__(in_channels, out_channels, groups, bias, activation, use_bn, norm_eps, norm_momentum)


class Conv3d5x1x1BnAct(_TemporalConvBnActBlock):
    """Conv3d 5×1×1 (padding (2, 0, 0)) + optional BN + activation."""

    temporal_kernel = 5

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        groups: int = 1,
        bias=False,
        activation: str = "relu",
        use_bn=True,
        norm_eps=1e-5,
        norm_momentum=0.1,
    ):
        super().__init__(in_channels, out_channels, groups, bias, activation, use_bn, norm_eps, norm_momentum)
