"""Video models with PyTorchVideo-compatible builders and state_dicts (mirrors ``pytorchvideo.models``)."""
import importlib

from .csn import create_csn
from .head import ResNetBasicHead, create_res_basic_head
from .masked_multistream import (
    LSTM,
    LearnMaskedDefault,
    MaskedMultiPathWay,
    MaskedSequential,
    MaskedTemporalPooling,
    TransposeMultiheadAttention,
    TransposeTransformerEncoder,
)
from .net import MultiPathWayWithFuse, Net
from .resnet import BottleneckBlock, create_bottleneck_block, create_resnet
from .slowfast import create_slowfast
from .stem import ResNetBasicStem, create_conv_patch_embed, create_res_basic_stem
from .vision_transformers import create_multiscale_vision_transformers
from .weight_init import init_net_weights

# Submodules reachable as attributes (``models.slowfast.create_slowfast``) without importing them all up front.
_SUBMODULES = (
    "accelerator", "audio_visual_slowfast", "byol", "csn", "head", "hub", "masked_multistream", "memory_bank", "net",
    "r2plus1d", "resnet", "simclr", "slowfast", "stem", "vision_transformers", "weight_init", "x3d",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "create_csn", "create_res_basic_head", "create_bottleneck_block", "create_resnet", "create_slowfast",
    "create_conv_patch_embed", "create_res_basic_stem", "create_multiscale_vision_transformers", "init_net_weights",
    "ResNetBasicHead", "ResNetBasicStem", "BottleneckBlock", "Net", "MultiPathWayWithFuse",
    "LearnMaskedDefault", "LSTM", "MaskedMultiPathWay", "MaskedSequential", "MaskedTemporalPooling",
    "TransposeMultiheadAttention", "TransposeTransformerEncoder",
]
