"""RandAugment for video (``pytorchvideo.transforms.rand_augment`` API)."""
from typing import Any, Dict, Optional

import torch

from .augmentations import AugmentTransform
from .transforms import OpSampler

# transform name -> (base, span) of its argument over the magnitude range
_TRANSFORM_RANDAUG_MAX_PARAMS = {
    "AdjustBrightness": (1, 0.9),
    "AdjustContrast": (1, 0.9),
    "AdjustSaturation": (1, 0.9),
    "AdjustSharpness": (1, 0.9),
    "AutoContrast": None,
    "Equalize": None,
    "Invert": None,
    "Rotate": (0, 30),
    "Posterize": (4, 4),
    "Solarize": (1, 1),
    "ShearX": (0, 0.3),
    "ShearY": (0, 0.3),
    "TranslateX": (0, 0.45),
    "TranslateY": (0, 0.45),
}

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
