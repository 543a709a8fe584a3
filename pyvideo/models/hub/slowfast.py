"""Hub builders for SlowFast (Kinetics-400) and the SlowFast detector (AVA)."""
from typing import Any, Optional

import torch.nn as nn

from pyvideo.models.hub.utils import MODEL_ZOO_ROOT, ModelMetadata, build_hub_model
from pyvideo.models.slowfast import create_slowfast, create_slowfast_with_roi_head

METADATA = {
    "slowfast_r50": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/SLOWFAST_8x8_R50.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 8, 224, 224), (3, 32, 224, 224)),
        sampling_rate=(8, 2),
        accuracy={"top1": 76.94, "top5": 92.69},
        num_parameters=34_566_488,
        gflops=65.71,
    ),
    "slowfast_r101": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/SLOWFAST_8x8_R101.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 8, 224, 224), (3, 32, 224, 224)),
        sampling_rate=(8, 2),
        accuracy={"top1": 77.90, "top5": 93.27},
        num_parameters=62_826_968,
        gflops=127.20,
    ),
    "slowfast_16x8_r101_50_50": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/SLOWFAST_16x8_R101_50_50.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 16, 224, 224), (3, 64, 224, 224)),
        sampling_rate=(8, 2),
        accuracy={"top1": 78.70, "top5": 93.61},
        num_parameters=53_774_808,
        gflops=215.61,
    ),
    "slowfast_r50_detection": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/ava/SLOWFAST_8x8_R50_DETECTION.pyth",
        dataset="AVA v2.2",
        num_classes=80,
        input_shape=((3, 8, 256, 256), (3, 32, 256, 256)),
        sampling_rate=(8, 2),
        accuracy={"mAP": 24.67},
        num_parameters=33_828_888,
        notes="Call as model([slow, fast], boxes); boxes are (N, 5) rows of (batch index, x1, y1, x2, y2) in input "
        "pixels. The zoo publishes 33.82 M parameters, the builder has 33.83 M (as upstream).",
    ),
}

# res4 of the 16x8 "50_50" model: temporal conv_a in the first 6 of its 23 blocks only
_RES4_50_50 = ((3, 1, 1),) * 6 + ((1, 1, 1),) * 17

_CONFIGS = {
    "slowfast_r50": dict(model_depth=50, slowfast_fusion_conv_kernel_size=(7, 1, 1)),
    "slowfast_r101": dict(model_depth=101, slowfast_fusion_conv_kernel_size=(5, 1, 1)),
    "slowfast_16x8_r101_50_50": dict(
        model_depth=101,
        slowfast_fusion_conv_kernel_size=(5, 1, 1),
        stage_conv_a_kernel_sizes=(
            ((1, 1, 1), (1, 1, 1), _RES4_50_50, (3, 1, 1)),
            ((3, 1, 1), (3, 1, 1), _RES4_50_50, (3, 1, 1)),
        ),
        head_pool_kernel_sizes=((16, 7, 7), (64, 7, 7)),
    ),
    "slowfast_r50_detection": {},
}


def _build(name: str, builder, pretrained: bool, progress: bool, checkpoint_path: Optional[str], kwargs):
    return build_hub_model(
        builder,
        metadata=METADATA[name],
        pretrained=pretrained,
        progress=progress,
        checkpoint_path=checkpoint_path,
        config=_CONFIGS[name],
        kwargs=kwargs,
    )


def slowfast_r50(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """SlowFast R50 8x8 on Kinetics-400 (76.94 top-1). Input ``[slow (B,3,8,224,224), fast (B,3,32,224,224)]``."""
    return _build("slowfast_r50", create_slowfast, pretrained, progress, checkpoint_path, kwargs)


def slowfast_r101(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """SlowFast R101 8x8 on Kinetics-400 (77.90 top-1)."""
    return _build("slowfast_r101", create_slowfast, pretrained, progress, checkpoint_path, kwargs)


def slowfast_16x8_r101_50_50(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """SlowFast R101 16x8 on Kinetics-400 (78.70 top-1). Input ``[slow 16 frames, fast 64 frames]`` at 224."""
    return _build("slowfast_16x8_r101_50_50", create_slowfast, pretrained, progress, checkpoint_path, kwargs)


def slowfast_r50_detection(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """SlowFast R50 8x8 actor detector on AVA v2.2 (24.67 mAP); call as ``model([slow, fast], boxes)``."""
    return _build(
        "slowfast_r50_detection", create_slowfast_with_roi_head, pretrained, progress, checkpoint_path, kwargs
    )


for _name, _metadata in METADATA.items():
    globals()[_name].metadata = _metadata
