"""X3D bottleneck block built from efficient blocks."""
from collections import OrderedDict
from typing import Optional, Tuple

import torch
import torch.nn as nn

from pyvideo.accelerator.efficient_blocks.efficient_block_base import EfficientBlockBase
from pyvideo.layers.accelerator.mobile_cpu.activation_functions import make_activation
from pyvideo.layers.accelerator.mobile_cpu.attention import SqueezeExcitation
from pyvideo.layers.accelerator.mobile_cpu.convolutions import (
    Conv3d3x3x3DwBnAct,
    Conv3dPwBnAct,
    Conv3dTemporalKernel1BnAct,
)
from pyvideo.layers.utils import round_width


class X3dBottleneckBlock(EfficientBlockBase):
    """X3D residual block: 1×1×1 conv → depthwise 3×3×3 conv → optional SE → act → 1×1×1 conv, + shortcut → act.

    ::

        x ─ conv_0 (pw, BN, act[0]) ─ conv_1 (dw 3×3×3, stride, BN) ─ [se] ─ act_func_1 ─ conv_2 (pw, BN) ─ + ─ final_act
        └──────────────────── shortcut: x, or _res_proj(x) (1×1×1 conv, stride, BN) ──────────────────────┘

    The shortcut is projected when ``spatial_stride != 1`` or ``in_channels != out_channels``. The SE width is
    ``round_width(mid_channels, se_ratio)``.

    Deploy form (``convert``): every conv is a FusedConv3d; ``act_func_1`` is fused into the SE block, or into
    ``conv_1`` when there is no SE; the residual add and ``final_act`` are fused into ``conv_2``, which is then called
    with the shortcut as its second input. Nothing depends on the input size (upstream froze the spatial size after
    the stride with floor division, wrong for odd sizes).
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        use_residual: bool = True,
        spatial_stride: int = 1,
        se_ratio: float = 0.0625,
        act_functions: Optional[Tuple[str]] = ("relu", "relu", "relu"),
        bias: Optional[Tuple[bool]] = (False, False, False),
        use_bn: Optional[Tuple[bool]] = (True, True, True),
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ):
        super().__init__()
        owner = "X3dBottleneckBlock"
        self._use_residual = use_residual
        self._res_proj = None
        if use_residual and (spatial_stride != 1 or in_channels != out_channels):
            self._res_proj = Conv3dTemporalKernel1BnAct(
                in_channels,
                out_channels,
                bias=False,
                groups=1,
                spatial_kernel=1,
                spatial_stride=spatial_stride,
                spatial_padding=0,
                spatial_dilation=1,
                activation="identity",
                use_bn=True,
            )
        norm_args = dict(norm_eps=norm_eps, norm_momentum=norm_momentum)
        layers = OrderedDict()
        layers["conv_0"] = Conv3dPwBnAct(
            in_channels, mid_channels, bias=bias[0], activation=act_functions[0], use_bn=use_bn[0], **norm_args
        )
        self._spatial_stride = spatial_stride
        self._mid_channels = mid_channels
        # conv_1 has no activation of its own: act_functions[1] comes after the SE block.
        layers["conv_1"] = Conv3d3x3x3DwBnAct(
            mid_channels, spatial_stride=spatial_stride, bias=bias[1], activation="identity", use_bn=use_bn[1], **norm_args
        )
        if se_ratio > 0:
            layers["se"] = SqueezeExcitation(
                num_channels=mid_channels, num_channels_reduced=round_width(mid_channels, se_ratio), is_3d=True
            )
        layers["act_func_1"] = make_activation(act_functions[1], owner)
        self._out_channels = out_channels
        # conv_2 has no activation: act_functions[2] comes after the residual sum.
        layers["conv_2"] = Conv3dPwBnAct(
            mid_channels, out_channels, bias=bias[2], activation="identity", use_bn=use_bn[2], **norm_args
        )
        self.final_act = make_activation(act_functions[2], owner)
        self.layers = nn.Sequential(layers)
        self.convert_flag = False

    def _shortcut(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        if not self._use_residual:
            return None
        return x if self._res_proj is None else self._res_proj(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self._shortcut(x)
        if self.convert_flag and shortcut is not None:
            out = x
            for name, layer in self.layers.named_children():
                out = layer(out) if name != "conv_2" else layer.kernel(out, shortcut)
            return out
        out = self.layers(x)
        if shortcut is not None:
            out = shortcut + out
        return self.final_act(out)

    def convert(self, input_blob_size=None, *args, **kwargs):
        if self.convert_flag:
            raise RuntimeError("X3dBottleneckBlock: already converted, cannot be converted again")
        if self._res_proj is not None:
            self._res_proj.convert(input_blob_size)
        for layer in self.layers.children():
            layer.convert(input_blob_size)
        self.final_act.convert(input_blob_size)
        self._fuse_act_func_1()
        if self._use_residual:
            self.layers.conv_2.kernel.fuse_residual(self.final_act.activation_kind)
        else:
            self.layers.conv_2.kernel.fuse_activation(self.final_act.activation_kind)
        self.final_act = nn.Identity()
        self.convert_flag = True

    def _fuse_act_func_1(self):
        """Move act_func_1 into the layer before it (SE, else the depthwise conv) and leave Identity in its place."""
        kind = self.layers.act_func_1.activation_kind
        previous = self.layers.se.se if hasattr(self.layers, "se") else self.layers.conv_1.kernel
        previous.fuse_activation(kind)
        self.layers.act_func_1 = nn.Identity()
