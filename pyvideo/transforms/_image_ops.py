"""Torch-only image operations, replacing the torchvision functional ops PyTorchVideo used.

Layout: every function here takes images as ``[..., C, H, W]`` (channel third from last), so a video laid out
``T, C, H, W`` (or a batch ``B, T, C, H, W``) is a stack of images. Callers holding ``C, T, H, W`` clips move the
channel axis first (see ``channels_third_last``).

Pixel range follows the dtype, as in torchvision: floating-point images live in ``[0, 1]`` and uint8 images in
``[0, 255]``. Arithmetic runs in floating point; uint8 results are rounded and clamped back to uint8.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

_GRAYSCALE_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL and torchvision use


def check_image(img: torch.Tensor, min_dims: int = 3) -> None:
    """Raises TypeError / ValueError unless ``img`` is a float or uint8 tensor with at least ``min_dims`` dims."""
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(img).__name__}")
    if not (img.dtype.is_floating_point or img.dtype == torch.uint8):
        raise TypeError(f"expected a floating-point or uint8 tensor, got dtype {img.dtype}")
    if img.dim() < min_dims:
        raise ValueError(f"expected a tensor with at least {min_dims} dimensions, got shape {tuple(img.shape)}")


def max_value(dtype: torch.dtype) -> float:
    """Brightest pixel value for ``dtype``: 1.0 for floating point, 255 for uint8."""
    return 1.0 if dtype.is_floating_point else 255.0


def to_float(img: torch.Tensor) -> torch.Tensor:
    """The image in a floating dtype, keeping its value range (uint8 stays 0-255)."""
    return img if img.dtype.is_floating_point else img.float()


def cast_like(result: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Casts a float result back to ``dtype``; integers are rounded and clamped so they never wrap."""
    if dtype.is_floating_point:
        return result.to(dtype)
    return result.round().clamp(0, max_value(dtype)).to(dtype)


def channels_third_last(clip: torch.Tensor) -> torch.Tensor:
    """Views a ``[..., C, T, H, W]`` clip as ``[..., T, C, H, W]`` images (its own inverse)."""
    return clip.transpose(-4, -3)


def as_image_batch(img: torch.Tensor) -> Tuple[torch.Tensor, torch.Size]:
    """Flattens ``[..., C, H, W]`` into ``[N, C, H, W]`` for the ops that need 4-D input; returns the lead shape."""
    return img.reshape(-1, *img.shape[-3:]), img.shape[:-3]


