"""Video transforms (``pytorchvideo.transforms`` API), implemented on torch alone.

Layout: video transforms take clips ``C, T, H, W`` and batches ``..., C, T, H, W``; ``AugMix``,
``RandAugment`` and ``augmentations.AugmentTransform`` take ``..., T, C, H, W`` as upstream (wrap them in
``Permute((1, 0, 2, 3))``, as ``create_video_transform`` does). ``MixUp``/``CutMix``/``MixVideo`` take batches.
"""
from . import functional
from .augmix import AugMix
from .mix import CutMix, MixUp, MixVideo
from .rand_augment import RandAugment
from .frame_transforms import (
    CenterCropVideo,
    ColorJitter,
    Compose,
    GaussianBlur,
    Lambda,
    RandomCropVideo,
    RandomHorizontalFlipVideo,
)
from .transforms import (
    ApplyTransformToKey,
    ConvertFloatToUint8,
    ConvertUint8ToFloat,
    Div255,
    MoveChannelFront,
    MoveChannelRear,
    Normalize,
    OpSampler,
    Permute,
    RandomResizedCrop,
    RandomShortSideScale,
    RemoveKey,
    ShortSideScale,
    UniformCropVideo,
    UniformTemporalSubsample,
    UniformTemporalSubsampleRepeated,
)
from .transforms_factory import create_video_transform

__all__ = [
    "ApplyTransformToKey",
    "AugMix",
    "CenterCropVideo",
    "ColorJitter",
    "Compose",
    "ConvertFloatToUint8",
    "ConvertUint8ToFloat",
    "CutMix",
    "Div255",
    "GaussianBlur",
    "Lambda",
    "MixUp",
    "MixVideo",
    "MoveChannelFront",
    "MoveChannelRear",
    "Normalize",
    "OpSampler",
    "Permute",
    "RandAugment",
    "RandomCropVideo",
    "RandomHorizontalFlipVideo",
    "RandomResizedCrop",
    "RandomShortSideScale",
    "RemoveKey",
    "ShortSideScale",
    "UniformCropVideo",
    "UniformTemporalSubsample",
    "UniformTemporalSubsampleRepeated",
    "create_video_transform",
    "functional",
]
