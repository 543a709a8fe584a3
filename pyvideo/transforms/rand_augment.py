"""RandAugment for video (``pytorchvideo.transforms.rand_augment`` API)."""
from typing import Any, Dict, Optional

import torch

from .augmentations import _TRANSFORM_MAX_PARAMS, AugmentTransform
from .transforms import OpSampler

# RandAugment uses the same argument ranges as the shared augmentation table (as upstream's copy did)
_TRANSFORM_RANDAUG_MAX_PARAMS = dict(_TRANSFORM_MAX_PARAMS)

# "sampling_data_type"/"sampling_min" shape uniform sampling; "sampling_std" is the gaussian spread.
SAMPLING_RANDAUG_DEFAULT_HPARAS = {"sampling_data_type": "int", "sampling_min": 0, "sampling_std": 0.5}


class RandAugment:
    """RandAugment (https://arxiv.org/abs/1909.13719) for video: ``num_layers`` distinct ops drawn per call,
    each applied with probability ``prob`` at a strength sampled around ``magnitude``.

    Layout: ``[..., T, C, H, W]`` (as upstream), float in [0, 1] or uint8. The same op and strength apply to
    every frame. Randomness comes from the global torch RNG (``torch.manual_seed`` makes it reproducible).
    """

    def __init__(
        self,
        magnitude: int = 9,
        num_layers: int = 2,
        prob: float = 0.5,
        transform_hparas: Optional[Dict[str, Any]] = None,
        sampling_type: str = "gaussian",
        sampling_hparas: Optional[Dict[str, Any]] = None,
    ) -> None:
        sampling_hparas = sampling_hparas or SAMPLING_RANDAUG_DEFAULT_HPARAS
        if sampling_type == "gaussian" and "sampling_std" not in sampling_hparas:
            raise ValueError("gaussian sampling needs 'sampling_std' in sampling_hparas")
        ops = [
            AugmentTransform(name, magnitude, prob=prob, transform_max_paras=_TRANSFORM_RANDAUG_MAX_PARAMS,
                             transform_hparas=transform_hparas, sampling_type=sampling_type,
                             sampling_hparas=sampling_hparas)
            for name in _TRANSFORM_RANDAUG_MAX_PARAMS
        ]
        self.randaug_fn = OpSampler(ops, num_sample_op=num_layers)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Augments a ``[..., T, C, H, W]`` video."""
        return self.randaug_fn(video)
