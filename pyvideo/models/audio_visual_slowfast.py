"""Audiovisual SlowFast (Xiao et al., 2020): slow, fast and audio pathways, with audio→(fast+slow) fusion.

The audio input is a log-mel spectrogram shaped (B, 1, T_audio, 1, F), with T_audio = 16 x slow frames.
"""
from typing import Callable, List, Tuple, Union

import torch
import torch.nn as nn

from pyvideo.layers.utils import set_attributes
from pyvideo.models.resnet import create_acoustic_bottleneck_block, create_bottleneck_block
from pyvideo.models.slowfast import create_slowfast
from pyvideo.models.stem import create_acoustic_res_basic_stem, create_res_basic_stem

_VISUAL = (create_bottleneck_block,) * 4
_AUDIO = (create_acoustic_bottleneck_block,) * 2 + (create_bottleneck_block,) * 2


def create_audio_visual_slowfast(
    *,
    slowfast_channel_reduction_ratio: Tuple[int] = (8, 2),
    slowfast_conv_channel_fusion_ratio: int = 2,
    fusion_builder: Callable[[int, int], nn.Module] = None,
    input_channels: Tuple[int] = (3, 3, 1),
    model_depth: int = 50,
    model_num_class: int = 400,
    dropout_rate: float = 0.5,
    norm: Callable = nn.BatchNorm3d,
    activation: Callable = nn.ReLU,
    stem_dim_outs: Tuple[int] = (64, 8, 32),
    stem_conv_kernel_sizes: Tuple[Tuple[int]] = ((1, 7, 7), (5, 7, 7), (9, 1, 9)),
    stem_conv_strides: Tuple[Tuple[int]] = ((1, 2, 2), (1, 2, 2), (1, 1, 1)),
    stem_pool: Tuple[Callable] = (nn.MaxPool3d, nn.MaxPool3d, None),
    stem_pool_kernel_sizes: Tuple[Tuple[int]] = ((1, 3, 3), (1, 3, 3), (1, 3, 3)),
    stem_pool_strides: Tuple[Tuple[int]] = ((1, 2, 2), (1, 2, 2), (1, 1, 1)),
    stage_conv_a_kernel_sizes: Tuple[Tuple[Tuple[int]]] = (
        ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1)),
        ((3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1)),
        ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    ),
    stage_conv_b_kernel_sizes: Tuple[Tuple[Tuple[int]]] = (
        ((1, 3, 3), (1, 3, 3), (1, 3, 3), (1, 3, 3)),
        ((1, 3, 3), (1, 3, 3), (1, 3, 3), (1, 3, 3)),
        ((3, 1, 3), (3, 1, 3), (3, 1, 3), (3, 1, 3)),
    ),
    stage_conv_b_num_groups: Tuple[Tuple[int]] = ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)),
    stage_conv_b_dilations: Tuple[Tuple[Tuple[int]]] = (
        ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
        ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
        ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    ),
    stage_spatial_strides: Tuple[Tuple[int]] = ((1, 2, 2, 2), (1, 2, 2, 2), (1, 2, 2, 2)),
    stage_temporal_strides: Tuple[Tuple[int]] = ((1, 1, 1, 1), (1, 1, 1, 1), (1, 2, 2, 2)),
    bottleneck: Tuple[Tuple[Callable]] = (_VISUAL, _VISUAL, _AUDIO),
    head_pool: Callable = nn.AvgPool3d,
    head_pool_kernel_sizes: Tuple[Tuple[int]] = ((8, 7, 7), (32, 7, 7), (16, 1, 10)),
    head_output_size: Tuple[int] = (1, 1, 1),
    head_activation: Callable = None,
    head_output_with_global_average: bool = True,
) -> nn.Module:
    """AVSlowFast; the input is ``[slow_clip, fast_clip, spectrogram]``."""
    torch._C._log_api_usage_once("PYVIDEO.model.create_audio_visual_slowfast")
    if fusion_builder is None:
        fusion_builder = AudioToSlowFastFusionBuilder(
            slowfast_channel_reduction_ratio=slowfast_channel_reduction_ratio[0],
            slowfast_audio_reduction_ratio=slowfast_channel_reduction_ratio[1],
            conv_fusion_channel_ratio=slowfast_conv_channel_fusion_ratio,
            conv_kernel_size=(7, 1, 1),
            conv_kernel_size_a=(5, 1, 1),
            conv_stride=(4, 1, 1),
            conv_stride_a=((16, 1, 1), (16, 1, 1), (8, 1, 1), (4, 1, 1), (2, 1, 1)),
            norm=norm,
            activation=activation,
        ).create_module
    return create_slowfast(
        slowfast_channel_reduction_ratio=slowfast_channel_reduction_ratio,
        slowfast_conv_channel_fusion_ratio=slowfast_conv_channel_fusion_ratio,
        fusion_builder=fusion_builder,
        input_channels=input_channels,
        model_depth=model_depth,
        model_num_class=model_num_class,
        dropout_rate=dropout_rate,
        norm=norm,
        activation=activation,
        stem_function=(create_res_basic_stem, create_res_basic_stem, create_acoustic_res_basic_stem),
        stem_dim_outs=stem_dim_outs,
        stem_conv_kernel_sizes=stem_conv_kernel_sizes,
        stem_conv_strides=stem_conv_strides,
        stem_pool=stem_pool,
        stem_pool_kernel_sizes=stem_pool_kernel_sizes,
        stem_pool_strides=stem_pool_strides,
        stage_conv_a_kernel_sizes=stage_conv_a_kernel_sizes,
        stage_conv_b_kernel_sizes=stage_conv_b_kernel_sizes,
        stage_conv_b_num_groups=stage_conv_b_num_groups,
        stage_conv_b_dilations=stage_conv_b_dilations,
        stage_spatial_strides=stage_spatial_strides,
        stage_temporal_strides=stage_temporal_strides,
        bottleneck=bottleneck,
        head_pool=head_pool,
        head_pool_kernel_sizes=head_pool_kernel_sizes,
        head_output_size=head_output_size,
        head_activation=head_activation,
        head_output_with_global_average=head_output_with_global_average,
    )


