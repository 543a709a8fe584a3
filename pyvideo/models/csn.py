"""Channel-Separated Networks (Tran et al., 2019): ResNets whose 3x3x3 conv is depthwise."""
from typing import Callable, Tuple

import torch
import torch.nn as nn

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


def create_csn(
    *,
    input_channel: int = 3,
    model_depth: int = 50,
    model_num_class: int = 400,
    dropout_rate: float = 0,
    norm: Callable = nn.BatchNorm3d,
    activation: Callable = nn.ReLU,
    stem_dim_out: int = 64,
    stem_conv_kernel_size: Tuple[int] = (3, 7, 7),
    stem_conv_stride: Tuple[int] = (1, 2, 2),
    stem_pool: Callable = None,
    stem_pool_kernel_size: Tuple[int] = (1, 3, 3),
    stem_pool_stride: Tuple[int] = (1, 2, 2),
    stage_conv_a_kernel_size: Tuple[int] = (1, 1, 1),
    stage_conv_b_kernel_size: Tuple[int] = (3, 3, 3),
    stage_conv_b_width_per_group: int = 1,
    stage_spatial_stride: Tuple[int] = (1, 2, 2, 2),
    stage_temporal_stride: Tuple[int] = (1, 2, 2, 2),
    bottleneck: Callable = create_bottleneck_block,
    bottleneck_ratio: int = 4,
    head_pool: Callable = nn.AvgPool3d,
    head_pool_kernel_size: Tuple[int] = (1, 7, 7),
    head_output_size: Tuple[int] = (1, 1, 1),
    head_activation: Callable = None,
    head_output_with_global_average: bool = True,
) -> nn.Module:
    """ir-CSN: conv_b is grouped with ``stage_conv_b_width_per_group`` channels per group (1 = depthwise)
    and carries each stage's spatio-temporal stride."""
    torch._C._log_api_usage_once("PYVIDEO.model.create_csn")
    stage_depths = _check_depth(model_depth, _MODEL_STAGE_DEPTH)
    blocks = [
        create_res_basic_stem(
            in_channels=input_channel,
            out_channels=stem_dim_out,
            conv_kernel_size=stem_conv_kernel_size,
            conv_stride=stem_conv_stride,
            conv_padding=_half_kernel(stem_conv_kernel_size),
            pool=stem_pool,
            pool_kernel_size=stem_pool_kernel_size,
            pool_stride=stem_pool_stride,
            pool_padding=_half_kernel(stem_pool_kernel_size),
            norm=norm,
            activation=activation,
        )
    ]
    stage_dim_in, stage_dim_out = stem_dim_out, stem_dim_out * 4
    for idx, depth in enumerate(stage_depths):
        dim_inner = stage_dim_out // bottleneck_ratio
        if dim_inner % stage_conv_b_width_per_group:
            raise ValueError(
                f"inner width {dim_inner} is not divisible by width per group {stage_conv_b_width_per_group}"
            )
        blocks.append(
            create_res_stage(
                depth=depth,
                dim_in=stage_dim_in,
                dim_inner=dim_inner,
                dim_out=stage_dim_out,
                bottleneck=bottleneck,
                conv_a_kernel_size=stage_conv_a_kernel_size,
                conv_a_stride=(1, 1, 1),
                conv_a_padding=_half_kernel(stage_conv_a_kernel_size),
                conv_b_kernel_size=stage_conv_b_kernel_size,
                conv_b_stride=(stage_temporal_stride[idx], stage_spatial_stride[idx], stage_spatial_stride[idx]),
                conv_b_padding=_half_kernel(stage_conv_b_kernel_size),
                conv_b_num_groups=dim_inner // stage_conv_b_width_per_group,
                conv_b_dilation=(1, 1, 1),
                norm=norm,
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
