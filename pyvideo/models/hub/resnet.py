"""Hub builders for the ResNet family: Slow, C2D, I3D (Kinetics-400) and the Slow detector (AVA)."""
from typing import Any, Optional

import torch.nn as nn

from pyvideo.models.hub.utils import MODEL_ZOO_ROOT, ModelMetadata, build_hub_model
from pyvideo.models.resnet import create_resnet, create_resnet_with_roi_head

METADATA = {
    "slow_r50": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/SLOW_8x8_R50.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 8, 224, 224),),
        sampling_rate=(8,),
        accuracy={"top1": 74.58, "top5": 91.63},
        num_parameters=32_454_096,
        gflops=54.52,
    ),
    "c2d_r50": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/C2D_8x8_R50.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 8, 224, 224),),
        sampling_rate=(8,),
        accuracy={"top1": 71.46, "top5": 89.68},
        num_parameters=24_327_632,
        gflops=25.89,
    ),
    "i3d_r50": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/I3D_8x8_R50.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 8, 224, 224),),
        sampling_rate=(8,),
        accuracy={"top1": 73.27, "top5": 90.70},
        num_parameters=28_043_472,
        gflops=37.53,
    ),
    "slow_r50_detection": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/ava/SLOW_4x16_R50_DETECTION.pyth",
        dataset="AVA v2.2",
        num_classes=80,
        input_shape=((3, 4, 256, 256),),
        sampling_rate=(16,),
        accuracy={"mAP": 19.5},
        num_parameters=31_798_416,
        notes="Call as model(clip, boxes); boxes are (N, 5) rows of (batch index, x1, y1, x2, y2) in input pixels. "
        "Any spatial size works; the zoo publishes 31.78 M parameters, the builder has 31.80 M (as upstream).",
    ),
}

_CONFIGS = {
    "slow_r50": dict(model_depth=50, stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(8, 7, 7)),
    "c2d_r50": dict(
        stem_conv_kernel_size=(1, 7, 7),
        stage1_pool=nn.MaxPool3d,
        stage_conv_a_kernel_size=((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    ),
    # I3D inflates conv_a to 3x1x1 in every other block, with a per-stage phase
    "i3d_r50": dict(
        stem_conv_kernel_size=(5, 7, 7),
        stage1_pool=nn.MaxPool3d,
        stage_conv_a_kernel_size=(
            (3, 1, 1),
            [(3, 1, 1), (1, 1, 1)],
            [(3, 1, 1), (1, 1, 1)],
            [(1, 1, 1), (3, 1, 1)],
        ),
    ),
    "slow_r50_detection": {},
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


def slow_r50(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """Slow R50, 8x8 on Kinetics-400 (74.58 top-1). Input (B, 3, 8, 224, 224).

    ``pretrained`` downloads the model zoo weights; ``checkpoint_path`` loads a local file instead;
    kwargs override ``create_resnet`` arguments (only for models trained from scratch).
    """
    return _build("slow_r50", create_resnet, pretrained, progress, checkpoint_path, kwargs)


def c2d_r50(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """C2D R50, 8x8 on Kinetics-400 (71.46 top-1): 2-D convs only, temporal max-pool after stage 1."""
    return _build("c2d_r50", create_resnet, pretrained, progress, checkpoint_path, kwargs)


def i3d_r50(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """I3D R50, 8x8 on Kinetics-400 (73.27 top-1): inflated 3-D convs, temporal max-pool after stage 1."""
    return _build("i3d_r50", create_resnet, pretrained, progress, checkpoint_path, kwargs)


def slow_r50_detection(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """Slow R50 4x16 actor detector on AVA v2.2 (19.5 mAP); call as ``model(clip, boxes)``."""
    return _build("slow_r50_detection", create_resnet_with_roi_head, pretrained, progress, checkpoint_path, kwargs)


for _name, _metadata in METADATA.items():
    globals()[_name].metadata = _metadata
