"""Video transform classes (``pytorchvideo.transforms.transforms`` API) and torch-only replacements for the
torchvision transforms PyTorchVideo pipelines used alongside (Compose, Lambda, CenterCrop, RandomCrop,
RandomHorizontalFlip, ColorJitter, GaussianBlur).

Layout: unless a docstring says otherwise, tensors are clips ``C, T, H, W`` or batches with leading dims
``..., C, T, H, W``; every transform works on CPU and GPU tensors. Random transforms draw their parameters
once per call (shared by every frame and, for a batch, every clip) from ``generator`` when given, else from
the global torch RNG.
"""
import numbers
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

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


class ApplyTransformToKey:
    """Applies ``transform`` to ``x[key]`` of a dict and returns the dict.

    Example:
        >>> ApplyTransformToKey(key="video", transform=UniformTemporalSubsample(8))
    """

    def __init__(self, key: str, transform: Callable):
        self._key = key
        self._transform = transform

    def __call__(self, x: Dict[str, Any]) -> Dict[str, Any]:
        if self._key not in x:
            raise KeyError(f"ApplyTransformToKey: key {self._key!r} not in the sample (keys: {list(x)})")
        x[self._key] = self._transform(x[self._key])
        return x


class RemoveKey(torch.nn.Module):
    """Removes ``key`` from a dict if present (e.g. a modality the model does not use)."""

    def __init__(self, key: str):
        super().__init__()
        self._key = key

    def forward(self, x: Dict[str, Any]) -> Dict[str, Any]:
        x.pop(self._key, None)
        return x


class UniformTemporalSubsample(torch.nn.Module):
    """Wrapper for ``functional.uniform_temporal_subsample`` (layout: T at ``temporal_dim``, default -3)."""

    def __init__(self, num_samples: int, temporal_dim: int = -3):
        super().__init__()
        self._num_samples = num_samples
        self._temporal_dim = temporal_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F_video.uniform_temporal_subsample(x, self._num_samples, self._temporal_dim)


class UniformTemporalSubsampleRepeated(torch.nn.Module):
    """Wrapper for ``functional.uniform_temporal_subsample_repeated``; returns a list, one entry per ratio."""

    def __init__(self, frame_ratios: Tuple[int], temporal_dim: int = -3):
        super().__init__()
        self._frame_ratios = frame_ratios
        self._temporal_dim = temporal_dim

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return F_video.uniform_temporal_subsample_repeated(x, self._frame_ratios, self._temporal_dim)


class ShortSideScale(torch.nn.Module):
    """Wrapper for ``functional.short_side_scale`` (layout ``[..., C, T, H, W]``, floating point)."""

    def __init__(self, size: int, interpolation: str = "bilinear", backend: str = "pytorch"):
        super().__init__()
        self._size = size
        self._interpolation = interpolation
        self._backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F_video.short_side_scale(x, self._size, self._interpolation, self._backend)


class RandomShortSideScale(torch.nn.Module):
    """``short_side_scale`` to a size drawn uniformly from [min_size, max_size] (layout ``[..., C, T, H, W]``)."""

    def __init__(self, min_size: int, max_size: int, interpolation: str = "bilinear", backend: str = "pytorch",
                 *, generator: Optional[torch.Generator] = None):
        super().__init__()
        if min_size > max_size:
            raise ValueError(f"min_size ({min_size}) must not exceed max_size ({max_size})")
        self._min_size = min_size
        self._max_size = max_size
        self._interpolation = interpolation
        self._backend = backend
        self._generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = _randint(self._min_size, self._max_size, self._generator)
        return F_video.short_side_scale(x, size, self._interpolation, self._backend)


class UniformCropVideo(torch.nn.Module):
    """Dict transform: ``uniform_crop(x[video_key], size, x[aug_index_key])`` (layout ``[..., C, T, H, W]``)."""

    def __init__(self, size: int, video_key: str = "video", aug_index_key: str = "aug_index"):
        super().__init__()
        self._size = size
        self._video_key = video_key
        self._aug_index_key = aug_index_key

    def forward(self, x: Dict[str, Any]) -> Dict[str, Any]:
        for key in (self._video_key, self._aug_index_key):
            if key not in x:
                raise KeyError(f"UniformCropVideo: key {key!r} not in the sample (keys: {list(x)})")
        x[self._video_key] = F_video.uniform_crop(x[self._video_key], self._size, int(x[self._aug_index_key]))
        return x


