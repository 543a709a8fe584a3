"""Hub builders for MViT-B (Kinetics-400 video models and the ImageNet image model)."""
from typing import Any, Dict, Optional

import torch
import torch.nn as nn

from pyvideo.models.vision_transformers import create_multiscale_vision_transformers

_MODEL_ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"

_MVIT_B_SCHEDULE = {
    "embed_dim_mul": [[1, 2.0], [3, 2.0], [14, 2.0]],
    "atten_head_mul": [[1, 2.0], [3, 2.0], [14, 2.0]],
    "pool_q_stride_size": [[1, 1, 2, 2], [3, 1, 2, 2], [14, 1, 2, 2]],
}

mvit_video_base_config = {
    "spatial_size": 224,
    "temporal_size": 16,
    **_MVIT_B_SCHEDULE,
    "pool_kv_stride_adaptive": [1, 8, 8],
    "pool_kvq_kernel": [3, 3, 3],
}

mvit_video_base_32x3_config = {**mvit_video_base_config, "temporal_size": 32}

mvit_image_base_16_config = {
    "spatial_size": 224,
    "temporal_size": 1,
    "depth": 16,
    "conv_patch_embed_kernel": [7, 7],
    "conv_patch_embed_stride": [4, 4],
    "conv_patch_embed_padding": [3, 3],
    "use_2d_patch": True,
    **_MVIT_B_SCHEDULE,
    "pool_kv_stride_adaptive": [1, 4, 4],
    "pool_kvq_kernel": [1, 3, 3],
}

_KINETICS_MEAN, _KINETICS_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)

# Published results (PyTorchVideo model zoo). input_size is (C, T, H, W), or (C, H, W) for the image model.
MODEL_METADATA_VIT: Dict[str, Dict[str, Any]] = {
    "mvit_base_16x4": {
        "url": f"{_MODEL_ZOO}/kinetics/MVIT_B_16x4.pyth",
        "config": mvit_video_base_config,
        "dataset": "Kinetics-400",
        "input_size": (3, 16, 224, 224),
        "sampling_rate": 4,
        "mean": _KINETICS_MEAN,
        "std": _KINETICS_STD,
        "num_classes": 400,
        "top1": 78.85,
        "top5": 93.85,
        "gflops": 70.80,
        "views": "1x5",
        "params_m": 36.61,
    },
    "mvit_base_32x3": {
        "url": f"{_MODEL_ZOO}/kinetics/MVIT_B_32x3_f294077834.pyth",
        "config": mvit_video_base_32x3_config,
        "dataset": "Kinetics-400",
        "input_size": (3, 32, 224, 224),
        "sampling_rate": 3,
        "mean": _KINETICS_MEAN,
        "std": _KINETICS_STD,
        "num_classes": 400,
        "top1": 80.30,
        "top5": 94.69,
        "gflops": 170.37,
        "views": "1x5",
        "params_m": 36.61,
    },
    "mvit_base_16": {
        "url": f"{_MODEL_ZOO}/imagenet/MVIT_B_16_f292487636.pyth",
        "config": mvit_image_base_16_config,
        "dataset": "ImageNet-1k",
        "input_size": (3, 224, 224),
        "sampling_rate": None,
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        # the builder keeps the default 400-way head, as upstream's config does; the zoo publishes no metrics
        "num_classes": 400,
        "top1": None,
        "top5": None,
        "gflops": None,
        "views": None,
        "params_m": 36.52,
    },
}


def _load_checkpoint(model: nn.Module, url: str, pretrained: bool, progress: bool, checkpoint_path: Optional[str]):
    """Strictly loads a local file (checkpoint_path) or the zoo file (pretrained), either wrapped as
    {"model_state": state_dict} like the zoo files or a raw state_dict."""
    if checkpoint_path is not None:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    elif pretrained:
        checkpoint = torch.hub.load_state_dict_from_url(url, progress=progress, map_location="cpu", weights_only=True)
    else:
        return model
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint must be a state_dict or {{'model_state': state_dict}}, got {type(checkpoint).__name__}")
    state_dict = checkpoint.get("model_state", checkpoint)
    model.load_state_dict(state_dict, strict=True)
    return model


def _build(name: str, pretrained: bool, progress: bool, checkpoint_path: Optional[str], **kwargs: Any) -> nn.Module:
    if (pretrained or checkpoint_path is not None) and kwargs:
        raise ValueError(f"Do not change the model configuration ({sorted(kwargs)}) when loading weights.")
    meta = MODEL_METADATA_VIT[name]
    config = dict(kwargs)
    for argument, value in meta["config"].items():
        if config.get(argument) is None:
            config[argument] = value
    model = create_multiscale_vision_transformers(**config)
    return _load_checkpoint(model, meta["url"], pretrained, progress, checkpoint_path)


def mvit_base_16x4(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """MViT-B 16x4 (16 frames, sampling rate 4, 224x224), Kinetics-400 top-1 78.85%.

    pretrained downloads the zoo weights (torch hub cache, progress bar if ``progress``); checkpoint_path
    loads a local file instead. kwargs override create_multiscale_vision_transformers arguments (only
    without weights).
    """
    return _build("mvit_base_16x4", pretrained, progress, checkpoint_path, **kwargs)


def mvit_base_32x3(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """MViT-B 32x3 (32 frames, sampling rate 3, 224x224), Kinetics-400 top-1 80.30%. Arguments as mvit_base_16x4."""
    return _build("mvit_base_32x3", pretrained, progress, checkpoint_path, **kwargs)


def mvit_base_16(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """Image MViT-B, depth 16, ImageNet weights; input (B, 3, 224, 224). Arguments as mvit_base_16x4."""
    return _build("mvit_base_16", pretrained, progress, checkpoint_path, **kwargs)
