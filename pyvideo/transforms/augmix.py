"""AugMix for video (``pytorchvideo.transforms.augmix`` API)."""
from typing import Any, Dict, Optional

import torch

from . import _image_ops
from .augmentations import (
    _AUGMENTATION_MAX_LEVEL,
    AugmentTransform,
    _decreasing_int_to_arg,
    _decreasing_to_arg,
    _increasing_magnitude_to_arg,
    _increasing_randomly_negate_to_arg,
)
from .transforms import OpSampler

_AUGMIX_LEVEL_TO_ARG = {
    "AutoContrast": None,
    "Equalize": None,
    "Rotate": _increasing_randomly_negate_to_arg,
    "Posterize": _decreasing_int_to_arg,
    "Solarize": _decreasing_to_arg,
    "ShearX": _increasing_randomly_negate_to_arg,
    "ShearY": _increasing_randomly_negate_to_arg,
    "TranslateX": _increasing_randomly_negate_to_arg,
    "TranslateY": _increasing_randomly_negate_to_arg,
    "AdjustSaturation": _increasing_magnitude_to_arg,
    "AdjustContrast": _increasing_magnitude_to_arg,
    "AdjustBrightness": _increasing_magnitude_to_arg,
    "AdjustSharpness": _increasing_magnitude_to_arg,
}

_TRANSFORM_AUGMIX_MAX_PARAMS = {
    "AutoContrast": None,
    "Equalize": None,
    "Rotate": (0, 30),
    "Posterize": (4, 4),
    "Solarize": (1, 1),
    "ShearX": (0, 0.3),
    "ShearY": (0, 0.3),
    "TranslateX": (0, 1.0 / 3.0),
    "TranslateY": (0, 1.0 / 3.0),
    "AdjustSaturation": (0.1, 1.8),
    "AdjustContrast": (0.1, 1.8),
    "AdjustBrightness": (0.1, 1.8),
    "AdjustSharpness": (0.1, 1.8),
}

# Strengths are drawn uniformly among floats in [sampling_min, magnitude].
SAMPLING_AUGMIX_DEFAULT_HPARAS = {"sampling_data_type": "float", "sampling_min": 0.1}


class AugMix:
    """AugMix (https://arxiv.org/abs/1912.02781) for video: ``width`` chains of ``depth`` random ops (1-3 when
    ``depth`` is -1), mixed with Dirichlet(alpha) weights and then with the original by a Beta(alpha, alpha) weight.

    Layout: ``[..., T, C, H, W]`` (as upstream), float in [0, 1] or uint8 (the result keeps the input dtype,
    rounded for uint8). Works on any device. Randomness comes from the global torch RNG.
    """

    def __init__(
        self,
        magnitude: int = 3,
        alpha: float = 1.0,
        width: int = 3,
        depth: int = -1,
        transform_hparas: Optional[Dict[str, Any]] = None,
        sampling_hparas: Optional[Dict[str, Any]] = None,
    ) -> None:
        if not isinstance(magnitude, int) or not 1 <= magnitude <= _AUGMENTATION_MAX_LEVEL:
            raise ValueError(f"magnitude must be an int in [1, {_AUGMENTATION_MAX_LEVEL}], got {magnitude!r}")
        if alpha <= 0.0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self._magnitude = magnitude
        self.dirichlet = torch.distributions.Dirichlet(torch.full((width,), float(alpha)))
        self.beta = torch.distributions.Beta(float(alpha), float(alpha))
        ops = [
            AugmentTransform(name, magnitude=magnitude, prob=1.0, level_to_arg=_AUGMIX_LEVEL_TO_ARG,
                             transform_max_paras=_TRANSFORM_AUGMIX_MAX_PARAMS, transform_hparas=transform_hparas,
                             sampling_type="uniform", sampling_hparas=sampling_hparas or SAMPLING_AUGMIX_DEFAULT_HPARAS)
            for name in _TRANSFORM_AUGMIX_MAX_PARAMS
        ]
        if depth > 0:
            self.augmix_fn = OpSampler(ops, num_sample_op=depth, replacement=True)
        else:
            self.augmix_fn = OpSampler(ops, num_sample_op=3, randomly_sample_depth=True, replacement=True)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Augments a ``[..., T, C, H, W]`` video."""
        _image_ops.check_image(video)
        mixing_weights = self.dirichlet.sample().tolist()
        original_weight = self.beta.sample().item()
        mixed = torch.zeros_like(_image_ops.to_float(video))
        for weight in mixing_weights:
            mixed += weight * _image_ops.to_float(self.augmix_fn(video))
        result = original_weight * _image_ops.to_float(video) + (1.0 - original_weight) * mixed
        return _image_ops.cast_like(result, video.dtype)
