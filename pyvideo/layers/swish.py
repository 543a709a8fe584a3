"""Swish activation, x * sigmoid(x).

Written with plain tensor ops (no custom autograd function, unlike upstream's ``SwishFunction``) so that
autograd, ``torch.export`` and ONNX export all see ordinary operators.
"""
import torch
import torch.nn as nn


class Swish(nn.Module):
    """Swish activation: ``x * sigmoid(x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)
