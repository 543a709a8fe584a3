"""A width- and depth-reduced X3D made of the accelerator's efficient blocks (trainable, convertible, quantizable).

Same topology as ``models.accelerator.mobile_cpu.efficient_x3d.EfficientX3d`` (stem 3x3 spatial + 5x1x1 depthwise
temporal, four stages of X3D bottlenecks with SE on even blocks, conv_5 / global pool / lin_5 head), with every
width multiplied by ``width_multiplier`` and configurable stage depths and strides, so the demo trains in minutes
on a CPU (small inputs want fewer spatial strides: a 1-pixel motion vanishes after a few stride-2 stages).
``width_multiplier=1, depths=(3, 5, 11, 7), head_width=2048`` reproduces EfficientX3d-XS's layer shapes.
"""
from collections import OrderedDict
from typing import Sequence

from torch import nn

from pyvideo.layers.accelerator.mobile_cpu.convolutions import (
    Conv3d5x1x1BnAct,
    Conv3dPwBnAct,
    Conv3dTemporalKernel1BnAct,
)
from pyvideo.layers.accelerator.mobile_cpu.fully_connected import FullyConnected
from pyvideo.layers.accelerator.mobile_cpu.pool import AdaptiveAvgPool3dOutSize1
from pyvideo.models.accelerator.mobile_cpu.residual_blocks import X3dBottleneckBlock

_XS_STEM, _XS_STAGES, _XS_HEAD_CONV = 24, ((54, 24), (108, 48), (216, 96), (432, 192)), 432


def _scaled(width: int, multiplier: float) -> int:
    return max(8, int(round(width * multiplier / 8)) * 8)


class SmallEfficientX3d(nn.Module):
    def __init__(self, num_classes: int, width_multiplier: float = 0.5, depths: Sequence[int] = (1, 2, 3, 2),
                 head_width: int = 256, dropout: float = 0.2, stage_spatial_strides: Sequence[int] = (2, 2, 2, 2)):
        super().__init__()
        if len(depths) != 4 or min(depths) < 1:
            raise ValueError(f"depths must be four positive stage depths, got {depths}")
        stem = _scaled(_XS_STEM, width_multiplier)
        self.s1 = nn.Sequential(OrderedDict(
            pathway0_stem_conv_xy=Conv3dTemporalKernel1BnAct(3, stem, bias=False, spatial_kernel=3, spatial_stride=2,
                                                             spatial_padding=1, activation="identity", use_bn=False),
            pathway0_stem_conv=Conv3d5x1x1BnAct(stem, stem, bias=False, groups=stem, use_bn=True)))
        channels = stem
        for index, ((mid, out), depth, stride) in enumerate(zip(_XS_STAGES, depths, stage_spatial_strides), start=2):
            mid, out = _scaled(mid, width_multiplier), _scaled(out, width_multiplier)
            blocks = OrderedDict(
                (f"pathway0_res{i}", X3dBottleneckBlock(channels if i == 0 else out, mid, out,
                                                        spatial_stride=stride if i == 0 else 1,
                                                        se_ratio=0.0625 if i % 2 == 0 else 0,
                                                        act_functions=("relu", "swish", "relu")))
                for i in range(depth))
            setattr(self, f"s{index}", nn.Sequential(blocks))
            channels = out
        head_conv = _scaled(_XS_HEAD_CONV, width_multiplier)
        self.head = nn.Sequential(OrderedDict(
            conv_5=Conv3dPwBnAct(channels, head_conv, bias=False, use_bn=True),
            avg_pool=AdaptiveAvgPool3dOutSize1(),
            lin_5=Conv3dPwBnAct(head_conv, head_width, bias=False, use_bn=False)))
        self.dropout = nn.Dropout(dropout)
        self.projection = FullyConnected(head_width, num_classes, bias=True)

    def forward(self, x):
        x = self.head(self.s5(self.s4(self.s3(self.s2(self.s1(x))))))
        return self.projection(self.dropout(x.flatten(1)))