def _stage_value(value, stage_idx: int):
    """``value`` is either one 3-tuple or a tuple of 3-tuples indexed by stage."""
    return value[stage_idx] if isinstance(value[0], (tuple, list)) else value


class AudioToSlowFastFusionBuilder:
    """Builds per-stage fusion: fast→slow (as in SlowFast) plus audio→(slow+fused fast), added on."""

    def __init__(
        self,
        slowfast_channel_reduction_ratio: int,
        slowfast_audio_reduction_ratio: int,
        conv_fusion_channel_ratio: float,
        conv_kernel_size: Tuple[int],
        conv_kernel_size_a: Tuple[int],
        conv_stride: Union[Tuple[int], Tuple[Tuple[int]]],
        conv_stride_a: Union[Tuple[int], Tuple[Tuple[int]]],
        conv_fusion_channel_interm_dim: Union[int, float] = 0.25,
        conv_num_a: int = 2,
        norm: Callable = nn.BatchNorm3d,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        activation: Callable = nn.ReLU,
        max_stage_idx: int = 3,
    ) -> None:
        set_attributes(self, locals())

    def _conv_norm_act(self, dim_in: int, dim_out: int, kernel: Tuple[int], stride: Tuple[int]) -> List[nn.Module]:
        layers = [
            nn.Conv3d(dim_in, dim_out, kernel_size=kernel, stride=stride, padding=[k // 2 for k in kernel], bias=False)
        ]
        if self.norm is not None:
            layers.append(self.norm(num_features=dim_out, eps=self.norm_eps, momentum=self.norm_momentum))
        if self.activation is not None:
            layers.append(self.activation())
        return layers

    def create_module(self, fusion_dim_in: int, stage_idx: int) -> nn.Module:
        if stage_idx > self.max_stage_idx:
            return nn.Identity()
        conv_dim_in = fusion_dim_in // self.slowfast_channel_reduction_ratio
        conv_dim_in_a = fusion_dim_in // self.slowfast_audio_reduction_ratio
        fast_to_slow_dim = int(conv_dim_in * self.conv_fusion_channel_ratio)
        fast_to_slow = self._conv_norm_act(
            conv_dim_in, fast_to_slow_dim, self.conv_kernel_size, _stage_value(self.conv_stride, stage_idx)
        )

        if isinstance(self.conv_fusion_channel_interm_dim, int):
            interm_dim = self.conv_fusion_channel_interm_dim
        else:
            interm_dim = int(conv_dim_in_a * self.conv_fusion_channel_interm_dim)
        audio_layers = []
        dim_in = conv_dim_in_a
        for index in range(self.conv_num_a):
            last = index == self.conv_num_a - 1
            # the last conv matches the fused slow pathway: its channels and its frame rate
            dim_out = fast_to_slow_dim + fusion_dim_in if last else interm_dim
            stride = _stage_value(self.conv_stride_a, stage_idx) if last else (1, 1, 1)
            audio_layers += self._conv_norm_act(dim_in, dim_out, self.conv_kernel_size_a, stride)
            dim_in = dim_out
        return FuseAudioToFastSlow(
            block_fast_to_slow=nn.Sequential(*fast_to_slow),
            block_audio_to_fastslow=nn.Sequential(*audio_layers),
        )


class FuseAudioToFastSlow(nn.Module):
    """slow' = cat(slow, f(fast)) + g(mean-over-frequency(audio)); returns [slow', fast, audio]."""

    def __init__(self, block_fast_to_slow: nn.Module, block_audio_to_fastslow: nn.Module) -> None:
        super().__init__()
        set_attributes(self, locals())

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        x_slow, x_fast, x_audio = x[0], x[1], x[2]
        fuse = self.block_fast_to_slow(x_fast)
        audio_per_frame = torch.mean(x_audio, dim=-1, keepdim=True)  # collapse frequency
        fuse_audio = self.block_audio_to_fastslow(audio_per_frame)
        return [fuse_audio + torch.cat([x_slow, fuse], 1), x_fast, x_audio]
