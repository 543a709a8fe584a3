"""A width- and depth-reduced X3D made of the accelerator's efficient blocks (trainable, convertible, quantizable).

``dense_stem=True`` (the demo's choice) swaps X3D's (2+1)D stem for one dense 3x3x3 conv; see ``_dense_stem``.

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


def _x3d_stem(width: int) -> nn.Sequential:
    """X3D's (2+1)D stem: 3x3 spatial conv (stride 2), then a 5x1x1 depthwise temporal conv."""
    return nn.Sequential(OrderedDict(
        pathway0_stem_conv_xy=Conv3dTemporalKernel1BnAct(3, width, bias=False, spatial_kernel=3, spatial_stride=2,
                                                         spatial_padding=1, activation="identity", use_bn=False),
        pathway0_stem_conv=Conv3d5x1x1BnAct(width, width, bias=False, groups=width, use_bn=True)))


def _dense_stem(width: int) -> nn.Sequential:
    """A dense 3x3x3 conv at full resolution. A (2+1)D stem is separable in space and time, so no stem filter
    can respond to one motion direction more than to the opposite one; on tiny clips the strided stages that
    follow then see sub-pixel motion. Measured on 4 synthetic motion classes (4x32x32, 8 epochs): 92% with
    this stem, 44-52% with the X3D stem (efficient or vanilla blocks)."""
    return nn.Sequential(OrderedDict(conv=nn.Conv3d(3, width, 3, padding=1, bias=False), bn=nn.BatchNorm3d(width),
                                     act=nn.ReLU()))


class SmallEfficientX3d(nn.Module):
    def __init__(self, num_classes: int, width_multiplier: float = 0.5, depths: Sequence[int] = (1, 2, 3, 2),
                 head_width: int = 256, dropout: float = 0.2, stage_spatial_strides: Sequence[int] = (2, 2, 2, 2),
                 dense_stem: bool = False):
        super().__init__()
        if len(depths) != 4 or min(depths) < 1:
            raise ValueError(f"depths must be four positive stage depths, got {depths}")
        stem = _scaled(_XS_STEM, width_multiplier)
        self.s1 = _dense_stem(stem) if dense_stem else _x3d_stem(stem)
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
