"""Hub builders for X3D-XS/S/M/L (Kinetics-400)."""
from typing import Any, Optional

import torch.nn as nn

from pyvideo.models.hub.utils import MODEL_ZOO_ROOT, ModelMetadata, build_hub_model
from pyvideo.models.x3d import create_x3d


def _x3d_metadata(file_name, frames, crop, rate, top1, top5, params, gflops) -> ModelMetadata:
    return ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/{file_name}",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, frames, crop, crop),),
        sampling_rate=(rate,),
        accuracy={"top1": top1, "top5": top5},
        num_parameters=params,
        gflops=gflops,
    )


METADATA = {
    "x3d_xs": _x3d_metadata("X3D_XS.pyth", 4, 160, 12, 69.12, 88.63, 3_794_274, 0.91),
    "x3d_s": _x3d_metadata("X3D_S.pyth", 13, 160, 6, 73.33, 91.27, 3_794_274, 2.96),
    "x3d_m": _x3d_metadata("X3D_M.pyth", 16, 224, 5, 75.94, 92.72, 3_794_274, 6.72),
    "x3d_l": _x3d_metadata("X3D_L.pyth", 16, 312, 5, 77.44, 93.31, 6_153_384, 26.64),
}

_CONFIGS = {
    "x3d_xs": dict(input_clip_length=4, input_crop_size=160),
    "x3d_s": dict(input_clip_length=13, input_crop_size=160),
    "x3d_m": dict(input_clip_length=16, input_crop_size=224),
    "x3d_l": dict(input_clip_length=16, input_crop_size=312, depth_factor=5.0),
}


def _build(name: str, pretrained: bool, progress: bool, checkpoint_path: Optional[str], kwargs) -> nn.Module:
    return build_hub_model(
        create_x3d,
        metadata=METADATA[name],
        pretrained=pretrained,
        progress=progress,
        checkpoint_path=checkpoint_path,
        config=_CONFIGS[name],
        kwargs=kwargs,
    )


def x3d_xs(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """X3D-XS on Kinetics-400 (69.12 top-1). Input (B, 3, 4, 160, 160), frames 12 apart."""
    return _build("x3d_xs", pretrained, progress, checkpoint_path, kwargs)


def x3d_s(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """X3D-S on Kinetics-400 (73.33 top-1). Input (B, 3, 13, 160, 160), frames 6 apart."""
    return _build("x3d_s", pretrained, progress, checkpoint_path, kwargs)


def x3d_m(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """X3D-M on Kinetics-400 (75.94 top-1). Input (B, 3, 16, 224, 224), frames 5 apart."""
    return _build("x3d_m", pretrained, progress, checkpoint_path, kwargs)


def x3d_l(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """X3D-L on Kinetics-400 (77.44 top-1). Input (B, 3, 16, 312, 312), frames 5 apart."""
    return _build("x3d_l", pretrained, progress, checkpoint_path, kwargs)


for _name, _metadata in METADATA.items():
    globals()[_name].metadata = _metadata
