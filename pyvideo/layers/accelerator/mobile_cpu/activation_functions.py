"""Activation efficient blocks. Each keeps its torch module in ``self.act`` and names its function in ``activation_kind``."""
import torch
import torch.nn as nn

from pyvideo.accelerator.efficient_blocks.efficient_block_base import EfficientBlockBase
from pyvideo.layers.swish import Swish as _TrainingSwish


class _NaiveSwish(nn.Module):
    """``x * sigmoid(x)`` written as two plain ops: the deploy form of :class:`Swish`."""

    activation_kind = "swish"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class _ActivationBlock(EfficientBlockBase):
    """An activation whose deploy form is itself (``convert`` accepts and ignores any arguments)."""

    activation_kind = "identity"

    def convert(self, *args, **kwargs):
        pass

    def forward(self, x):
        return self.act(x)


class Swish(_ActivationBlock):
    activation_kind = "swish"

    def __init__(self):
        super().__init__()
        self.act = _TrainingSwish()

    def convert(self, *args, **kwargs):
        self.act = _NaiveSwish()


class HardSwish(_ActivationBlock):
    activation_kind = "hswish"

    def __init__(self):
        super().__init__()
        self.act = nn.Hardswish()


class ReLU(_ActivationBlock):
    activation_kind = "relu"

    def __init__(self):
        super().__init__()
        self.act = nn.ReLU(inplace=True)


class Identity(_ActivationBlock):
    activation_kind = "identity"

    def __init__(self):
        super().__init__()
        self.act = nn.Identity()


supported_act_functions = {
    "relu": ReLU,
    "swish": Swish,
    "hswish": HardSwish,
    "identity": Identity,
}


def make_activation(activation: str, owner: str) -> _ActivationBlock:
    """A new activation block for the name ``activation``; ``owner`` names the caller in the error message."""
    if activation not in supported_act_functions:
        raise ValueError(
            f"{owner}: activation {activation!r} is not in supported_act_functions {sorted(supported_act_functions)}"
        )
    return supported_act_functions[activation]()
