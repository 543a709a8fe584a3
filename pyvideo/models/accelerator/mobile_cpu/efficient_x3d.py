"""X3D (Feichtenhofer, CVPR 2020) built from efficient blocks, for mobile CPU deployment."""
from collections import OrderedDict

import torch
import torch.nn as nn

from pyvideo.layers.accelerator.mobile_cpu.activation_functions import make_activation
from pyvideo.layers.accelerator.mobile_cpu.convolutions import (
    Conv3d5x1x1BnAct,
    Conv3dPwBnAct,
    Conv3dTemporalKernel1BnAct,
)
from pyvideo.layers.accelerator.mobile_cpu.fully_connected import FullyConnected
from pyvideo.layers.accelerator.mobile_cpu.pool import AdaptiveAvgPool3dOutSize1

from .residual_blocks import X3dBottleneckBlock

# (mid, out) channels of stages s2..s5; each stage takes the previous one's output (the stem gives 24 channels)
# and starts with a stride-2 block.
_STEM_WIDTH = 24
_STAGE_WIDTHS = ((54, 24), (108, 48), (216, 96), (432, 192))
_STAGE_DEPTHS = {"XS": (3, 5, 11, 7), "S": (3, 5, 11, 7), "M": (3, 5, 11, 7), "L": (5, 10, 25, 15)}


def _stage(stage_in: int, mid: int, out: int, depth: int) -> nn.Sequential:
    blocks = OrderedDict()
    for i in range(depth):
        blocks[f"pathway0_res{i}"] = X3dBottleneckBlock(
            in_channels=stage_in if i == 0 else out,
            mid_channels=mid,
            out_channels=out,
            use_residual=True,
            spatial_stride=2 if i == 0 else 1,
            se_ratio=0.0625 if i % 2 == 0 else 0,
            act_functions=("relu", "swish", "relu"),
            use_bn=(True, True, True),
        )
    return nn.Sequential(blocks)


class EfficientX3d(nn.Module):
    """X3D classification network of efficient blocks. XS, S and M build the same network (they differ only in
    the clip fed to them); L is deeper.

    Args:
        num_classes: number of classes.
        dropout: dropout rate before the projection (no dropout module when 0).
        expansion: "XS", "S", "M" or "L".
        head_act: activation applied to the logits at eval time, a key of ``supported_act_functions``.
        enable_head: when False the network ends after s5.
    """

    def __init__(
        self,
        num_classes: int = 400,
        dropout: float = 0.5,
        expansion: str = "XS",
        head_act: str = "identity",
        enable_head: bool = True,
    ):
        super().__init__()
        if expansion not in _STAGE_DEPTHS:
            raise ValueError(f"EfficientX3d: expansion {expansion!r} not supported; use one of {sorted(_STAGE_DEPTHS)}")
        stem = OrderedDict()
        stem["pathway0_stem_conv_xy"] = Conv3dTemporalKernel1BnAct(
            3, _STEM_WIDTH, bias=False, groups=1, spatial_kernel=3, spatial_stride=2, spatial_padding=1,
            activation="identity", use_bn=False,
        )  # fmt: skip
        stem["pathway0_stem_conv"] = Conv3d5x1x1BnAct(
            _STEM_WIDTH, _STEM_WIDTH, bias=False, groups=_STEM_WIDTH, use_bn=True
        )
        self.s1 = nn.Sequential(stem)
        stage_in = _STEM_WIDTH
        for index, ((mid, out), depth) in enumerate(zip(_STAGE_WIDTHS, _STAGE_DEPTHS[expansion]), start=2):
            setattr(self, f"s{index}", _stage(stage_in, mid, out, depth))
            stage_in = out
        self.enable_head = enable_head
        if enable_head:
            head = OrderedDict()
            head["conv_5"] = Conv3dPwBnAct(in_channels=192, out_channels=432, bias=False, use_bn=True)
            head["avg_pool"] = AdaptiveAvgPool3dOutSize1()
            head["lin_5"] = Conv3dPwBnAct(in_channels=432, out_channels=2048, bias=False, use_bn=False)
            self.head = nn.Sequential(head)
            if dropout > 0:
                self.dropout = nn.Dropout(dropout)
            self.projection = FullyConnected(2048, num_classes, bias=True)
            self.act = make_activation(head_act, "EfficientX3d")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s5(self.s4(self.s3(self.s2(self.s1(x)))))
        if not self.enable_head:
            return x
        x = self.head(x)
        x = x.permute((0, 2, 3, 4, 1))  # channels last for the projection
        if hasattr(self, "dropout"):
            x = self.dropout(x)
        x = self.projection(x)
        if not self.training:  # fully convolutional inference: average the per-position scores
            x = self.act(x)
            x = x.mean([1, 2, 3])
        return x.reshape(x.shape[0], -1)


def create_x3d(
    *,
    num_classes: int = 400,
    dropout: float = 0.5,
    expansion: str = "XS",
    head_act: str = "identity",
    enable_head: bool = True,
) -> EfficientX3d:
    """Build an :class:`EfficientX3d` (see there for the arguments)."""
    return EfficientX3d(
        num_classes=num_classes, dropout=dropout, expansion=expansion, head_act=head_act, enable_head=enable_head
    )
