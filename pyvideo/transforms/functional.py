"""Functional video transforms (``pytorchvideo.transforms.functional`` API).

Layout: clips are ``C, T, H, W`` and batches ``B, C, T, H, W``; every function accepts any number of leading
dims before ``C, T, H, W`` and works on CPU and GPU tensors alike. Boxes are ``[..., 4]`` tensors holding
``(x1, y1, x2, y2)`` in pixels. Randomness comes from torch (the global RNG, or ``generator`` where a function
takes one), so ``torch.manual_seed`` makes runs reproducible.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch

from pyvideo.transforms import _image_ops

_SHORT_SIDE_BACKENDS = ("pytorch", "opencv")


def _check_clip(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 4:
        raise ValueError(f"{name} must be a clip [C, T, H, W] or batch [..., C, T, H, W], got shape {tuple(x.shape)}")


def _randint(low: int, high: int, generator: Optional[torch.Generator]) -> int:
    """Uniform integer in [low, high] (inclusive), from ``generator`` or the global torch RNG."""
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


def _rand(generator: Optional[torch.Generator]) -> float:
    return float(torch.rand(1, generator=generator).item())


def uniform_temporal_subsample(x: torch.Tensor, num_samples: int, temporal_dim: int = -3) -> torch.Tensor:
    """Picks ``num_samples`` frames at ``linspace(0, T - 1, num_samples)`` (truncated to ints).

    Layout: any; ``temporal_dim`` (default -3, the T of ``[..., C, T, H, W]``) is the time axis. When
    ``num_samples > T`` frames repeat (nearest-neighbour upsampling in time).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    t = x.shape[temporal_dim]
    if t == 0:
        raise ValueError("cannot subsample a video with no frames")
    # computed on the CPU so every device picks exactly the frames upstream picks (float32 linspace, truncated)
    indices = torch.linspace(0, t - 1, num_samples).clamp(0, t - 1).long()
    return torch.index_select(x, temporal_dim, indices.to(x.device))


