"""Hub builder for R(2+1)D-50 (Kinetics-400)."""
from typing import Any, Optional

import torch.nn as nn

from pyvideo.models.hub.utils import MODEL_ZOO_ROOT, ModelMetadata, build_hub_model
from pyvideo.models.r2plus1d import create_r2plus1d

METADATA = {
    "r2plus1d_r50": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/R2PLUS1D_16x4_R50.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 16, 224, 224),),
        sampling_rate=(4,),
        accuracy={"top1": 76.01, "top5": 92.23},
        num_parameters=28_107_600,
        gflops=76.45,
        notes="The default head applies Softmax (as upstream), in training too.",
    ),
}

_CONFIG = dict(dropout_rate=0.5)


def r2plus1d_r50(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """R(2+1)D R50 16x4 on Kinetics-400 (76.01 top-1). Input (B, 3, 16, 224, 224); outputs probabilities."""
    return build_hub_model(
        create_r2plus1d,
        metadata=METADATA["r2plus1d_r50"],
        pretrained=pretrained,
        progress=progress,
        checkpoint_path=checkpoint_path,
        config=_CONFIG,
        kwargs=kwargs,
    )


r2plus1d_r50.metadata = METADATA["r2plus1d_r50"]
