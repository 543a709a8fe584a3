from .efficient_block_base import EfficientBlockBase
from .no_op_convert_block import NoOpConvertBlock

__all__ = ["EfficientBlockBase", "NoOpConvertBlock"]
