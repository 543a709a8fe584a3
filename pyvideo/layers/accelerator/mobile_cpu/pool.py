"""Pooling efficient blocks."""
from typing import Tuple, Union

import torch.nn as nn

from pyvideo.accelerator.deployable.pool import GlobalAvgPool
from pyvideo.accelerator.efficient_blocks.efficient_block_base import EfficientBlockBase
from pyvideo.accelerator.efficient_blocks.no_op_convert_block import NoOpConvertBlock


class _GlobalAvgPoolBlock(EfficientBlockBase):
    """Adaptive average pool to output size 1.

    Upstream's deploy form is an AvgPool whose kernel is the example input's size, which breaks on any other size;
    pyvideo's is :class:`GlobalAvgPool`, the mean over all trailing dims, which works for every input size.
    """

    def __init__(self, adaptive_pool: nn.Module):
        super().__init__()
        self.pool = adaptive_pool
        self.convert_flag = False

    def convert(self, *args, **kwargs):
        if self.convert_flag:
            raise RuntimeError(f"{type(self).__name__}: already converted, cannot be converted again")
        self.pool = GlobalAvgPool()
        self.convert_flag = True

    def forward(self, x):
        return self.pool(x)


class AdaptiveAvgPool3dOutSize1(_GlobalAvgPoolBlock):
    """AdaptiveAvgPool3d with output (T, H, W) = (1, 1, 1)."""

    def __init__(self):
        super().__init__(nn.AdaptiveAvgPool3d(1))


class AdaptiveAvgPool2dOutSize1(_GlobalAvgPoolBlock):
    """AdaptiveAvgPool2d with output (H, W) = (1, 1)."""

    def __init__(self):
        super().__init__(nn.AdaptiveAvgPool2d(1))


class AdaptiveAvgPool3d(NoOpConvertBlock):
    """AdaptiveAvgPool3d with any output size; unchanged by ``convert``."""

    def __init__(self, output_size: Union[int, Tuple]):
        super().__init__(model=nn.AdaptiveAvgPool3d(output_size))


class AdaptiveAvgPool2d(NoOpConvertBlock):
    """AdaptiveAvgPool2d with any output size; unchanged by ``convert``."""

    def __init__(self, output_size: Union[int, Tuple]):
        super().__init__(model=nn.AdaptiveAvgPool2d(output_size))
