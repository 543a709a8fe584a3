"""Hub builder for ir-CSN-101 (Kinetics-400)."""
from typing import Any, Optional

import torch.nn as nn

from pyvideo.models.csn import create_csn
from pyvideo.models.hub.utils import MODEL_ZOO_ROOT, ModelMetadata, build_hub_model

METADATA = {
    "csn_r101": ModelMetadata(
        checkpoint_url=f"{MODEL_ZOO_ROOT}/kinetics/CSN_32x2_R101.pyth",
        dataset="Kinetics-400",
        num_classes=400,
        input_shape=((3, 32, 224, 224),),
        sampling_rate=(2,),
        accuracy={"top1": 77.00, "top5": 92.90},
        num_parameters=22_213_776,
        gflops=75.62,
    ),
}

_CONFIG = dict(model_depth=101, stem_pool=nn.MaxPool3d, head_pool_kernel_size=(4, 7, 7))


def csn_r101(
    pretrained: bool = False, progress: bool = True, checkpoint_path: Optional[str] = None, **kwargs: Any
) -> nn.Module:
    """ir-CSN R101 32x2 on Kinetics-400 (77.00 top-1). Input (B, 3, 32, 224, 224)."""
    return build_hub_model(
        create_csn,
        metadata=METADATA["csn_r101"],
        pretrained=pretrained,
        progress=progress,
        checkpoint_path=checkpoint_path,
        config=_CONFIG,
        kwargs=kwargs,
    )


csn_r101.metadata = METADATA["csn_r101"]
