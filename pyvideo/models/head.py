"""Classification heads: pooled linear (ResNet), RoI-pooled linear (detection) and sequence (ViT)."""
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn

from pyvideo.layers.utils import set_attributes
from pyvideo.ops.roi_align import RoIAlign


def _make_activation(activation: Optional[Callable]) -> Optional[nn.Module]:
    if activation is None:
        return None
    if activation is nn.Softmax:
        return activation(dim=1)  # over the class (channel) dimension
    return activation()


def _make_pool(pool, output_size, pool_kernel_size, pool_stride, pool_padding) -> Optional[nn.Module]:
    if pool is None:
        return None
    if pool is nn.AdaptiveAvgPool3d:
        return pool(output_size)
    return pool(kernel_size=pool_kernel_size, stride=pool_stride, padding=pool_padding)


def _project_channels(proj: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a Linear over the channel dim of (N, C, T, H, W), position by position."""
    return proj(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


def create_res_basic_head(
    *,
    in_features: int,
    out_features: int,
    pool: Callable = nn.AvgPool3d,
    output_size: Tuple[int] = (1, 1, 1),
    pool_kernel_size: Tuple[int] = (1, 7, 7),
    pool_stride: Tuple[int] = (1, 1, 1),
    pool_padding: Tuple[int] = (0, 0, 0),
    dropout_rate: float = 0.5,
    activation: Callable = None,
    output_with_global_average: bool = True,
) -> nn.Module:
    """pool → dropout → linear → activation → optional global average. ``nn.Softmax`` acts over classes."""
    return ResNetBasicHead(
        proj=nn.Linear(in_features, out_features),
        activation=_make_activation(activation),
        pool=_make_pool(pool, output_size, pool_kernel_size, pool_stride, pool_padding),
        dropout=nn.Dropout(dropout_rate) if dropout_rate > 0 else None,
        output_pool=nn.AdaptiveAvgPool3d(1) if output_with_global_average else None,
    )


class ResNetBasicHead(nn.Module):
    """pool → dropout → per-position linear → activation → output pool → flatten.

    The projection runs at every remaining (t, h, w) position, so the head also works fully
    convolutionally on inputs larger than the pool kernel. As upstream, ``activation`` is applied in
    training mode too (see docs/notes/models_cnn.md).
    """

    def __init__(
        self,
        pool: nn.Module = None,
        dropout: nn.Module = None,
        proj: nn.Module = None,
        activation: nn.Module = None,
        output_pool: nn.Module = None,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if self.proj is None:
            raise ValueError("ResNetBasicHead needs a proj module")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        if self.dropout is not None:
            x = self.dropout(x)
        x = _project_channels(self.proj, x)
        if self.activation is not None:
            x = self.activation(x)
        if self.output_pool is not None:
            x = self.output_pool(x)
            x = x.reshape(x.shape[0], -1)
        return x


def create_res_roi_pooling_head(
    *,
    in_features: int,
    out_features: int,
    resolution: Tuple,
    spatial_scale: float,
    sampling_ratio: int = 0,
    roi: Callable = RoIAlign,
    pool: Callable = nn.AvgPool3d,
    output_size: Tuple[int] = (1, 1, 1),
    pool_kernel_size: Tuple[int] = (1, 7, 7),
    pool_stride: Tuple[int] = (1, 1, 1),
    pool_padding: Tuple[int] = (0, 0, 0),
    pool_spatial: Callable = nn.MaxPool2d,
    dropout_rate: float = 0.5,
    activation: Callable = None,
    output_with_global_average: bool = True,
) -> nn.Module:
    """Detection head: temporal pool → RoIAlign per box → spatial max-pool → dropout → linear → activation.

    ``roi`` defaults to pyvideo's own ``RoIAlign`` (torchvision semantics) and, as upstream, is built
    with its default ``aligned=False``.
    """
    return ResNetRoIHead(
        proj=nn.Linear(in_features, out_features),
        activation=_make_activation(activation),
        pool=_make_pool(pool, output_size, pool_kernel_size, pool_stride, pool_padding),
        pool_spatial=pool_spatial(resolution, stride=1) if pool_spatial else None,
        roi_layer=roi(output_size=resolution, spatial_scale=spatial_scale, sampling_ratio=sampling_ratio),
        dropout=nn.Dropout(dropout_rate) if dropout_rate > 0 else None,
        output_pool=nn.AdaptiveAvgPool3d(1) if output_with_global_average else None,
    )


class ResNetRoIHead(nn.Module):
    """Pools features inside each box, then classifies them like ``ResNetBasicHead``."""

    def __init__(
        self,
        pool: nn.Module = None,
        pool_spatial: nn.Module = None,
        roi_layer: nn.Module = None,
        dropout: nn.Module = None,
        proj: nn.Module = None,
        activation: nn.Module = None,
        output_pool: nn.Module = None,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if self.proj is None or self.roi_layer is None:
            raise ValueError("ResNetRoIHead needs proj and roi_layer modules")

    def forward(self, x: torch.Tensor, bboxes: torch.Tensor) -> torch.Tensor:
        """``x`` is (B, C, T, H, W); ``bboxes`` is (N, 5) rows of (batch index, x1, y1, x2, y2)."""
        if self.pool is not None:
            x = self.pool(x)
        if x.shape[-3] != 1:
            raise ValueError(
                f"the temporal size after the head pool must be 1, got {x.shape[-3]}; adjust pool_kernel_size"
            )
        x = self.roi_layer(x.squeeze(-3), bboxes)
        if self.pool_spatial is not None:
            x = self.pool_spatial(x)
        x = x.unsqueeze(-3)
        if self.dropout is not None:
            x = self.dropout(x)
        x = _project_channels(self.proj, x)
        if self.activation is not None:
            x = self.activation(x)
        if self.output_pool is not None:
            x = self.output_pool(x)
            x = x.reshape(x.shape[0], -1)
        return x


class SequencePool(nn.Module):
    """Reduces (B, L, C) tokens to (B, C): the first (class) token for "cls", the mean for "mean"."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in ("cls", "mean"):
            raise ValueError(f"SequencePool mode must be 'cls' or 'mean', got {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "cls":
            return x[:, 0]
        return x.mean(1)


def create_vit_basic_head(
    *,
    in_features: int,
    out_features: int,
    seq_pool_type: str = "cls",
    dropout_rate: float = 0.5,
    activation: Callable = None,
) -> nn.Module:
    """Transformer head: sequence pool ("cls", "mean" or "none") → dropout → linear → activation."""
    if seq_pool_type not in ("cls", "mean", "none"):
        raise ValueError(f"seq_pool_type must be 'cls', 'mean' or 'none', got {seq_pool_type!r}")
    return VisionTransformerBasicHead(
        sequence_pool=None if seq_pool_type == "none" else SequencePool(seq_pool_type),
        dropout=nn.Dropout(dropout_rate) if dropout_rate > 0.0 else None,
        proj=nn.Linear(in_features, out_features),
        activation=_make_activation(activation),
    )


class VisionTransformerBasicHead(nn.Module):
    """sequence pool → dropout → linear → activation."""

    def __init__(
        self,
        sequence_pool: nn.Module = None,
        dropout: nn.Module = None,
        proj: nn.Module = None,
        activation: nn.Module = None,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if self.proj is None:
            raise ValueError("VisionTransformerBasicHead needs a proj module")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sequence_pool is not None:
            x = self.sequence_pool(x)
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.proj(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
