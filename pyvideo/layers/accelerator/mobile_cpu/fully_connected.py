"""Fully connected efficient block (a Linear that stays as it is in the deploy form)."""
import torch.nn as nn

from pyvideo.accelerator.efficient_blocks.no_op_convert_block import NoOpConvertBlock


class FullyConnected(NoOpConvertBlock):
    """``nn.Linear(in_features, out_features, bias)`` stored as ``self.model``; applied to the last dim."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(model=nn.Linear(in_features, out_features, bias=bias))
