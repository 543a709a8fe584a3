"""X3D (Feichtenhofer, 2020): a ResNet expanded along width, depth, frames and resolution."""
import math
from typing import Callable, Tuple

import torch
import torch.nn as nn

from pyvideo.layers.convolutions import Conv2plus1d
from pyvideo.layers.squeeze_excitation import SqueezeExcitation
from pyvideo.layers.swish import Swish
from pyvideo.layers.utils import round_repeats, round_width, set_attributes
from pyvideo.models.head import ResNetBasicHead
from pyvideo.models.net import Net
from pyvideo.models.resnet import BottleneckBlock, ResBlock, ResStage, _trivial_sum
from pyvideo.models.stem import ResNetBasicStem


def create_x3d_stem(
    *,
    in_channels: int,
    out_channels: int,
    conv_kernel_size: Tuple[int] = (5, 3, 3),
    conv_stride: Tuple[int] = (1, 2, 2),
    conv_padding: Tuple[int] = (2, 1, 1),
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """Spatial 1xkxk conv, then a depthwise kx1x1 temporal conv, norm and activation.

    The spatial conv is stored as ``conv.conv_t`` and the temporal one as ``conv.conv_xy``: the names are
    swapped, exactly as upstream, because published checkpoints use them.
    """
    spatial_conv = nn.Conv3d(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=(1, conv_kernel_size[1], conv_kernel_size[2]),
        stride=(1, conv_stride[1], conv_stride[2]),
        padding=(0, conv_padding[1], conv_padding[2]),
        bias=False,
    )
    temporal_conv = nn.Conv3d(
        in_channels=out_channels,
        out_channels=out_channels,
        kernel_size=(conv_kernel_size[0], 1, 1),
        stride=(conv_stride[0], 1, 1),
        padding=(conv_padding[0], 0, 0),
        bias=False,
        groups=out_channels,
    )
    return ResNetBasicStem(
        conv=Conv2plus1d(conv_t=spatial_conv, norm=None, activation=None, conv_xy=temporal_conv),
        norm=None if norm is None else norm(num_features=out_channels, eps=norm_eps, momentum=norm_momentum),
        activation=None if activation is None else activation(),
        pool=None,
    )


def create_x3d_bottleneck_block(
    *,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    conv_kernel_size: Tuple[int] = (3, 3, 3),
    conv_stride: Tuple[int] = (1, 2, 2),
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    se_ratio: float = 0.0625,
    activation: Callable = nn.ReLU,
    inner_act: Callable = Swish,
) -> nn.Module:
    """1x1x1 conv → norm → act → depthwise conv → norm (+ SE) → inner_act → 1x1x1 conv → norm."""
    squeeze_excite = (
        SqueezeExcitation(num_channels=dim_inner, num_channels_reduced=round_width(dim_inner, se_ratio), is_3d=True)
        if se_ratio > 0.0
        else nn.Identity()
    )

    def make_norm(width):
        return None if norm is None else norm(num_features=width, eps=norm_eps, momentum=norm_momentum)

    return BottleneckBlock(
        conv_a=nn.Conv3d(dim_in, dim_inner, kernel_size=(1, 1, 1), bias=False),
        norm_a=make_norm(dim_inner),
        act_a=None if activation is None else activation(),
        conv_b=nn.Conv3d(
            dim_inner,
            dim_inner,
            kernel_size=conv_kernel_size,
            stride=conv_stride,
            padding=[size // 2 for size in conv_kernel_size],
            bias=False,
            groups=dim_inner,
            dilation=(1, 1, 1),
        ),
        # SE lives inside norm_b so that checkpoints keep the keys norm_b.0 (BN) and norm_b.1 (SE)
        norm_b=nn.Sequential(nn.Identity() if norm is None else make_norm(dim_inner), squeeze_excite),
        act_b=None if inner_act is None else inner_act(),
        conv_c=nn.Conv3d(dim_inner, dim_out, kernel_size=(1, 1, 1), bias=False),
        norm_c=make_norm(dim_out),
    )


def create_x3d_res_block(
    *,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    bottleneck: Callable = create_x3d_bottleneck_block,
    use_shortcut: bool = True,
    conv_kernel_size: Tuple[int] = (3, 3, 3),
    conv_stride: Tuple[int] = (1, 2, 2),
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    se_ratio: float = 0.0625,
    activation: Callable = nn.ReLU,
    inner_act: Callable = Swish,
) -> nn.Module:
    """X3D residual block. The shortcut conv exists when width or stride changes; its norm only when width does."""
    width_changes = dim_in != dim_out
    strided = math.prod(conv_stride) > 1
    return ResBlock(
        branch1_conv=nn.Conv3d(dim_in, dim_out, kernel_size=(1, 1, 1), stride=conv_stride, bias=False)
        if (width_changes or strided) and use_shortcut
        else None,
        # default eps/momentum here, as upstream (checkpoint statistics were trained that way)
        branch1_norm=norm(num_features=dim_out) if norm is not None and width_changes and use_shortcut else None,
        branch2=bottleneck(
            dim_in=dim_in,
            dim_inner=dim_inner,
            dim_out=dim_out,
            conv_kernel_size=conv_kernel_size,
            conv_stride=conv_stride,
            norm=norm,
            norm_eps=norm_eps,
            norm_momentum=norm_momentum,
            se_ratio=se_ratio,
            activation=activation,
            inner_act=inner_act,
        ),
        activation=None if activation is None else activation(),
        branch_fusion=_trivial_sum,
    )


def create_x3d_res_stage(
    *,
    depth: int,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    bottleneck: Callable = create_x3d_bottleneck_block,
    conv_kernel_size: Tuple[int] = (3, 3, 3),
    conv_stride: Tuple[int] = (1, 2, 2),
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    se_ratio: float = 0.0625,
    activation: Callable = nn.ReLU,
    inner_act: Callable = Swish,
) -> nn.Module:
    """``depth`` X3D blocks; block 0 is strided; squeeze-excitation on blocks 0, 2, 4, ..."""
    return ResStage(
        res_blocks=nn.ModuleList(
            create_x3d_res_block(
                dim_in=dim_in if index == 0 else dim_out,
                dim_inner=dim_inner,
                dim_out=dim_out,
                bottleneck=bottleneck,
                conv_kernel_size=conv_kernel_size,
                conv_stride=conv_stride if index == 0 else (1, 1, 1),
                norm=norm,
                norm_eps=norm_eps,
                norm_momentum=norm_momentum,
                se_ratio=se_ratio if index % 2 == 0 else 0.0,
                activation=activation,
                inner_act=inner_act,
            )
            for index in range(depth)
        )
    )


def create_x3d_head(
    *,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    num_classes: int,
    pool_act: Callable = nn.ReLU,
    pool_kernel_size: Tuple[int] = (13, 5, 5),
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    bn_lin5_on=False,
    dropout_rate: float = 0.5,
    activation: Callable = nn.Softmax,
    output_with_global_average: bool = True,
) -> nn.Module:
    """X3D head: ``ProjectedPool`` (1x1x1 conv, norm, act, avg-pool, 1x1x1 conv) → dropout → linear → activation.

    ``activation`` may only be None, ``nn.Softmax`` (over classes) or ``nn.Sigmoid``.
    """
    if activation is None:
        activation_module = None
    elif activation is nn.Softmax:
        activation_module = activation(dim=1)
    elif activation is nn.Sigmoid:
        activation_module = activation()
    else:
        raise NotImplementedError(
            f"{activation} is not supported as an X3D head activation; use Softmax, Sigmoid or None"
        )

    projected_pool = ProjectedPool(
        pre_conv=nn.Conv3d(dim_in, dim_inner, kernel_size=(1, 1, 1), bias=False),
        pre_norm=norm(num_features=dim_inner, eps=norm_eps, momentum=norm_momentum),
        pre_act=None if pool_act is None else pool_act(),
        pool=nn.AdaptiveAvgPool3d((1, 1, 1)) if pool_kernel_size is None else nn.AvgPool3d(pool_kernel_size, stride=1),
        post_conv=nn.Conv3d(dim_inner, dim_out, kernel_size=(1, 1, 1), bias=False),
        post_norm=norm(num_features=dim_out, eps=norm_eps, momentum=norm_momentum) if bn_lin5_on else None,
        post_act=None if pool_act is None else pool_act(),
    )
    return ResNetBasicHead(
        proj=nn.Linear(dim_out, num_classes, bias=True),
        activation=activation_module,
        pool=projected_pool,
        dropout=nn.Dropout(dropout_rate) if dropout_rate > 0 else None,
        output_pool=nn.AdaptiveAvgPool3d(1) if output_with_global_average else None,
    )


def create_x3d(
    *,
    input_channel: int = 3,
    input_clip_length: int = 13,
    input_crop_size: int = 160,
    model_num_class: int = 400,
    dropout_rate: float = 0.5,
    width_factor: float = 2.0,
    depth_factor: float = 2.2,
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
    stem_dim_in: int = 12,
    stem_conv_kernel_size: Tuple[int] = (5, 3, 3),
    stem_conv_stride: Tuple[int] = (1, 2, 2),
    stage_conv_kernel_size: Tuple[Tuple[int]] = ((3, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    stage_spatial_stride: Tuple[int] = (2, 2, 2, 2),
    stage_temporal_stride: Tuple[int] = (1, 1, 1, 1),
    bottleneck: Callable = create_x3d_bottleneck_block,
    bottleneck_factor: float = 2.25,
    se_ratio: float = 0.0625,
    inner_act: Callable = Swish,
    head_dim_out: int = 2048,
    head_pool_act: Callable = nn.ReLU,
    head_bn_lin5_on: bool = False,
    head_activation: Callable = None,
    head_output_with_global_average: bool = True,
) -> nn.Module:
    """X3D network. XS/S/M/L differ only in clip length, crop size and (for L) ``depth_factor=5.0``.

    Stage widths are ``round_width(stem_dim_in * 2**i, width_factor)``, depths ``ceil(depth_factor * [1,2,5,3])``,
    and the head pools over the whole final feature map, computed from the clip length and crop size.
    """
    torch._C._log_api_usage_once("PYVIDEO.model.create_x3d")
    total_spatial_stride = stem_conv_stride[1] * math.prod(stage_spatial_stride)
    total_temporal_stride = stem_conv_stride[0] * math.prod(stage_temporal_stride)
    if input_clip_length < total_temporal_stride:
        raise ValueError(
            f"input_clip_length {input_clip_length} is shorter than the temporal stride {total_temporal_stride}"
        )
    if input_crop_size < total_spatial_stride:
        raise ValueError(f"input_crop_size {input_crop_size} is smaller than the spatial stride {total_spatial_stride}")

    stem_dim_out = round_width(stem_dim_in, width_factor)
    blocks = [
        create_x3d_stem(
            in_channels=input_channel,
            out_channels=stem_dim_out,
            conv_kernel_size=stem_conv_kernel_size,
            conv_stride=stem_conv_stride,
            conv_padding=[size // 2 for size in stem_conv_kernel_size],
            norm=norm,
            norm_eps=norm_eps,
            norm_momentum=norm_momentum,
            activation=activation,
        )
    ]

    base_depths = (1, 2, 5, 3)
    base_widths = [stem_dim_in]
    for _ in range(len(base_depths) - 1):
        base_widths.append(round_width(base_widths[-1], 2.0, divisor=8))

    dim_in = stem_dim_out
    for idx, base_depth in enumerate(base_depths):
        dim_out = round_width(base_widths[idx], width_factor)
        dim_inner = int(bottleneck_factor * dim_out)
        blocks.append(
            create_x3d_res_stage(
                depth=round_repeats(base_depth, depth_factor),
                dim_in=dim_in,
                dim_inner=dim_inner,
                dim_out=dim_out,
                bottleneck=bottleneck,
                conv_kernel_size=stage_conv_kernel_size[idx],
                conv_stride=(stage_temporal_stride[idx], stage_spatial_stride[idx], stage_spatial_stride[idx]),
                norm=norm,
                norm_eps=norm_eps,
                norm_momentum=norm_momentum,
                se_ratio=se_ratio,
                activation=activation,
                inner_act=inner_act,
            )
        )
        dim_in = dim_out

    spatial_pool = int(math.ceil(input_crop_size / total_spatial_stride))
    blocks.append(
        create_x3d_head(
            dim_in=dim_out,
            dim_inner=dim_inner,
            dim_out=head_dim_out,
            num_classes=model_num_class,
            pool_act=head_pool_act,
            pool_kernel_size=(input_clip_length // total_temporal_stride, spatial_pool, spatial_pool),
            norm=norm,
            norm_eps=norm_eps,
            norm_momentum=norm_momentum,
            bn_lin5_on=head_bn_lin5_on,
            dropout_rate=dropout_rate,
            activation=head_activation,
            output_with_global_average=head_output_with_global_average,
        )
    )
    return Net(blocks=nn.ModuleList(blocks))


class ProjectedPool(nn.Module):
    """pre_conv → pre_norm → pre_act → pool → post_conv → post_norm → post_act (norms/acts optional)."""

    def __init__(
        self,
        *,
        pre_conv: nn.Module = None,
        pre_norm: nn.Module = None,
        pre_act: nn.Module = None,
        pool: nn.Module = None,
        post_conv: nn.Module = None,
        post_norm: nn.Module = None,
        post_act: nn.Module = None,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if None in (self.pre_conv, self.pool, self.post_conv):
            raise ValueError("ProjectedPool needs pre_conv, pool and post_conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = (self.pre_conv, self.pre_norm, self.pre_act, self.pool, self.post_conv, self.post_norm, self.post_act)
        for layer in layers:
            if layer is not None:
                x = layer(x)
        return x
