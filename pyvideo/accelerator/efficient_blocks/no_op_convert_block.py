"""An efficient block whose deploy form is its original form."""
import torch.nn as nn

from .efficient_block_base import EfficientBlockBase


class NoOpConvertBlock(EfficientBlockBase):
    """Wraps ``model`` (stored as ``self.model``) so that it can sit in an efficient-block network; ``convert`` keeps it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def convert(self, *args, **kwargs):
        pass

    def forward(self, x):
        return self.model(x)
