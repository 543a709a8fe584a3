"""R(2+1)D (Tran et al., 2018): bottleneck ResNets whose 3x3x3 conv is factorised into time then space."""
from functools import partial
from typing import Callable, Tuple

import torch
import torch.nn as nn

from pyvideo.layers.convolutions import create_conv_2plus1d
from pyvideo.models.head import create_res_basic_head
from pyvideo.models.net import Net
from pyvideo.models.resnet import (
    _MODEL_STAGE_DEPTH,
    _check_depth,
    _half_kernel,
    create_bottleneck_block,
    create_res_stage,
)
from pyvideo.models.stem import create_res_basic_stem


def create_2plus1d_bottleneck_block(
    *,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    conv_a_kernel_size: Tuple[int] = (1, 1, 1),
    conv_a_stride: Tuple[int] = (1, 1, 1),
    conv_a_padding: Tuple[int] = (0, 0, 0),
    conv_a: Callable = nn.Conv3d,
    conv_b_kernel_size: Tuple[int] = (3, 3, 3),
    conv_b_stride: Tuple[int] = (2, 2, 2),
    conv_b_padding: Tuple[int] = (1, 1, 1),
    conv_b_num_groups: int = 1,
    conv_b_dilation: Tuple[int] = (1, 1, 1),
    conv_b: Callable = create_conv_2plus1d,
    conv_c: Callable = nn.Conv3d,
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """Bottleneck whose conv_b is a (2+1)D conv with its own inner norm and activation.

    The (2+1)D conv is always used: ``conv_b`` is accepted so the block fits ``create_res_block``'s
    calling convention (which passes ``nn.Conv3d``), and is ignored, as upstream.
    """
    return create_bottleneck_block(
        dim_in=dim_in,
        dim_inner=dim_inner,
        dim_out=dim_out,
        conv_a_kernel_size=conv_a_kernel_size,
        conv_a_stride=conv_a_stride,
        conv_a_padding=conv_a_padding,
        conv_a=conv_a,
        conv_b_kernel_size=conv_b_kernel_size,
        conv_b_stride=conv_b_stride,
        conv_b_padding=conv_b_padding,
        conv_b_num_groups=conv_b_num_groups,
        conv_b_dilation=conv_b_dilation,
        conv_b=partial(
            create_conv_2plus1d, norm=norm, norm_eps=norm_eps, norm_momentum=norm_momentum, activation=activation
        ),
        conv_c=conv_c,
        norm=norm,
        norm_eps=norm_eps,
        norm_momentum=norm_momentum,
        activation=activation,
    )


def create_r2plus1d(
    *,
    input_channel: int = 3,
    model_depth: int = 50,
    model_num_class: int = 400,
    dropout_rate: float = 0.0,
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
    stem_dim_out: int = 64,
    stem_conv_kernel_size: Tuple[int] = (1, 7, 7),
    stem_conv_stride: Tuple[int] = (1, 2, 2),
    stage_conv_a_kernel_size: Tuple[Tuple[int]] = ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    stage_conv_b_kernel_size: Tuple[Tuple[int]] = ((3, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    stage_conv_b_num_groups: Tuple[int] = (1, 1, 1, 1),
    stage_conv_b_dilation: Tuple[Tuple[int]] = ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    stage_spatial_stride: Tuple[int] = (2, 2, 2, 2),
    stage_temporal_stride: Tuple[int] = (1, 1, 2, 2),
    stage_bottleneck: Tuple[Callable] = (create_2plus1d_bottleneck_block,) * 4,
    head_pool: Callable = nn.AvgPool3d,
    head_pool_kernel_size: Tuple[int] = (4, 7, 7),
    head_output_size: Tuple[int] = (1, 1, 1),
    head_activation: Callable = nn.Softmax,
    head_output_with_global_average: bool = True,
) -> nn.Module:
    """R(2+1)D ResNet: stem without pooling, stages whose (2+1)D conv carries the stride.

    The default head applies Softmax (as upstream); pass ``head_activation=None`` when training
    with a loss that expects logits.
    """
    torch._C._log_api_usage_once("PYVIDEO.model.create_r2plus1d")
    stage_depths = _check_depth(model_depth, _MODEL_STAGE_DEPTH)
    blocks = [
        create_res_basic_stem(
            in_channels=input_channel,
            out_channels=stem_dim_out,
            conv_kernel_size=stem_conv_kernel_size,
            conv_stride=stem_conv_stride,
            conv_padding=_half_kernel(stem_conv_kernel_size),
            pool=None,
            norm=norm,
            activation=activation,
        )
    ]
    stage_dim_in, stage_dim_out = stem_dim_out, stem_dim_out * 4
    for idx, depth in enumerate(stage_depths):
        blocks.append(
            create_res_stage(
                depth=depth,
                dim_in=stage_dim_in,
                dim_inner=stage_dim_out // 4,
                dim_out=stage_dim_out,
                bottleneck=stage_bottleneck[idx],
                conv_a_kernel_size=stage_conv_a_kernel_size[idx],
                conv_a_stride=(1, 1, 1),
                conv_a_padding=_half_kernel(stage_conv_a_kernel_size[idx]),
                conv_b_kernel_size=stage_conv_b_kernel_size[idx],
                conv_b_stride=(stage_temporal_stride[idx], stage_spatial_stride[idx], stage_spatial_stride[idx]),
                conv_b_padding=_half_kernel(stage_conv_b_kernel_size[idx]),
                conv_b_num_groups=stage_conv_b_num_groups[idx],
                conv_b_dilation=stage_conv_b_dilation[idx],
                norm=norm,
                norm_eps=norm_eps,
                norm_momentum=norm_momentum,
                activation=activation,
            )
        )
        stage_dim_in, stage_dim_out = stage_dim_out, stage_dim_out * 2

    blocks.append(
        create_res_basic_head(
            in_features=stage_dim_in,
            out_features=model_num_class,
            pool=head_pool,
            output_size=head_output_size,
            pool_kernel_size=head_pool_kernel_size,
            dropout_rate=dropout_rate,
            activation=head_activation,
            output_with_global_average=head_output_with_global_average,
        )
    )
    return Net(blocks=nn.ModuleList(blocks))