def interpolate_hw(x: torch.Tensor, size: Tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resizes the last two dims of a floating tensor with ``F.interpolate`` (align_corners=False)."""
    modes = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
    if mode not in modes:
        raise ValueError(f"interpolation must be one of {modes} for spatial resizing, got {mode!r}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"resizing needs a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 3:
        raise ValueError(f"expected at least 3 dims (..., H, W), got shape {tuple(x.shape)}")
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, *x.shape[-2:]) if x.dim() == 3 else x.reshape(-1, x.shape[-3], *x.shape[-2:])
    align = False if mode in ("bilinear", "bicubic") else None
    out = F.interpolate(flat, size=tuple(size), mode=mode, align_corners=align)
    return out.reshape(*lead, *out.shape[-2:])


def rgb_to_grayscale(img: torch.Tensor) -> torch.Tensor:
    """Luma of an RGB image as a float tensor ``[..., 1, H, W]``; a 1-channel image is returned as float."""
    img = to_float(img)
    if img.shape[-3] == 1:
        return img
    if img.shape[-3] != 3:
        raise ValueError(f"expected 1 or 3 channels at dim -3, got {img.shape[-3]}")
    r, g, b = img.unbind(dim=-3)
    gray = _GRAYSCALE_WEIGHTS[0] * r + _GRAYSCALE_WEIGHTS[1] * g + _GRAYSCALE_WEIGHTS[2] * b
    return gray.unsqueeze(-3)


def blend(img: torch.Tensor, other: torch.Tensor, ratio: float) -> torch.Tensor:
    """``ratio * img + (1 - ratio) * other``, clamped to the dtype's range and cast back to ``img.dtype``."""
    bound = max_value(img.dtype)
    mixed = ratio * to_float(img) + (1.0 - ratio) * other
    return cast_like(mixed.clamp(0, bound), img.dtype)


def adjust_brightness(img: torch.Tensor, factor: float) -> torch.Tensor:
    """Scales pixel values by ``factor`` (0 gives black, 1 the original)."""
    _check_non_negative(factor, "brightness factor")
    return blend(img, torch.zeros((), device=img.device), factor)


def adjust_contrast(img: torch.Tensor, factor: float) -> torch.Tensor:
    """Blends each image with its mean grey level (0 gives flat grey, 1 the original)."""
    _check_non_negative(factor, "contrast factor")
    mean = rgb_to_grayscale(img).mean(dim=(-3, -2, -1), keepdim=True)
    return blend(img, mean, factor)


def adjust_saturation(img: torch.Tensor, factor: float) -> torch.Tensor:
    """Blends each image with its greyscale version (0 gives greyscale, 1 the original)."""
    _check_non_negative(factor, "saturation factor")
    if img.shape[-3] == 1:
        return img
    return blend(img, rgb_to_grayscale(img), factor)


def adjust_sharpness(img: torch.Tensor, factor: float) -> torch.Tensor:
    """Blends with a smoothed copy (PIL's 3x3 SMOOTH kernel, border pixels kept); 0 blurs, 2 sharpens."""
    _check_non_negative(factor, "sharpness factor")
    height, width = img.shape[-2:]
    if height <= 2 or width <= 2:
        return img
    batch, lead = as_image_batch(to_float(img))
    channels = batch.shape[1]
    kernel = torch.ones(3, 3, dtype=batch.dtype, device=batch.device)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(channels, 1, 3, 3)
    smoothed = F.conv2d(batch, kernel, groups=channels)
    if not img.dtype.is_floating_point:
        smoothed = smoothed.round()
    degenerate = batch.clone()
    degenerate[..., 1:-1, 1:-1] = smoothed
    return blend(img, degenerate.reshape(*lead, *degenerate.shape[-3:]), factor)


def adjust_hue(img: torch.Tensor, hue_factor: float) -> torch.Tensor:
    """Rotates the hue by ``hue_factor`` of a full turn, ``hue_factor`` in [-0.5, 0.5]."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor must be in [-0.5, 0.5], got {hue_factor}")
    if img.shape[-3] == 1:
        return img
    bound = max_value(img.dtype)
    hue, saturation, value = rgb_to_hsv(to_float(img) / bound).unbind(dim=-3)
    hue = torch.remainder(hue + hue_factor, 1.0)
    rgb = hsv_to_rgb(torch.stack((hue, saturation, value), dim=-3))
    return cast_like(rgb * bound, img.dtype)


def rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] to HSV with every component in [0, 1] (hue as a fraction of a turn)."""
    r, g, b = img.unbind(dim=-3)
    value, _ = img.max(dim=-3)
    chroma = value - img.min(dim=-3).values
    grey = chroma == 0
    safe_chroma = torch.where(grey, torch.ones_like(chroma), chroma)
    saturation = torch.where(value > 0, chroma / torch.where(value > 0, value, torch.ones_like(value)),
                             torch.zeros_like(value))
    # hue sector by which channel is the maximum (ties resolved r, then g, then b)
    hue_r = torch.remainder((g - b) / safe_chroma, 6.0)
    hue_g = (b - r) / safe_chroma + 2.0
    hue_b = (r - g) / safe_chroma + 4.0
    hue = torch.where(value == r, hue_r, torch.where(value == g, hue_g, hue_b))
    hue = torch.where(grey, torch.zeros_like(hue), hue) / 6.0
    return torch.stack((hue, saturation, value), dim=-3)


def hsv_to_rgb(img: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_hsv``."""
    hue, saturation, value = img.unbind(dim=-3)
    sector_float = torch.floor(hue * 6.0)
    fraction = hue * 6.0 - sector_float
    sector = sector_float.long().remainder(6)
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    # rows: the (r, g, b) source of each of the six hue sectors
    candidates = torch.stack((value, q, p, t), dim=-1)
    table = torch.tensor([[0, 3, 2], [1, 0, 2], [2, 0, 3], [2, 1, 0], [3, 2, 0], [0, 2, 1]], device=img.device)
    picks = table[sector]  # [..., H, W, 3]
    rgb = torch.gather(candidates, -1, picks)
    return rgb.movedim(-1, -3)


def autocontrast(img: torch.Tensor) -> torch.Tensor:
    """Stretches each channel of each image so its darkest pixel becomes 0 and its brightest the maximum."""
    bound = max_value(img.dtype)
    x = to_float(img)
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    flat = high == low  # a constant channel has no contrast to stretch
    scale = torch.where(flat, torch.ones_like(high), bound / torch.where(flat, torch.ones_like(high), high - low))
    low = torch.where(flat, torch.zeros_like(low), low)
    return cast_like(((x - low) * scale).clamp(0, bound), img.dtype)


def equalize(img: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per channel of each uint8 image (PIL's ImageOps.equalize rule)."""
    if img.dtype != torch.uint8:
        raise TypeError(f"equalize needs a uint8 image, got dtype {img.dtype}")
    height, width = img.shape[-2:]
    rows = img.reshape(-1, height * width).long()
    hist = torch.zeros(rows.shape[0], 256, dtype=torch.long, device=img.device)
    hist.scatter_add_(1, rows, torch.ones_like(rows))
    brightest = rows.amax(dim=1, keepdim=True)
    # PIL's step ignores the pixels at the brightest used level
    step = (height * width - hist.gather(1, brightest)) // 255
    safe_step = step.clamp(min=1)
    lut = (hist.cumsum(dim=1) + safe_step // 2) // safe_step
    lut = F.pad(lut, (1, 0))[:, :-1].clamp(0, 255)
    equalized = torch.where(step == 0, rows, lut.gather(1, rows))
    return equalized.to(torch.uint8).reshape(img.shape)


def invert(img: torch.Tensor) -> torch.Tensor:
    """``max_value - img``."""
    if img.dtype == torch.uint8:
        return 255 - img
    return 1.0 - img


def posterize(img: torch.Tensor, bits: int) -> torch.Tensor:
    """Keeps the ``bits`` most significant bits of each uint8 pixel."""
    if img.dtype != torch.uint8:
        raise TypeError(f"posterize needs a uint8 image, got dtype {img.dtype}")
    bits = int(bits)
    if not 0 <= bits <= 8:
        raise ValueError(f"posterize bits must be in [0, 8], got {bits}")
    mask = (0xFF << (8 - bits)) & 0xFF
    return img & mask


def solarize(img: torch.Tensor, threshold: float) -> torch.Tensor:
    """Inverts every pixel whose value is at least ``threshold`` (in the image's own value range)."""
    return torch.where(img >= threshold, invert(img), img)


def affine(img: torch.Tensor, matrix: Sequence[float], interpolation: str = "bilinear",
           fill: Optional[Union[float, Sequence[float]]] = None) -> torch.Tensor:
    """Resamples images through an inverse affine map, as torchvision's tensor ``affine`` does.

    ``matrix`` = (a, b, c, d, e, f) maps each output pixel centre (x, y), measured from the image centre, to
    the input point (a*x + b*y + c, d*x + e*y + f). Points falling outside the input take ``fill`` (given in
    the image's value range, per channel or one value), or 0 when ``fill`` is None.
    """
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
    if len(matrix) != 6:
        raise ValueError(f"affine matrix needs 6 values, got {len(matrix)}")
    batch, lead = as_image_batch(to_float(img))
    n, channels, height, width = batch.shape
    grid = _affine_grid(matrix, height, width, batch.dtype, batch.device).expand(n, -1, -1, -1)
    if fill is None:
        out = F.grid_sample(batch, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    else:
        out = _grid_sample_with_fill(batch, grid, interpolation, fill)
    return cast_like(out.reshape(*lead, channels, height, width), img.dtype)


def _affine_grid(matrix: Sequence[float], height: int, width: int, dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
    a, b, c, d, e, f = (float(v) for v in matrix)
    xs = torch.arange(width, dtype=dtype, device=device) - (width - 1) / 2.0
    ys = torch.arange(height, dtype=dtype, device=device) - (height - 1) / 2.0
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    # grid_sample (align_corners=False) puts -1 and +1 on the outer pixel edges, i.e. at -W/2 and +W/2
    grid_x = (a * x + b * y + c) / (width / 2.0)
    grid_y = (d * x + e * y + f) / (height / 2.0)
    return torch.stack((grid_x, grid_y), dim=-1).unsqueeze(0)


def _grid_sample_with_fill(batch: torch.Tensor, grid: torch.Tensor, mode: str,
                           fill: Union[float, Sequence[float]]) -> torch.Tensor:
    channels = batch.shape[1]
    fill_values = torch.as_tensor(fill, dtype=batch.dtype, device=batch.device).reshape(-1)
    if fill_values.numel() not in (1, channels):
        raise ValueError(f"fill needs 1 or {channels} values, got {fill_values.numel()}")
    fill_values = fill_values.expand(channels).view(1, channels, 1, 1)
    # sample a ones channel alongside the image: it says how much of each output pixel came from inside
    with_mask = torch.cat((batch, torch.ones_like(batch[:, :1])), dim=1)
    sampled = F.grid_sample(with_mask, grid, mode=mode, padding_mode="zeros", align_corners=False)
    out, inside = sampled[:, :-1], sampled[:, -1:]
    if mode == "nearest":
        inside = (inside >= 0.5).to(out.dtype)
    return out * inside + (1.0 - inside) * fill_values


def rotate(img: torch.Tensor, angle: float, interpolation: str = "bilinear",
           fill: Optional[Union[float, Sequence[float]]] = None) -> torch.Tensor:
    """Rotates images counter-clockwise by ``angle`` degrees about their centre, keeping the size."""
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    # output -> input map: rotating the output grid clockwise finds the source of each pixel
    return affine(img, (cos, -sin, 0.0, sin, cos, 0.0), interpolation, fill)


def gaussian_kernel1d(kernel_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    half = (kernel_size - 1) / 2.0
    x = torch.linspace(-half, half, kernel_size, dtype=dtype, device=device)
    weights = torch.exp(-0.5 * (x / sigma) ** 2)
    return weights / weights.sum()


def gaussian_blur(img: torch.Tensor, kernel_size: Tuple[int, int], sigma: Tuple[float, float]) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding; ``kernel_size`` and ``sigma`` are (x, y)."""
    kernel_x, kernel_y = (int(k) for k in kernel_size)
    for k in (kernel_x, kernel_y):
        if k <= 0 or k % 2 == 0:
            raise ValueError(f"kernel_size values must be positive and odd, got {tuple(kernel_size)}")
    if min(sigma) <= 0:
        raise ValueError(f"sigma values must be positive, got {tuple(sigma)}")
    batch, lead = as_image_batch(to_float(img))
    channels = batch.shape[1]
    weights_x = gaussian_kernel1d(kernel_x, sigma[0], batch.dtype, batch.device)
    weights_y = gaussian_kernel1d(kernel_y, sigma[1], batch.dtype, batch.device)
    padded = F.pad(batch, (kernel_x // 2, kernel_x // 2, kernel_y // 2, kernel_y // 2), mode="reflect")
    blurred = F.conv2d(padded, weights_x.view(1, 1, 1, -1).expand(channels, 1, 1, kernel_x), groups=channels)
    blurred = F.conv2d(blurred, weights_y.view(1, 1, -1, 1).expand(channels, 1, kernel_y, 1), groups=channels)
    return cast_like(blurred.reshape(*lead, *blurred.shape[-3:]), img.dtype)


def convert_image_dtype(img: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Converts between uint8 [0, 255] and floating [0, 1] as torchvision's ``convert_image_dtype`` does."""
    if img.dtype == dtype:
        return img
    if img.dtype.is_floating_point and dtype.is_floating_point:
        return img.to(dtype)
    if img.dtype == torch.uint8 and dtype.is_floating_point:
        return img.to(dtype).div_(255.0)  # in place on the fresh copy: one pass less
    if img.dtype.is_floating_point and dtype == torch.uint8:
        # 255.999 maps 1.0 to 255 while giving every uint8 level an equal share of [0, 1]
        return (img * (256.0 - 1e-3)).clamp(0, 255).to(torch.uint8)
    raise TypeError(f"cannot convert an image from {img.dtype} to {dtype}; only uint8 and floating are supported")


def _check_non_negative(value: float, what: str) -> None:
    if value < 0:
        raise ValueError(f"{what} must be non-negative, got {value}")
