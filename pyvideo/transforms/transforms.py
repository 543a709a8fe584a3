"""Video transform classes (``pytorchvideo.transforms.transforms`` API).

Layout: unless a docstring says otherwise, tensors are clips ``C, T, H, W`` or batches with leading dims
``..., C, T, H, W``; every transform works on CPU and GPU tensors. Random transforms draw their parameters
once per call from ``generator`` when given, else from the global torch RNG.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import _image_ops
from . import functional as F_video
from .functional import _randint


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
            raise TypeError(
                f"ConvertUint8ToFloat needs a uint8 tensor, got dtype {x.dtype} (decoded clips are float 0-255: "
                "use create_video_transform(..., convert_to_float=False) with mean/std scaled by 255, or Div255 first)"
            )
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
