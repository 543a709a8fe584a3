"""Hub builders for EfficientX3d (X3D of efficient blocks), with Kinetics-400 checkpoints in original form."""
from typing import Any, Optional

import torch.nn as nn

from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

from .utils import MODEL_ZOO_ROOT, ModelMetadata, build_hub_model

# Published Kinetics-400 results of the PyTorchVideo accelerator model zoo (latency: Samsung S8, 1-s clips).
metadata = {
    "efficient_x3d_xs": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/efficient_x3d_xs_original_form.pyth",
        dataset="kinetics400",
        num_classes=400,
        input_shape=((3, 4, 160, 160),),
        sampling_rate=(12,),
        accuracy={"top1": 68.5, "top5": 88.0, "int8_top1": 66.9, "int8_top5": 87.2},
        num_parameters=3_794_322,
        notes="Samsung S8 latency: 233 ms fp32, 165 ms int8 (upstream's QNNPACK deploy form).",
    ),
    "efficient_x3d_s": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/efficient_x3d_s_original_form.pyth",
        dataset="kinetics400",
        num_classes=400,
        input_shape=((3, 13, 160, 160),),
        sampling_rate=(6,),
        accuracy={"top1": 73.0, "top5": 90.6},
        num_parameters=3_794_322,
        notes="Samsung S8 latency: 764 ms fp32 (upstream's QNNPACK deploy form).",
    ),
}


def efficient_x3d_xs(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """EfficientX3d-XS (input 4×160×160); ``pretrained`` loads the Kinetics-400 weights, ``checkpoint_path`` a
    local file or URL instead. The checkpoints are raw state_dicts of the original (trainable) form."""
    return build_hub_model(create_x3d, metadata=metadata["efficient_x3d_xs"], pretrained=pretrained, progress=progress,
                           checkpoint_path=checkpoint_path, config={"expansion": "XS"}, kwargs=kwargs)  # fmt: skip


def efficient_x3d_s(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """EfficientX3d-S (input 13×160×160); ``pretrained`` loads the Kinetics-400 weights, ``checkpoint_path`` a
    local file or URL instead. The checkpoints are raw state_dicts of the original (trainable) form."""
    return build_hub_model(create_x3d, metadata=metadata["efficient_x3d_s"], pretrained=pretrained, progress=progress,
                           checkpoint_path=checkpoint_path, config={"expansion": "S"}, kwargs=kwargs)  # fmt: skip
