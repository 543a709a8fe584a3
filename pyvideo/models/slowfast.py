"""SlowFast networks (Feichtenhofer et al., 2019): a slow, wide pathway and a fast, thin one, fused laterally."""
from typing import Callable, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from pyvideo.layers.utils import set_attributes
from pyvideo.models.head import create_res_basic_head, create_res_roi_pooling_head
from pyvideo.models.net import DetectionBBoxNetwork, MultiPathWayWithFuse, Net
from pyvideo.models.resnet import _check_depth, _conv_b_padding, _half_kernel, create_bottleneck_block, create_res_stage
from pyvideo.models.stem import create_res_basic_stem

_MODEL_STAGE_DEPTH = {18: (1, 1, 1, 1), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

_SLOW_CONV_A = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1))
_FAST_CONV_A = ((3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1))
_CONV_B = ((1, 3, 3), (1, 3, 3), (1, 3, 3), (1, 3, 3))
_NO_DILATION = ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1))
_LAST_STAGE_DILATED = ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 2, 2))
_BOTTLENECKS = (create_bottleneck_block,) * 4


def create_slowfast(
    *,
    slowfast_channel_reduction_ratio: Union[Tuple[int], int] = (8,),
    slowfast_conv_channel_fusion_ratio: int = 2,
    slowfast_fusion_conv_kernel_size: Tuple[int] = (7, 1, 1),
    slowfast_fusion_conv_stride: Tuple[int] = (4, 1, 1),
    fusion_builder: Callable[[int, int], nn.Module] = None,
    input_channels: Tuple[int] = (3, 3),
    model_depth: int = 50,
    model_num_class: int = 400,
    dropout_rate: float = 0.5,
    norm: Callable = nn.BatchNorm3d,
    activation: Callable = nn.ReLU,
    stem_function: Tuple[Callable] = (create_res_basic_stem, create_res_basic_stem),
    stem_dim_outs: Tuple[int] = (64, 8),
    stem_conv_kernel_sizes: Tuple[Tuple[int]] = ((1, 7, 7), (5, 7, 7)),
    stem_conv_strides: Tuple[Tuple[int]] = ((1, 2, 2), (1, 2, 2)),
    stem_pool: Union[Callable, Tuple[Callable]] = (nn.MaxPool3d, nn.MaxPool3d),
    stem_pool_kernel_sizes: Tuple[Tuple[int]] = ((1, 3, 3), (1, 3, 3)),
    stem_pool_strides: Tuple[Tuple[int]] = ((1, 2, 2), (1, 2, 2)),
    stage_conv_a_kernel_sizes: Tuple[Tuple[Tuple[int]]] = (_SLOW_CONV_A, _FAST_CONV_A),
    stage_conv_b_kernel_sizes: Tuple[Tuple[Tuple[int]]] = (_CONV_B, _CONV_B),
    stage_conv_b_num_groups: Tuple[Tuple[int]] = ((1, 1, 1, 1), (1, 1, 1, 1)),
    stage_conv_b_dilations: Tuple[Tuple[Tuple[int]]] = (_NO_DILATION, _NO_DILATION),
    stage_spatial_strides: Tuple[Tuple[int]] = ((1, 2, 2, 2), (1, 2, 2, 2)),
    stage_temporal_strides: Tuple[Tuple[int]] = ((1, 1, 1, 1), (1, 1, 1, 1)),
    bottleneck: Union[Callable, Tuple[Tuple[Callable]]] = (_BOTTLENECKS, _BOTTLENECKS),
    head: Callable = create_res_basic_head,
    head_pool: Callable = nn.AvgPool3d,
    head_pool_kernel_sizes: Tuple[Tuple[int]] = ((8, 7, 7), (32, 7, 7)),
    head_output_size: Tuple[int] = (1, 1, 1),
    head_activation: Callable = None,
    head_output_with_global_average: bool = True,
) -> nn.Module:
    """SlowFast for classification; the input is a list ``[slow_clip, fast_clip]`` (fast has alpha x frames).

    Blocks: [stems, 4 stages (each a ``MultiPathWayWithFuse`` with fast→slow fusion), ``PoolConcatPathway``,
    head]. With ``head=None`` the model ends after ``PoolConcatPathway`` (used by the detection builder).
    Any number of pathways works: pathway i > 0 has the slow widths divided by
    ``slowfast_channel_reduction_ratio[i-1]``.
    """
    torch._C._log_api_usage_once("PYVIDEO.model.create_slowfast")
    num_pathways = len(input_channels)
    stage_depths = _check_depth(model_depth, _MODEL_STAGE_DEPTH)
    if isinstance(slowfast_channel_reduction_ratio, int):
        slowfast_channel_reduction_ratio = (slowfast_channel_reduction_ratio,)
    if len(slowfast_channel_reduction_ratio) != num_pathways - 1:
        raise ValueError(
            f"{num_pathways} pathways need {num_pathways - 1} channel reduction ratios, "
            f"got {tuple(slowfast_channel_reduction_ratio)}"
        )
    if callable(stem_pool):
        stem_pool = (stem_pool,) * num_pathways
    if callable(bottleneck):
        bottleneck = ((bottleneck,) * len(stage_depths),) * num_pathways
    if fusion_builder is None:
        fusion_builder = FastToSlowFusionBuilder(
            slowfast_channel_reduction_ratio=slowfast_channel_reduction_ratio[0],
            conv_fusion_channel_ratio=slowfast_conv_channel_fusion_ratio,
            conv_kernel_size=slowfast_fusion_conv_kernel_size,
            conv_stride=slowfast_fusion_conv_stride,
            norm=norm,
            activation=activation,
            max_stage_idx=len(stage_depths) - 1,
        ).create_module

    stems = [
        stem_function[p](
            in_channels=input_channels[p],
            out_channels=stem_dim_outs[p],
            conv_kernel_size=stem_conv_kernel_sizes[p],
            conv_stride=stem_conv_strides[p],
            conv_padding=_half_kernel(stem_conv_kernel_sizes[p]),
            pool=stem_pool[p],
            pool_kernel_size=stem_pool_kernel_sizes[p],
            pool_stride=stem_pool_strides[p],
            pool_padding=_half_kernel(stem_pool_kernel_sizes[p]),
            norm=norm,
            activation=activation,
        )
        for p in range(num_pathways)
    ]
    # inplace=False on the first block: the caller's input list is never overwritten
    blocks = [
        MultiPathWayWithFuse(
            multipathway_blocks=nn.ModuleList(stems),
            multipathway_fusion=fusion_builder(fusion_dim_in=stem_dim_outs[0], stage_idx=0),
            inplace=False,
        )
    ]

    stage_dim_in, stage_dim_out = stem_dim_outs[0], stem_dim_outs[0] * 4
    for idx, depth in enumerate(stage_depths):
        # the slow pathway also receives the fused fast features (fusion_ratio * dim / beta channels)
        fused_fast_dim = stage_dim_in * slowfast_conv_channel_fusion_ratio // slowfast_channel_reduction_ratio[0]
        dims_in = [stage_dim_in + fused_fast_dim]
        dims_inner = [stage_dim_out // 4]
        dims_out = [stage_dim_out]
        for ratio in slowfast_channel_reduction_ratio:
            dims_in.append(stage_dim_in // ratio)
            dims_inner.append(stage_dim_out // 4 // ratio)
            dims_out.append(stage_dim_out // ratio)

        pathway_stages = []
        for p in range(num_pathways):
            conv_a_kernel = stage_conv_a_kernel_sizes[p][idx]
            conv_b_kernel = stage_conv_b_kernel_sizes[p][idx]
            pathway_stages.append(
                create_res_stage(
                    depth=depth,
                    dim_in=dims_in[p],
                    dim_inner=dims_inner[p],
                    dim_out=dims_out[p],
                    bottleneck=bottleneck[p][idx],
                    conv_a_kernel_size=conv_a_kernel,
                    conv_a_stride=(stage_temporal_strides[p][idx], 1, 1),
                    conv_a_padding=_half_kernel(conv_a_kernel),
                    conv_b_kernel_size=conv_b_kernel,
                    conv_b_stride=(1, stage_spatial_strides[p][idx], stage_spatial_strides[p][idx]),
                    conv_b_padding=_conv_b_padding(conv_b_kernel, stage_conv_b_dilations[p][idx]),
                    conv_b_num_groups=stage_conv_b_num_groups[p][idx],
                    conv_b_dilation=stage_conv_b_dilations[p][idx],
                    norm=norm,
                    activation=activation,
                )
            )
        blocks.append(
            MultiPathWayWithFuse(
                multipathway_blocks=nn.ModuleList(pathway_stages),
                multipathway_fusion=fusion_builder(fusion_dim_in=stage_dim_out, stage_idx=idx + 1),
            )
        )
        stage_dim_in, stage_dim_out = stage_dim_out, stage_dim_out * 2

    blocks.append(
        PoolConcatPathway(
            retain_list=False,
            pool=_pathway_pools(head_pool, head_pool_kernel_sizes, head_output_size, num_pathways),
        )
    )
    if head is not None:
        head_in_features = stage_dim_in + sum(stage_dim_in // ratio for ratio in slowfast_channel_reduction_ratio)
        blocks.append(
            head(
                in_features=head_in_features,
                out_features=model_num_class,
                pool=None,
                output_size=head_output_size,
                dropout_rate=dropout_rate,
                activation=head_activation,
                output_with_global_average=head_output_with_global_average,
            )
        )
    return Net(blocks=nn.ModuleList(blocks))


def _pathway_pools(head_pool, kernel_sizes, output_size, num_pathways) -> Optional[nn.ModuleList]:
    if head_pool is None:
        return None
    if head_pool is nn.AdaptiveAvgPool3d:
        return nn.ModuleList([head_pool(output_size) for _ in range(num_pathways)])
    if head_pool is nn.AvgPool3d:
        return nn.ModuleList(
            [head_pool(kernel_size=kernel_sizes[p], stride=(1, 1, 1), padding=(0, 0, 0)) for p in range(num_pathways)]
        )
    raise NotImplementedError(f"unsupported head_pool {head_pool}; use nn.AvgPool3d, nn.AdaptiveAvgPool3d or None")


_ROI_HEAD_ONLY_ARGS = ("head", "head_spatial_resolution", "head_spatial_scale", "head_sampling_ratio")


def create_slowfast_with_roi_head(
    *,
    slowfast_channel_reduction_ratio: Union[Tuple[int], int] = (8,),
    slowfast_conv_channel_fusion_ratio: int = 2,
    slowfast_fusion_conv_kernel_size: Tuple[int] = (7, 1, 1),
    slowfast_fusion_conv_stride: Tuple[int] = (4, 1, 1),
    fusion_builder: Callable[[int, int], nn.Module] = None,
    input_channels: Tuple[int] = (3, 3),
    model_depth: int = 50,
    model_num_class: int = 80,
    dropout_rate: float = 0.5,
    norm: Callable = nn.BatchNorm3d,
    activation: Callable = nn.ReLU,
    stem_function: Tuple[Callable] = (create_res_basic_stem, create_res_basic_stem),
    stem_dim_outs: Tuple[int] = (64, 8),
    stem_conv_kernel_sizes: Tuple[Tuple[int]] = ((1, 7, 7), (5, 7, 7)),
    stem_conv_strides: Tuple[Tuple[int]] = ((1, 2, 2), (1, 2, 2)),
    stem_pool: Union[Callable, Tuple[Callable]] = (nn.MaxPool3d, nn.MaxPool3d),
    stem_pool_kernel_sizes: Tuple[Tuple[int]] = ((1, 3, 3), (1, 3, 3)),
    stem_pool_strides: Tuple[Tuple[int]] = ((1, 2, 2), (1, 2, 2)),
    stage_conv_a_kernel_sizes: Tuple[Tuple[Tuple[int]]] = (_SLOW_CONV_A, _FAST_CONV_A),
    stage_conv_b_kernel_sizes: Tuple[Tuple[Tuple[int]]] = (_CONV_B, _CONV_B),
    stage_conv_b_num_groups: Tuple[Tuple[int]] = ((1, 1, 1, 1), (1, 1, 1, 1)),
    stage_conv_b_dilations: Tuple[Tuple[Tuple[int]]] = (_LAST_STAGE_DILATED, _LAST_STAGE_DILATED),
    stage_spatial_strides: Tuple[Tuple[int]] = ((1, 2, 2, 1), (1, 2, 2, 1)),
    stage_temporal_strides: Tuple[Tuple[int]] = ((1, 1, 1, 1), (1, 1, 1, 1)),
    bottleneck: Union[Callable, Tuple[Tuple[Callable]]] = (_BOTTLENECKS, _BOTTLENECKS),
    head: Callable = create_res_roi_pooling_head,
    head_pool: Callable = nn.AvgPool3d,
    head_pool_kernel_sizes: Tuple[Tuple[int]] = ((8, 1, 1), (32, 1, 1)),
    head_output_size: Tuple[int] = (1, 1, 1),
    head_activation: Callable = nn.Sigmoid,
    head_output_with_global_average: bool = False,
    head_spatial_resolution: Tuple[int] = (7, 7),
    head_spatial_scale: float = 1.0 / 16.0,
    head_sampling_ratio: int = 0,
) -> nn.Module:
    """SlowFast detector (AVA): temporal pooling per pathway, then an RoI head.

    Call as ``model([slow, fast], boxes)``; the last stage is dilated rather than strided (stride 16 overall).
    """
    backbone_args = {name: value for name, value in locals().items() if name not in _ROI_HEAD_ONLY_ARGS}
    # the backbone keeps the per-pathway temporal pooling (PoolConcatPathway) and drops the classifier
    backbone = create_slowfast(head=None, **backbone_args)
    final_dim = stem_dim_outs[0] * 4 * 2 ** (len(_MODEL_STAGE_DEPTH[model_depth]) - 1)
    ratios = (
        (slowfast_channel_reduction_ratio,)
        if isinstance(slowfast_channel_reduction_ratio, int)
        else slowfast_channel_reduction_ratio
    )
    detection_head = head(
        in_features=final_dim + sum(final_dim // ratio for ratio in ratios),
        out_features=model_num_class,
        pool=None,
        output_size=head_output_size,
        dropout_rate=dropout_rate,
        activation=head_activation,
        output_with_global_average=head_output_with_global_average,
        resolution=head_spatial_resolution,
        spatial_scale=head_spatial_scale,
        sampling_ratio=head_sampling_ratio,
    )
    return DetectionBBoxNetwork(backbone, detection_head)


class PoolConcatPathway(nn.Module):
    """Pools each pathway (optionally) and concatenates them along ``dim`` (channels)."""

    def __init__(self, retain_list: bool = False, pool: Optional[nn.ModuleList] = None, dim: int = 1) -> None:
        super().__init__()
        set_attributes(self, locals())

    def forward(self, x: List[torch.Tensor]) -> Union[torch.Tensor, List[torch.Tensor]]:
        if self.pool is not None and len(x) != len(self.pool):
            raise ValueError(f"PoolConcatPathway has {len(self.pool)} pools but got {len(x)} pathways")
        outputs = []
        for index, pathway in enumerate(x):
            if pathway is None:
                continue
            if self.pool is not None and self.pool[index] is not None:
                pathway = self.pool[index](pathway)
            outputs.append(pathway)
        fused = torch.cat(outputs, self.dim)
        return [fused] if self.retain_list else fused


class FastToSlowFusionBuilder:
    """Builds the lateral fast→slow fusion for each stage (``create_module``); Identity past ``max_stage_idx``."""

    def __init__(
        self,
        slowfast_channel_reduction_ratio: int,
        conv_fusion_channel_ratio: float,
        conv_kernel_size: Tuple[int],
        conv_stride: Tuple[int],
        norm: Callable = nn.BatchNorm3d,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        activation: Callable = nn.ReLU,
        max_stage_idx: int = 3,
    ) -> None:
        set_attributes(self, locals())

    def create_module(self, fusion_dim_in: int, stage_idx: int) -> nn.Module:
        if stage_idx > self.max_stage_idx:
            return nn.Identity()
        conv_dim_in = fusion_dim_in // self.slowfast_channel_reduction_ratio
        conv_dim_out = int(conv_dim_in * self.conv_fusion_channel_ratio)
        return FuseFastToSlow(
            conv_fast_to_slow=nn.Conv3d(
                conv_dim_in,
                conv_dim_out,
                kernel_size=self.conv_kernel_size,
                stride=self.conv_stride,
                padding=[size // 2 for size in self.conv_kernel_size],
                bias=False,
            ),
            norm=None
            if self.norm is None
            else self.norm(num_features=conv_dim_out, eps=self.norm_eps, momentum=self.norm_momentum),
            activation=None if self.activation is None else self.activation(),
        )


class FuseFastToSlow(nn.Module):
    """Time-strided conv of the fast pathway, concatenated onto the slow pathway; returns [slow', fast]."""

    def __init__(
        self,
        conv_fast_to_slow: nn.Module,
        norm: Optional[nn.Module] = None,
        activation: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        x_slow, x_fast = x[0], x[1]
        fuse = self.conv_fast_to_slow(x_fast)
        if self.norm is not None:
            fuse = self.norm(fuse)
        if self.activation is not None:
            fuse = self.activation(fuse)
        if not isinstance(fuse, torch.fx.Proxy) and fuse.shape[2:] != x_slow.shape[2:]:  # (not while fx traces)
            raise ValueError(
                f"fast pathway {tuple(x_fast.shape)} does not match slow pathway {tuple(x_slow.shape)} after the "
                f"fusion conv (got {tuple(fuse.shape)}); the fast clip needs alpha x the slow clip's frames"
            )
        return [torch.cat([x_slow, fuse], 1)] + list(x[1:])
