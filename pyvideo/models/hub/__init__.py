"""Pretrained-model builders (mirrors ``pytorchvideo.models.hub``), their metadata and the Kinetics-400 labels."""
import json
from importlib import resources
from typing import List

from . import csn as _csn, efficient_x3d_mobile_cpu as _efficient_x3d, r2plus1d as _r2plus1d
from . import resnet as _resnet, slowfast as _slowfast, x3d as _x3d
from .csn import csn_r101
from .efficient_x3d_mobile_cpu import efficient_x3d_s, efficient_x3d_xs
from .r2plus1d import r2plus1d_r50
from .resnet import c2d_r50, i3d_r50, slow_r50, slow_r50_detection
from .slowfast import slowfast_16x8_r101_50_50, slowfast_r50, slowfast_r50_detection, slowfast_r101
from .utils import ModelMetadata, hub_model_builder, load_checkpoint
from .vision_transformers import MODEL_METADATA_VIT, mvit_base_16, mvit_base_16x4, mvit_base_32x3
from .x3d import x3d_l, x3d_m, x3d_s, x3d_xs

# Metadata per hub name (checkpoint URL, input shape, sampling rate, mean/std, classes, published accuracy).
MODEL_METADATA = {
    **_resnet.METADATA,
    **_slowfast.METADATA,
    **_csn.METADATA,
    **_r2plus1d.METADATA,
    **_x3d.METADATA,
    **MODEL_METADATA_VIT,
    **_efficient_x3d.metadata,
}


def kinetics_400_class_names() -> List[str]:
    """The 400 Kinetics class names, indexed by the class id the Kinetics checkpoints predict."""
    text = resources.files(__name__).joinpath("kinetics_400_classnames.json").read_text(encoding="utf-8")
    return json.loads(text)


__all__ = [
    "MODEL_METADATA", "ModelMetadata", "hub_model_builder", "load_checkpoint", "kinetics_400_class_names",
    "c2d_r50", "i3d_r50", "slow_r50", "slow_r50_detection", "slowfast_r50", "slowfast_r101",
    "slowfast_16x8_r101_50_50", "slowfast_r50_detection", "csn_r101", "r2plus1d_r50",
    "x3d_xs", "x3d_s", "x3d_m", "x3d_l", "mvit_base_16x4", "mvit_base_32x3", "mvit_base_16",
    "efficient_x3d_xs", "efficient_x3d_s",
]
