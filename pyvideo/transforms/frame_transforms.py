"""Torch-only versions of the torchvision transforms PyTorchVideo pipelines combined with its own: Compose, Lambda,
CenterCrop, RandomCrop, RandomHorizontalFlip, ColorJitter and GaussianBlur.

Layout: ``[..., C, T, H, W]`` clips and batches (the crops and the flip only touch the last two dims); CPU or GPU.
Random transforms draw their parameters once per call (shared by every frame and, for a batch, every clip) from
``generator`` when given, else from the global torch RNG.
"""
import numbers
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import torch

from . import _image_ops
from . import functional as F_video
from .functional import _rand, _randint

_Size = Union[int, Tuple[int, int]]


def _pair(size: _Size, name: str = "size") -> Tuple[int, int]:
    """An int or (h, w) sequence as an (h, w) tuple of positive ints."""
    if isinstance(size, numbers.Integral):
        size = (int(size), int(size))
    elif isinstance(size, Sequence) and len(size) == 1:
        size = (int(size[0]), int(size[0]))
    elif isinstance(size, Sequence) and len(size) == 2:
        size = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"{name} must be an int or an (h, w) pair, got {size!r}")
    if min(size) <= 0:
        raise ValueError(f"{name} must be positive, got {size}")
    return size


class Compose:
    """Applies callables in order (torch-only stand-in for ``torchvision.transforms.Compose``)."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)
        for transform in self.transforms:
            if not callable(transform):
                raise TypeError(f"Compose needs callables, got {type(transform).__name__}")

    def __call__(self, x: Any) -> Any:
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"


class Lambda:
    """Wraps a function as a transform (torch-only stand-in for ``torchvision.transforms.Lambda``)."""

    def __init__(self, lambd: Callable):
        if not callable(lambd):
            raise TypeError(f"Lambda needs a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, x: Any) -> Any:
        return self.lambd(x)


class CenterCropVideo(torch.nn.Module):
    """Crops the centre ``size`` (int or (h, w)) of every frame, as torchvision's ``CenterCrop``.

    Layout ``[..., H, W]`` (so C,T,H,W clips and batches alike); the offset is ``round((H - h) / 2)``.
    """

    def __init__(self, size: _Size):
        super().__init__()
        self.size = _pair(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        crop_h, crop_w = self.size
        F_video._check_crop_fits(height, width, crop_h, crop_w)
        top = int(round((height - crop_h) / 2.0))
        left = int(round((width - crop_w) / 2.0))
        return x[..., top:top + crop_h, left:left + crop_w]


class RandomCropVideo(torch.nn.Module):
    """Crops a random ``size`` (int or (h, w)) window, the same for all frames, as torchvision's ``RandomCrop``.

    Layout ``[..., H, W]``; offsets are uniform in [0, H - h] and [0, W - w].
    """

    def __init__(self, size: _Size, *, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.size = _pair(size)
        self._generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        crop_h, crop_w = self.size
        F_video._check_crop_fits(height, width, crop_h, crop_w)
        top = _randint(0, height - crop_h, self._generator)
        left = _randint(0, width - crop_w, self._generator)
        return x[..., top:top + crop_h, left:left + crop_w]


class RandomHorizontalFlipVideo(torch.nn.Module):
    """Flips every frame left-right with probability ``p`` (layout ``[..., H, W]``)."""

    def __init__(self, p: float = 0.5, *, generator: Optional[torch.Generator] = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p
        self._generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1) if _rand(self._generator) < self.p else x


def _uniform(low: float, high: float, generator: Optional[torch.Generator]) -> float:
    return low + (high - low) * _rand(generator)


def _jitter_range(value: Union[float, Tuple[float, float]], name: str, center: float,
                  bounds: Tuple[float, float]) -> Optional[Tuple[float, float]]:
    """torchvision's ColorJitter rule: a number v means [center - v, center + v]; a pair is used as given."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
        value = (max(center - value, bounds[0]), center + value)
    elif not (isinstance(value, Sequence) and len(value) == 2):
        raise TypeError(f"{name} must be a number or a (min, max) pair, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not bounds[0] <= low <= high <= bounds[1]:
        raise ValueError(f"{name} range must satisfy {bounds[0]} <= min <= max <= {bounds[1]}, got {value}")
    return None if low == high == center else (low, high)


class ColorJitter(torch.nn.Module):
    """Random brightness, contrast, saturation and hue changes, in random order, equal for all frames of a clip.

    Arguments follow ``torchvision.transforms.ColorJitter``: brightness / contrast / saturation b give a factor
    uniform in [max(0, 1 - b), 1 + b] (or a given (min, max)); hue h gives a shift uniform in [-h, h], h <= 0.5.
    Layout: ``[..., C, T, H, W]`` RGB, float in [0, 1] or uint8. Contrast uses each frame's mean grey level,
    as torchvision does for each image.
    """

    def __init__(self, brightness: Union[float, Tuple[float, float]] = 0,
                 contrast: Union[float, Tuple[float, float]] = 0,
                 saturation: Union[float, Tuple[float, float]] = 0,
                 hue: Union[float, Tuple[float, float]] = 0, *, generator: Optional[torch.Generator] = None):
        super().__init__()
        unbounded = (0.0, float("inf"))
        self.brightness = _jitter_range(brightness, "brightness", 1.0, unbounded)
        self.contrast = _jitter_range(contrast, "contrast", 1.0, unbounded)
        self.saturation = _jitter_range(saturation, "saturation", 1.0, unbounded)
        self.hue = _jitter_range(hue, "hue", 0.0, (-0.5, 0.5))
        self._generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        F_video._check_clip(x)
        _image_ops.check_image(x)
        ops = ((self.brightness, _image_ops.adjust_brightness), (self.contrast, _image_ops.adjust_contrast),
               (self.saturation, _image_ops.adjust_saturation), (self.hue, _image_ops.adjust_hue))
        frames = _image_ops.channels_third_last(x)
        for index in torch.randperm(len(ops), generator=self._generator).tolist():
            factor_range, op = ops[index]
            if factor_range is not None:
                frames = op(frames, _uniform(*factor_range, self._generator))
        return _image_ops.channels_third_last(frames)


class GaussianBlur(torch.nn.Module):
    """Gaussian blur of every frame, with reflect padding, as ``torchvision.transforms.GaussianBlur``.

    ``kernel_size``: odd int or (kx, ky). ``sigma``: a fixed value or a (min, max) range drawn uniformly per
    call. Layout: ``[..., C, T, H, W]``, float or uint8.
    """

    def __init__(self, kernel_size: Union[int, Tuple[int, int]], sigma: Union[float, Tuple[float, float]] = (0.1, 2.0),
                 *, generator: Optional[torch.Generator] = None):
        super().__init__()
        kernel = (kernel_size, kernel_size) if isinstance(kernel_size, numbers.Integral) else tuple(kernel_size)
        if len(kernel) != 2 or any(int(k) <= 0 or int(k) % 2 == 0 for k in kernel):
            raise ValueError(f"kernel_size must be a positive odd int or a pair of them, got {kernel_size!r}")
        sigma_range = (sigma, sigma) if isinstance(sigma, numbers.Number) else tuple(sigma)
        if len(sigma_range) != 2 or not 0 < sigma_range[0] <= sigma_range[1]:
            raise ValueError(f"sigma must be positive, or a (min, max) range with 0 < min <= max, got {sigma!r}")
        self.kernel_size = (int(kernel[0]), int(kernel[1]))
        self.sigma = (float(sigma_range[0]), float(sigma_range[1]))
        self._generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        F_video._check_clip(x)
        _image_ops.check_image(x)
        sigma = _uniform(*self.sigma, self._generator)
        frames = _image_ops.channels_third_last(x)
        blurred = _image_ops.gaussian_blur(frames, self.kernel_size, (sigma, sigma))
        return _image_ops.channels_third_last(blurred)