def uniform_temporal_subsample_repeated(frames: torch.Tensor, frame_ratios: Sequence[int],
                                        temporal_dim: int = -3) -> List[torch.Tensor]:
    """One ``uniform_temporal_subsample`` per ratio, keeping ``T // ratio`` frames each (e.g. SlowFast pathways).

    Layout: any; ``temporal_dim`` as in ``uniform_temporal_subsample``.
    """
    temporal_length = frames.shape[temporal_dim]
    return [uniform_temporal_subsample(frames, temporal_length // ratio, temporal_dim) for ratio in frame_ratios]


def _short_side_target(height: int, width: int, size: int) -> Tuple[int, int]:
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if width < height:
        return int(math.floor(height / width * size)), size
    return size, int(math.floor(width / height * size))


def _interpolate_opencv(x: torch.Tensor, size: Tuple[int, int], interpolation: str) -> torch.Tensor:
    """Resizes ``[..., H, W]`` with OpenCV on the CPU (upstream maps "bilinear" to cv2.INTER_AREA)."""
    try:  # optional dependency, imported only when this backend is asked for
        import cv2
    except ImportError as error:
        raise ImportError("short_side_scale(backend='opencv') needs OpenCV (pip install opencv-python-headless); "
                          "the default backend='pytorch' needs nothing extra") from error
    if x.device.type != "cpu":
        raise ValueError("the 'opencv' backend works on CPU tensors only; use backend='pytorch' on GPU")
    flags = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR,
             "bilinear": cv2.INTER_AREA, "bicubic": cv2.INTER_CUBIC}
    if interpolation not in flags:
        raise ValueError(f"opencv interpolation must be one of {tuple(flags)}, got {interpolation!r}")
    new_h, new_w = size
    planes = x.reshape(-1, *x.shape[-2:]).contiguous().numpy()
    resized = [cv2.resize(plane, (new_w, new_h), interpolation=flags[interpolation]) for plane in planes]
    return torch.stack([torch.from_numpy(plane) for plane in resized]).reshape(*x.shape[:-2], new_h, new_w)


def short_side_scale(x: torch.Tensor, size: int, interpolation: str = "bilinear",
                     backend: str = "pytorch") -> torch.Tensor:
    """Scales the shorter spatial side to ``size``; the longer becomes ``floor(long * size / short)``.

    Layout: ``[..., C, T, H, W]``, floating point. ``interpolation`` is an ``F.interpolate`` mode ("nearest",
    "bilinear", "bicubic", "area"). ``backend="opencv"`` uses OpenCV when it is installed (CPU only) and raises
    ImportError otherwise; the default "pytorch" backend runs on any device.
    """
    _check_clip(x)
    if not x.dtype.is_floating_point:
        raise TypeError(f"short_side_scale needs a floating-point clip, got dtype {x.dtype}")
    if backend not in _SHORT_SIDE_BACKENDS:
        raise ValueError(f"backend must be one of {_SHORT_SIDE_BACKENDS}, got {backend!r}")
    new_size = _short_side_target(x.shape[-2], x.shape[-1], size)
    if backend == "opencv":
        return _interpolate_opencv(x, new_size, interpolation)
    return _image_ops.interpolate_hw(x, new_size, interpolation)


def short_side_scale_with_boxes(images: torch.Tensor, boxes: torch.Tensor, size: int,
                                interpolation: str = "bilinear",
                                backend: str = "pytorch") -> Tuple[torch.Tensor, torch.Tensor]:
    """``short_side_scale`` plus the boxes scaled by the same factor (boxes are not modified in place).

    Layout: images ``[..., C, T, H, W]``; boxes ``[..., 4]`` as (x1, y1, x2, y2).
    """
    height, width = images.shape[-2:]
    images = short_side_scale(images, size, interpolation, backend)
    new_height, new_width = images.shape[-2:]
    factor = new_height / height if width < height else new_width / width
    return images, torch.as_tensor(boxes) * factor


def random_short_side_scale_with_boxes(images: torch.Tensor, boxes: torch.Tensor, min_size: int, max_size: int,
                                       interpolation: str = "bilinear", backend: str = "pytorch", *,
                                       generator: Optional[torch.Generator] = None
                                       ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``short_side_scale_with_boxes`` with ``size`` drawn uniformly from [min_size, max_size].

    Layout: as ``short_side_scale_with_boxes``.
    """
    if min_size > max_size:
        raise ValueError(f"min_size ({min_size}) must not exceed max_size ({max_size})")
    size = _randint(min_size, max_size, generator)
    return short_side_scale_with_boxes(images, boxes, size, interpolation, backend)


def _check_crop_fits(height: int, width: int, crop_height: int, crop_width: int) -> None:
    if crop_height <= 0 or crop_width <= 0:
        raise ValueError(f"crop size must be positive, got {(crop_height, crop_width)}")
    if crop_height > height or crop_width > width:
        raise ValueError(f"crop size {(crop_height, crop_width)} is larger than the frames {(height, width)}")


def random_crop_with_boxes(images: torch.Tensor, size: int, boxes: torch.Tensor, *,
                           generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Crops a random ``size`` x ``size`` window (same for all frames) and shifts + clips the boxes to it.

    Layout: images ``[..., C, T, H, W]``; boxes ``[..., 4]``. Offsets are uniform over every position
    that fits, ``[0, H - size]`` and ``[0, W - size]``.
    """
    _check_clip(images, "images")
    height, width = images.shape[-2:]
    _check_crop_fits(height, width, size, size)
    y_offset = _randint(0, height - size, generator)
    x_offset = _randint(0, width - size, generator)
    cropped = images[..., y_offset:y_offset + size, x_offset:x_offset + size]
    cropped_boxes = crop_boxes(boxes, x_offset, y_offset)
    return cropped, clip_boxes_to_image(cropped_boxes, size, size)


def _uniform_crop_helper(images: torch.Tensor, size: int, spatial_idx: int) -> Tuple[torch.Tensor, int, int]:
    """The crop of ``uniform_crop`` and its (x_offset, y_offset)."""
    _check_clip(images, "images")
    if spatial_idx not in (0, 1, 2):
        raise ValueError(f"spatial_idx must be 0, 1 or 2, got {spatial_idx}")
    height, width = images.shape[-2:]
    _check_crop_fits(height, width, size, size)
    y_offset = int(math.ceil((height - size) / 2))
    x_offset = int(math.ceil((width - size) / 2))
    if height > width:
        y_offset = {0: 0, 1: y_offset, 2: height - size}[spatial_idx]
    else:
        x_offset = {0: 0, 1: x_offset, 2: width - size}[spatial_idx]
    cropped = images[..., y_offset:y_offset + size, x_offset:x_offset + size]
    return cropped, x_offset, y_offset


def uniform_crop(images: torch.Tensor, size: int, spatial_idx: int) -> torch.Tensor:
    """Three-crop testing: a ``size`` square at the start / centre / end of the longer side.

    Layout: ``[..., C, T, H, W]``. ``spatial_idx`` 0, 1, 2 = left, centre, right when W >= H, and top,
    centre, bottom when H > W; the centre offset is ``ceil((side - size) / 2)``.
    """
    cropped, _, _ = _uniform_crop_helper(images, size, spatial_idx)
    return cropped


def uniform_crop_with_boxes(images: torch.Tensor, size: int, spatial_idx: int,
                            boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``uniform_crop`` plus the boxes shifted into the crop and clipped to it.

    Layout: images ``[..., C, T, H, W]``; boxes ``[..., 4]``.
    """
    cropped, x_offset, y_offset = _uniform_crop_helper(images, size, spatial_idx)
    cropped_boxes = crop_boxes(boxes, x_offset, y_offset)
    return cropped, clip_boxes_to_image(cropped_boxes, cropped.shape[-2], cropped.shape[-1])


def horizontal_flip_with_boxes(prob: float, images: torch.Tensor, boxes: torch.Tensor, *,
                               generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """With probability ``prob`` flips the frames left-right and maps box x to ``W - 1 - x`` (x1/x2 swapped).

    Layout: images ``[..., C, T, H, W]``; boxes ``[..., 4]``. Returns a new boxes tensor in either case.
    """
    boxes = torch.as_tensor(boxes).clone()
    if _rand(generator) < prob:
        images = images.flip(-1)
        width = images.shape[-1]
        boxes[..., [0, 2]] = width - boxes[..., [2, 0]] - 1
    return images, boxes


def clip_boxes_to_image(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Clamps box x to [0, width - 1] and y to [0, height - 1]. Layout: boxes ``[..., 4]``."""
    boxes = torch.as_tensor(boxes)
    clipped = boxes.clone()
    clipped[..., [0, 2]] = boxes[..., [0, 2]].clamp(0.0, width - 1.0)
    clipped[..., [1, 3]] = boxes[..., [1, 3]].clamp(0.0, height - 1.0)
    return clipped


def crop_boxes(boxes: torch.Tensor, x_offset: int, y_offset: int) -> torch.Tensor:
    """Shifts boxes into a crop whose top-left corner is (x_offset, y_offset). Layout: boxes ``[..., 4]``."""
    boxes = torch.as_tensor(boxes)
    return boxes - boxes.new_tensor([x_offset, y_offset, x_offset, y_offset])


def convert_to_one_hot(targets: torch.Tensor, num_class: int, label_smooth: float = 0.0) -> torch.Tensor:
    """Class indices ``[N]`` to one-hot rows ``[N, num_class]``.

    With ``label_smooth`` = s > 0 every class gets s / num_class and the target 1 - s + s / num_class (dtype
    float); without smoothing the result is long, as upstream.
    """
    targets = torch.as_tensor(targets)
    if targets.numel() and (int(targets.max()) >= num_class or int(targets.min()) < 0):
        raise ValueError(f"class indices must be in [0, {num_class}), got range "
                         f"[{int(targets.min())}, {int(targets.max())}]")
    if not 0.0 <= label_smooth < 1.0:
        raise ValueError(f"label_smooth must be in [0, 1), got {label_smooth}")
    non_target_value = label_smooth / num_class
    target_value = 1.0 - label_smooth + non_target_value
    dtype = torch.long if label_smooth == 0.0 else torch.get_default_dtype()
    one_hot = torch.full((targets.shape[0], num_class), non_target_value, dtype=dtype, device=targets.device)
    return one_hot.scatter_(1, targets.long().view(-1, 1), target_value)


def _get_param_spatial_crop(scale: Tuple[float, float], ratio: Tuple[float, float], height: int, width: int,
                            log_uniform_ratio: bool = True, num_tries: int = 10, *,
                            generator: Optional[torch.Generator] = None) -> Tuple[int, int, int, int]:
    """Samples an Inception-style crop (top, left, height, width); falls back to a centre crop after ``num_tries``."""
    if num_tries < 1:
        raise ValueError(f"num_tries must be at least 1, got {num_tries}")
    scale = (min(scale), max(scale))
    ratio = (min(ratio), max(ratio))
    area = height * width
    for _ in range(num_tries):
        target_area = area * (scale[0] + _rand(generator) * (scale[1] - scale[0]))
        if log_uniform_ratio:
            low, high = math.log(ratio[0]), math.log(ratio[1])
            aspect_ratio = math.exp(low + _rand(generator) * (high - low))
        else:
            aspect_ratio = ratio[0] + _rand(generator) * (ratio[1] - ratio[0])
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            return _randint(0, height - h, generator), _randint(0, width - w, generator), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(frames: torch.Tensor, target_height: int, target_width: int, scale: Tuple[float, float],
                        aspect_ratio: Tuple[float, float], shift: bool = False, log_uniform_ratio: bool = True,
                        interpolation: str = "bilinear", num_tries: int = 10, *,
                        generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Crops a random area/aspect-ratio window and resizes it to (target_height, target_width).

    Layout: ``[..., C, T, H, W]``, floating point. With ``shift`` a second window is drawn for the last frame
    and each frame's window is linearly interpolated between the two (truncated to ints, as upstream).
    """
    _check_clip(frames, "frames")
    if min(scale) <= 0:
        raise ValueError(f"scale values must be positive, got {scale}")
    if min(aspect_ratio) <= 0:
        raise ValueError(f"aspect_ratio values must be positive, got {aspect_ratio}")
    height, width = frames.shape[-2:]
    target = (target_height, target_width)
    top, left, h, w = _get_param_spatial_crop(scale, aspect_ratio, height, width, log_uniform_ratio, num_tries,
                                              generator=generator)
    if not shift:
        return _image_ops.interpolate_hw(frames[..., top:top + h, left:left + w], target, interpolation)
    last = _get_param_spatial_crop(scale, aspect_ratio, height, width, log_uniform_ratio, num_tries,
                                   generator=generator)
    num_frames = frames.shape[-3]
    windows = [[int(v) for v in torch.linspace(a, b, steps=num_frames).tolist()]
               for a, b in zip((top, left, h, w), last)]
    per_frame = [
        _image_ops.interpolate_hw(frames[..., t, tp:tp + fh, lf:lf + fw], target, interpolation)
        for t, (tp, lf, fh, fw) in enumerate(zip(*windows))
    ]
    return torch.stack(per_frame, dim=-3)


def div_255(x: torch.Tensor) -> torch.Tensor:
    """``x / 255`` (layout: any)."""
    return x / 255.0
