"""Augmentation ops behind RandAugment and AugMix (``pytorchvideo.transforms.augmentations`` API).

Layout: videos are ``T, C, H, W`` (a stack of RGB images, as upstream), or batches ``..., T, C, H, W``;
float in [0, 1] or uint8 in [0, 255]. Every op treats each frame as an image but applies the same
parameters to all frames. Thresholds and fill colours are given as fractions of the maximum value (1.0),
so they mean the same for float and uint8 videos.
"""
from typing import Any, Callable, Dict, Optional, Tuple

import torch

from . import _image_ops

# Maximum global magnitude used for video augmentation.
_AUGMENTATION_MAX_LEVEL = 10


def _check_fill_arg(kwargs: Dict[str, Any]) -> None:
    if "fill" not in kwargs:
        raise ValueError("this augmentation needs a 'fill' entry in transform_hparas")


def _fill_in_range(video: torch.Tensor, fill: Any) -> Any:
    """Scales a fill colour given as fractions of the maximum into the video's own value range."""
    bound = _image_ops.max_value(video.dtype)
    if isinstance(fill, (int, float)):
        return fill * bound
    return [value * bound for value in fill]


def _through_uint8(video: torch.Tensor, op: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Runs a uint8-only op on a float video by quantising it to 0-255 first, as upstream does."""
    if video.dtype == torch.uint8:
        return op(video)
    quantised = (video * 255).clamp(0, 255).to(torch.uint8)
    return (op(quantised) / 255).to(video.dtype)


def _autocontrast(video: torch.Tensor, **kwargs) -> torch.Tensor:
    """Stretches each channel of each frame to the full value range."""
    return _image_ops.autocontrast(video)


def _equalize(video: torch.Tensor, **kwargs) -> torch.Tensor:
    """Histogram-equalises each channel of each frame."""
    return _through_uint8(video, _image_ops.equalize)


def _invert(video: torch.Tensor, **kwargs) -> torch.Tensor:
    """Inverts the colours."""
    return _image_ops.invert(video)


def _rotate(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Rotates by ``factor`` degrees counter-clockwise (bilinear, uncovered corners take ``fill``)."""
    _check_fill_arg(kwargs)
    return _image_ops.rotate(video, factor, "bilinear", _fill_in_range(video, kwargs["fill"]))


def _solarize(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Inverts pixels at or above ``factor`` times the maximum value."""
    return _image_ops.solarize(video, factor * _image_ops.max_value(video.dtype))


def _adjust_contrast(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Contrast factor: 0 gives flat grey, 1 the original."""
    return _image_ops.adjust_contrast(video, factor)


def _adjust_saturation(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Saturation factor: 0 gives greyscale, 1 the original."""
    return _image_ops.adjust_saturation(video, factor)


def _adjust_brightness(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Brightness factor: 0 gives black, 1 the original."""
    return _image_ops.adjust_brightness(video, factor)


def _adjust_sharpness(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Sharpness factor: 0 blurs, 1 keeps, 2 sharpens."""
    return _image_ops.adjust_sharpness(video, factor)


def _posterize(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Keeps ``factor`` bits per channel."""
    if factor >= 8:
        return video
    return _through_uint8(video, lambda frames: _image_ops.posterize(frames, int(factor)))


def _shear_x(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Shears along x by ``factor`` (upstream's matrix, including its offset of H * factor / 2)."""
    _check_fill_arg(kwargs)
    offset = video.size(-2) * factor / 2
    return _image_ops.affine(video, [1, factor, offset, 0, 1, 0], "bilinear", _fill_in_range(video, kwargs["fill"]))


def _shear_y(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Shears along y by ``factor`` (upstream's matrix, including its offset of W * factor / 2)."""
    _check_fill_arg(kwargs)
    offset = video.size(-1) * factor / 2
    return _image_ops.affine(video, [1, 0, 0, factor, 1, offset], "bilinear", _fill_in_range(video, kwargs["fill"]))


def _translate_x(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Moves the content left by ``factor`` times the width (right for negative factors)."""
    _check_fill_arg(kwargs)
    offset = factor * video.size(-1)
    return _image_ops.affine(video, [1, 0, offset, 0, 1, 0], "bilinear", _fill_in_range(video, kwargs["fill"]))


def _translate_y(video: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    """Moves the content up by ``factor`` times the height (down for negative factors)."""
    _check_fill_arg(kwargs)
    offset = factor * video.size(-2)
    return _image_ops.affine(video, [1, 0, 0, 0, 1, offset], "bilinear", _fill_in_range(video, kwargs["fill"]))


def _randomly_negate(magnitude: float) -> float:
    """``magnitude`` or ``-magnitude`` with equal chance."""
    return magnitude if torch.rand(1).item() > 0.5 else -magnitude


def _increasing_magnitude_to_arg(level: float, params: Tuple[float, float]) -> Tuple[float]:
    """base + level / max_level * span, for ``params`` = (base, span)."""
    return (params[0] + level / _AUGMENTATION_MAX_LEVEL * params[1],)


def _increasing_randomly_negate_to_arg(level: float, params: Tuple[float, float]) -> Tuple[float]:
    """base +/- level / max_level * span, the sign drawn at random."""
    return (params[0] + _randomly_negate(level / _AUGMENTATION_MAX_LEVEL * params[1]),)


def _decreasing_int_to_arg(level: float, params: Tuple[int, int]) -> Tuple[int]:
    """base - int(level / max_level * span)."""
    return (params[0] - int(level / _AUGMENTATION_MAX_LEVEL * params[1]),)


def _decreasing_to_arg(level: float, params: Tuple[float, float]) -> Tuple[float]:
    """base - level / max_level * span."""
    return (params[0] - level / _AUGMENTATION_MAX_LEVEL * params[1],)


# transform name -> op
_NAME_TO_TRANSFORM_FUNC = {
    "AdjustBrightness": _adjust_brightness,
    "AdjustContrast": _adjust_contrast,
    "AdjustSaturation": _adjust_saturation,
    "AdjustSharpness": _adjust_sharpness,
    "AutoContrast": _autocontrast,
    "Equalize": _equalize,
    "Invert": _invert,
    "Rotate": _rotate,
    "Posterize": _posterize,
    "Solarize": _solarize,
    "ShearX": _shear_x,
    "ShearY": _shear_y,
    "TranslateX": _translate_x,
    "TranslateY": _translate_y,
}

# transform name -> function turning a magnitude into the op's arguments (None: the op takes none)
_LEVEL_TO_ARG = {
    "AdjustBrightness": _increasing_randomly_negate_to_arg,
    "AdjustContrast": _increasing_randomly_negate_to_arg,
    "AdjustSaturation": _increasing_randomly_negate_to_arg,
    "AdjustSharpness": _increasing_randomly_negate_to_arg,
    "AutoContrast": None,
    "Equalize": None,
    "Invert": None,
    "Rotate": _increasing_randomly_negate_to_arg,
    "Posterize": _decreasing_int_to_arg,
    "Solarize": _decreasing_to_arg,
    "ShearX": _increasing_randomly_negate_to_arg,
    "ShearY": _increasing_randomly_negate_to_arg,
    "TranslateX": _increasing_randomly_negate_to_arg,
    "TranslateY": _increasing_randomly_negate_to_arg,
}

# transform name -> (base, span) of its argument over the magnitude range
_TRANSFORM_MAX_PARAMS = {
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

# Hyperparameters for sampling the magnitude: "sampling_data_type" ("int" or "float") and "sampling_min"
# shape uniform sampling; "sampling_std" is the spread of gaussian sampling.
SAMPLING_DEFAULT_HPARAS = {"sampling_data_type": "int", "sampling_min": 0, "sampling_std": 0.5}

# Hyperparameters for the ops: "fill" is the colour of uncovered pixels, as fractions of the maximum value.
TRANSFORM_DEFAULT_HPARAS = {"fill": (0.5, 0.5, 0.5)}


class AugmentTransform:
    """One named augmentation whose strength is drawn around (gaussian) or below (uniform) ``magnitude``.

    Applied with probability ``prob``. Layout: ``[..., T, C, H, W]``. Randomness comes from the global torch RNG.
    """

    def __init__(
        self,
        transform_name: str,
        magnitude: int = 10,
        prob: float = 0.5,
        name_to_transform_func: Optional[Dict[str, Callable]] = None,
        level_to_arg: Optional[Dict[str, Callable]] = None,
        transform_max_paras: Optional[Dict[str, Tuple]] = None,
        transform_hparas: Optional[Dict[str, Any]] = None,
        sampling_type: str = "gaussian",
        sampling_hparas: Optional[Dict[str, Any]] = None,
    ) -> None:
        if sampling_type not in ("gaussian", "uniform"):
            raise ValueError(f"sampling_type must be 'gaussian' or 'uniform', got {sampling_type!r}")
        name_to_transform_func = name_to_transform_func or _NAME_TO_TRANSFORM_FUNC
        level_to_arg = level_to_arg or _LEVEL_TO_ARG
        transform_max_paras = transform_max_paras or _TRANSFORM_MAX_PARAMS
        if transform_name not in name_to_transform_func:
            raise ValueError(f"unknown transform {transform_name!r}; known: {sorted(name_to_transform_func)}")
        self.transform_hparas = transform_hparas or TRANSFORM_DEFAULT_HPARAS
        self.sampling_hparas = {**SAMPLING_DEFAULT_HPARAS, **(sampling_hparas or {})}
        if "fill" not in self.transform_hparas:
            raise ValueError("transform_hparas needs a 'fill' entry")
        if self.sampling_hparas["sampling_data_type"] not in ("int", "float"):
            raise ValueError("sampling_hparas['sampling_data_type'] must be 'int' or 'float'")
        self.max_level = _AUGMENTATION_MAX_LEVEL
        self.transform_name = transform_name
        self.magnitude = magnitude
        self.transform_fn = name_to_transform_func[transform_name]
        self.level_fn = level_to_arg[transform_name]
        self.level_paras = transform_max_paras[transform_name]
        self.prob = prob
        self.sampling_type = sampling_type

    def _get_magnitude(self) -> float:
        """Gaussian around ``magnitude`` clamped to [0, max_level], or uniform in [sampling_min, magnitude]."""
        if self.sampling_type == "gaussian":
            drawn = torch.normal(float(self.magnitude), float(self.sampling_hparas["sampling_std"]), size=(1,))
            return max(0.0, min(float(self.max_level), drawn.item()))
        low = self.sampling_hparas["sampling_min"]
        if self.sampling_hparas["sampling_data_type"] == "int":
            return torch.randint(int(low), int(self.magnitude) + 1, size=(1,)).item()
        return low + torch.rand(1).item() * (self.magnitude - low)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Augments a ``[..., T, C, H, W]`` video (or returns it unchanged with probability 1 - prob)."""
        _image_ops.check_image(video)
        if torch.rand(1).item() > self.prob:
            return video
        magnitude = self._get_magnitude()
        level_args = self.level_fn(magnitude, self.level_paras) if self.level_fn is not None else ()
        return self.transform_fn(video, *level_args, **self.transform_hparas)
