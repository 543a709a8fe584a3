"""Hub builders for EfficientX3d (X3D of efficient blocks), with Kinetics-400 checkpoints in original form."""
from typing import Any, Optional

import torch
import torch.nn as nn

from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

_CHECKPOINT_ROOT = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics"

# Published Kinetics-400 results (PyTorchVideo model zoo; latency on a Samsung S8, 1-s clips, one thread).
metadata = {
    "efficient_x3d_xs": {
        "url": f"{_CHECKPOINT_ROOT}/efficient_x3d_xs_original_form.pyth",
        "input_size": (3, 4, 160, 160),
        "mean": (0.45, 0.45, 0.45),
        "std": (0.225, 0.225, 0.225),
        "num_classes": 400,
        "top1": 68.5,
        "top5": 88.0,
        "int8_top1": 66.9,
        "int8_top5": 87.2,
        "latency_ms_s8": 233,
        "params_m": 3.8,
    },
    "efficient_x3d_s": {
        "url": f"{_CHECKPOINT_ROOT}/efficient_x3d_s_original_form.pyth",
        "input_size": (3, 13, 160, 160),
        "mean": (0.45, 0.45, 0.45),
        "std": (0.225, 0.225, 0.225),
        "num_classes": 400,
        "top1": 73.0,
        "top5": 90.6,
        "latency_ms_s8": 764,
        "params_m": 3.8,
    },
}


def _build(name: str, expansion: str, pretrained: bool, progress: bool, checkpoint_path: Optional[str], **kwargs):
    model = create_x3d(expansion=expansion, **kwargs)
    if checkpoint_path is not None:
        state_dict = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    elif pretrained:
        state_dict = torch.hub.load_state_dict_from_url(
            metadata[name]["url"], progress=progress, map_location="cpu", weights_only=True
        )
    else:
        return model
    # The zoo files are raw state_dicts; accept the {"model_state": ...} wrapping of the other checkpoints too.
    if isinstance(state_dict, dict) and "model_state" in state_dict:
        state_dict = state_dict["model_state"]
    model.load_state_dict(state_dict, strict=True)
    return model


def efficient_x3d_xs(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """EfficientX3d-XS (input 4×160×160); ``pretrained`` loads the Kinetics-400 weights, ``checkpoint_path`` a local file."""
    return _build("efficient_x3d_xs", "XS", pretrained, progress, checkpoint_path, **kwargs)


def efficient_x3d_s(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """EfficientX3d-S (input 13×160×160); ``pretrained`` loads the Kinetics-400 weights, ``checkpoint_path`` a local file."""
    return _build("efficient_x3d_s", "S", pretrained, progress, checkpoint_path, **kwargs)
