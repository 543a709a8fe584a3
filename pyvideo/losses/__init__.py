"""Losses (mirrors ``pytorchvideo.losses``)."""
from .soft_target_cross_entropy import SoftTargetCrossEntropyLoss

__all__ = ["SoftTargetCrossEntropyLoss"]
