"""RoIAlign (Mask R-CNN) in plain torch ops, with the semantics of torchvision / Detectron2.

Bilinear sampling is separable: the value at (y, x) is a sum over rows and columns of
``w_row(y) * w_col(x) * feature[row, col]``, and the "outside the image" rule is a product of a row test
and a column test. The average over a bin's sampling grid is therefore ``Wy @ feature @ Wx^T``, where
``Wy`` [output_h, H] and ``Wx`` [output_w, W] hold the averaged interpolation weights of one RoI.
That keeps the op to a few matmuls, differentiable by autograd, with no per-sample Python loop.
"""
from typing import Sequence, Tuple, Union

import torch
from torch import nn

BoxesType = Union[torch.Tensor, Sequence[torch.Tensor]]


def _pair(output_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(output_size, int):
        size = (output_size, output_size)
    else:
        size = tuple(int(s) for s in output_size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"output_size must be a positive int or a pair of positive ints, got {output_size!r}")
    return size


def _boxes_to_rois(boxes: BoxesType, input: torch.Tensor) -> torch.Tensor:
    """Normalises boxes to a [K, 5] tensor of (batch_index, x1, y1, x2, y2)."""
    if isinstance(boxes, torch.Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"boxes tensor must have shape [K, 5] (batch_idx, x1, y1, x2, y2), got {tuple(boxes.shape)}")
        return boxes.to(input.dtype)
    if not isinstance(boxes, (list, tuple)):
        raise TypeError(f"boxes must be a Tensor[K, 5] or a list of Tensor[L, 4], got {type(boxes).__name__}")
    per_image = []
    for i, b in enumerate(boxes):
        if not isinstance(b, torch.Tensor) or b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes[{i}] must be a Tensor of shape [L, 4]")
        index = torch.full((b.shape[0], 1), float(i), dtype=input.dtype, device=b.device)
        per_image.append(torch.cat([index, b.to(input.dtype)], dim=1))
    if not per_image:
        return input.new_zeros((0, 5))
    return torch.cat(per_image, dim=0)


def _axis_weights(
    start: torch.Tensor, length: torch.Tensor, bins: int, grid: torch.Tensor, size: int
) -> torch.Tensor:
    """Averaged bilinear weights along one axis: [K, bins, size].

    start, length: [K] RoI start and extent on this axis (feature-map coordinates).
    grid: [K] number of sampling points per bin on this axis (may be 0 for empty RoIs).
    """
    num_rois = start.shape[0]
    max_grid = max(int(grid.max().item()) if num_rois else 1, 1)
    bin_size = length / bins
    bin_index = torch.arange(bins, dtype=start.dtype, device=start.device)
    sample_index = torch.arange(max_grid, dtype=start.dtype, device=start.device)
    grid_f = grid.to(start.dtype).clamp(min=1)
    # coordinate of sample s in bin p: start + p * bin + (s + 0.5) * bin / grid
    coord = (
        start[:, None, None]
        + bin_index[None, :, None] * bin_size[:, None, None]
        + (sample_index[None, None, :] + 0.5) * (bin_size / grid_f)[:, None, None]
    )
    used = sample_index[None, None, :] < grid.to(start.dtype)[:, None, None]
    # torchvision's rule: samples beyond one pixel outside the map contribute nothing
    inside = (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(coord), coord - low.to(coord.dtype))
    keep = (used & inside).to(coord.dtype) / grid_f[:, None, None]
    weights = coord.new_zeros((num_rois, bins, size))
    index = torch.cat([low, high], dim=2)
    values = torch.cat([(1 - frac) * keep, frac * keep], dim=2)
    return weights.scatter_add(2, index, values)


def roi_align(
    input: torch.Tensor,
    boxes: BoxesType,
    output_size: Union[int, Sequence[int]],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """Pools each box of ``boxes`` from ``input`` [N, C, H, W] into [K, C, output_h, output_w].

    boxes: Tensor[K, 5] of (batch_index, x1, y1, x2, y2), or a list with one Tensor[L, 4] per image.
    spatial_scale maps box coordinates to feature-map coordinates. sampling_ratio > 0 uses that many samples
    per bin and axis; <= 0 uses ceil(roi_size / output_size). aligned=True shifts boxes by -0.5 pixel so
    that pixel centres line up (Detectron2's ROIAlignV2); aligned=False clamps RoI sizes to at least 1.
    """
    if not isinstance(input, torch.Tensor) or input.dim() != 4:
        raise ValueError(f"input must be a 4-D tensor [N, C, H, W], got {getattr(input, 'shape', type(input))}")
    if not input.is_floating_point():
        raise TypeError(f"input must be floating point, got {input.dtype}")
    out_h, out_w = _pair(output_size)
    rois = _boxes_to_rois(boxes, input).to(input.device)
    num_images, channels, height, width = input.shape
    num_rois = rois.shape[0]
    if num_rois == 0:
        return input.new_zeros((0, channels, out_h, out_w))
    batch_index = rois[:, 0].long()
    if bool((batch_index < 0).any()) or bool((batch_index >= num_images).any()):
        raise ValueError(f"box batch indices must lie in [0, {num_images}), got {batch_index.tolist()}")

    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = torch.full_like(batch_index, sampling_ratio)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / out_h).long()
        grid_w = torch.ceil(roi_w / out_w).long()

    row_weights = _axis_weights(y1, roi_h, out_h, grid_h, height)  # [K, out_h, H]
    col_weights = _axis_weights(x1, roi_w, out_w, grid_w, width)  # [K, out_w, W]
    output = input.new_zeros((num_rois, channels, out_h, out_w))
    for image in range(num_images):
        rows = (batch_index == image).nonzero().flatten()
        if rows.numel() == 0:
            continue
        # [C, H, W] x [k, out_w, W] -> [k, C, H, out_w], then rows -> [k, C, out_h, out_w]
        pooled_cols = torch.einsum("chw,kqw->kchq", input[image], col_weights[rows])
        pooled = torch.einsum("kph,kchq->kcpq", row_weights[rows], pooled_cols)
        output = output.index_copy(0, rows, pooled)
    return output


class RoIAlign(nn.Module):
    """Module form of :func:`roi_align`; ``forward(input, rois)``."""

    def __init__(
        self,
        output_size: Union[int, Sequence[int]],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool = False,
    ) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: torch.Tensor, rois: BoxesType) -> torch.Tensor:
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