class Normalize(torch.nn.Module):
    """``(x - mean[c]) / std[c]`` per channel of a ``[..., C, T, H, W]`` floating clip.

    Same attributes as the torchvision ``Normalize`` upstream subclassed (``mean``, ``std``, ``inplace``).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean and std need the same length, got {len(mean)} and {len(std)}")
        if any(s == 0 for s in std):
            raise ValueError(f"std must not contain zeros, got {tuple(std)}")
        self.mean = mean
        self.std = std
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        F_video._check_clip(x)
        if not x.dtype.is_floating_point:
            raise TypeError(f"Normalize needs a floating-point clip, got dtype {x.dtype} (convert it first)")
        channels = x.shape[-4]
        if len(self.mean) not in (1, channels):
            raise ValueError(f"Normalize has {len(self.mean)} means but the clip has {channels} channels")
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
        if self.inplace:
            return x.sub_(mean).div_(std)
        return (x - mean).div_(std)

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}, inplace={self.inplace}"


class ConvertFloatToUint8(torch.nn.Module):
    """Floating [0, 1] to uint8 [0, 255] as torchvision's ``ConvertImageDtype`` (values outside are clamped)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.dtype.is_floating_point:
            raise TypeError(f"ConvertFloatToUint8 needs a floating-point tensor, got dtype {x.dtype}")
        return _image_ops.convert_image_dtype(x, torch.uint8)


class ConvertUint8ToFloat(torch.nn.Module):
    """uint8 [0, 255] to float32 [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"ConvertUint8ToFloat needs a uint8 tensor, got dtype {x.dtype}")
        return _image_ops.convert_image_dtype(x, torch.float32)


class MoveChannelRear(torch.nn.Module):
    """``[..., C, T, H, W]`` to ``[..., T, H, W, C]`` (upstream's version was not callable)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        F_video._check_clip(x)
        return x.movedim(-4, -1)


class MoveChannelFront(torch.nn.Module):
    """``[..., T, H, W, C]`` to ``[..., C, T, H, W]`` (upstream's version was not callable)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        F_video._check_clip(x)
        return x.movedim(-1, -4)


class RandomResizedCrop(torch.nn.Module):
    """Wrapper for ``functional.random_resized_crop`` (layout ``[..., C, T, H, W]``, floating point)."""

    def __init__(self, target_height: int, target_width: int, scale: Tuple[float, float],
                 aspect_ratio: Tuple[float, float], shift: bool = False, log_uniform_ratio: bool = True,
                 interpolation: str = "bilinear", num_tries: int = 10, *,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self._target_height = target_height
        self._target_width = target_width
        self._scale = scale
        self._aspect_ratio = aspect_ratio
        self._shift = shift
        self._log_uniform_ratio = log_uniform_ratio
        self._interpolation = interpolation
        self._num_tries = num_tries
        self._generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F_video.random_resized_crop(x, self._target_height, self._target_width, self._scale,
                                           self._aspect_ratio, self._shift, self._log_uniform_ratio,
                                           self._interpolation, self._num_tries, generator=self._generator)


class Permute(torch.nn.Module):
    """Permutes the last ``len(dims)`` dimensions by ``dims``; leading (batch) dims stay in front.

    ``Permute((1, 0, 2, 3))`` turns C,T,H,W into T,C,H,W, and B,C,T,H,W into B,T,C,H,W.
    """

    def __init__(self, dims: Tuple[int, ...]):
        super().__init__()
        if sorted(dims) != list(range(len(dims))):
            raise ValueError(f"dims must be a permutation of 0..{len(dims) - 1}, got {tuple(dims)}")
        self._dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.dim() - len(self._dims)
        if lead < 0:
            raise ValueError(f"Permute{self._dims} needs at least {len(self._dims)} dims, got shape {tuple(x.shape)}")
        return x.permute(*range(lead), *(lead + d for d in self._dims))


class OpSampler(torch.nn.Module):
    """Applies ``num_sample_op`` transforms drawn (``torch.multinomial``) from ``transforms_list``.

    With ``randomly_sample_depth`` the number applied is uniform in [1, num_sample_op]. Layout: whatever the
    sampled transforms take.
    """

    def __init__(self, transforms_list: List[Callable], transforms_prob: Optional[List[float]] = None,
                 num_sample_op: int = 1, randomly_sample_depth: bool = False, replacement: bool = False):
        super().__init__()
        if len(transforms_list) == 0:
            raise ValueError("transforms_list cannot be empty")
        if num_sample_op <= 0:
            raise ValueError(f"num_sample_op must be positive, got {num_sample_op}")
        if not replacement and num_sample_op > len(transforms_list):
            raise ValueError(f"num_sample_op ({num_sample_op}) exceeds the {len(transforms_list)} transforms "
                             "available without replacement")
        if transforms_prob is not None:
            if len(transforms_prob) != len(transforms_list):
                raise ValueError("transforms_prob needs the same length as transforms_list")
            if min(transforms_prob) <= 0:
                raise ValueError("transforms_prob values must be positive")
        self.transforms_list = transforms_list
        self.transforms_prob = torch.tensor(
            transforms_prob if transforms_prob is not None else [1.0] * len(transforms_list), dtype=torch.float)
        self.num_sample_op = num_sample_op
        self.randomly_sample_depth = randomly_sample_depth
        self.replacement = replacement

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        depth = _randint(1, self.num_sample_op, None) if self.randomly_sample_depth else self.num_sample_op
        for index in torch.multinomial(self.transforms_prob, depth, replacement=self.replacement).tolist():
            x = self.transforms_list[index](x)
        return x


class Div255(torch.nn.Module):
    """``x / 255``: scales [0, 255] pixel values to [0, 1] (layout: any)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F_video.div_255(x)


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
