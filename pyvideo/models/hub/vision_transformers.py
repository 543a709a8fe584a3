"""Hub builders for MViT-B (Kinetics-400 video models and the ImageNet image model)."""
import os
from typing import Any, Dict, Optional

import torch.nn as nn

from pyvideo.models.vision_transformers import create_multiscale_vision_transformers

from .utils import MODEL_ZOO_ROOT, ModelMetadata, load_checkpoint

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

_CONFIGS = {
    "mvit_base_16x4": mvit_video_base_config,
    "mvit_base_32x3": mvit_video_base_32x3_config,
    "mvit_base_16": mvit_image_base_16_config,
}

# Published results (PyTorchVideo model zoo: Kinetics-400, 1x5 views).
MODEL_METADATA_VIT: Dict[str, ModelMetadata] = {
    "mvit_base_16x4": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/MVIT_B_16x4.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 16, 224, 224),),
        sampling_rate=(4,),
        accuracy={"top1": 78.85, "top5": 93.85},
        num_parameters=36_610_672,
        gflops=70.80,
        notes="1x5 views",
    ),
    "mvit_base_32x3": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/MVIT_B_32x3_f294077834.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 32, 224, 224),),
        sampling_rate=(3,),
        accuracy={"top1": 80.30, "top5": 94.69},
        num_parameters=36_611_440,
        gflops=170.37,
        notes="1x5 views",
    ),
    "mvit_base_16": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/imagenet/MVIT_B_16_f292487636.pyth",
        dataset="ImageNet-1k",
        num_classes=400,
        input_shape=((3, 224, 224),),
        sampling_rate=(),
        accuracy={},
        num_parameters=36_521_296,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        notes=(
            "image model: input (B, 3, H, W). The zoo publishes no metrics for this file, and upstream's config "
            "keeps the default 400-way head, so this builder does too."
        ),
    ),
}


# upstream's module-level name for the checkpoint URLs
checkpoint_paths = {name: meta.checkpoint_url for name, meta in MODEL_METADATA_VIT.items()}


def _build(name: str, pretrained: bool, progress: bool, checkpoint_path: Optional[str], **kwargs: Any) -> nn.Module:
    """Upstream's rule: the default config fills every argument that is missing or None, and weights may
    only be loaded into the unmodified architecture. checkpoint_path (file or URL) wins over pretrained."""
    if (pretrained or checkpoint_path is not None) and kwargs:
        raise ValueError(f"Do not change the model configuration ({sorted(kwargs)}) when loading weights.")
    config = dict(kwargs)
    for argument, value in _CONFIGS[name].items():
        if config.get(argument) is None:
            config[argument] = value
    model = create_multiscale_vision_transformers(**config)
    if checkpoint_path is not None:
        load_checkpoint(model, os.fspath(checkpoint_path), progress)
    elif pretrained:
        load_checkpoint(model, MODEL_METADATA_VIT[name].checkpoint_url, progress)
    return model


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
