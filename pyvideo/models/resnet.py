"""3-D ResNets: bottleneck blocks, residual blocks and stages, and the C2D / I3D / Slow / acoustic builders."""
from typing import Callable, List, Sequence, Tuple, Union

import torch
import torch.nn as nn

from pyvideo.layers.utils import set_attributes
from pyvideo.models.head import create_res_basic_head, create_res_roi_pooling_head
from pyvideo.models.net import DetectionBBoxNetwork, Net
from pyvideo.models.stem import create_acoustic_res_basic_stem, create_res_basic_stem

# Blocks per stage for each supported depth.
_MODEL_STAGE_DEPTH = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def _make_norm(norm: Callable, num_features: int, eps: float, momentum: float):
    return None if norm is None else norm(num_features=num_features, eps=eps, momentum=momentum)


def _make_act(activation: Callable):
    return None if activation is None else activation()


def _half_kernel(kernel: Union[Sequence[int], Sequence[Sequence[int]]]):
    """"Same" padding k//2 for one kernel size, or for each kernel of a per-block list."""
    if isinstance(kernel[0], int):
        return [size // 2 for size in kernel]
    return [[size // 2 for size in sizes] for sizes in kernel]


def _broadcast_per_stage(value, num_stages: int):
    """A single 3-tuple means "the same for every stage"."""
    return (value,) * num_stages if isinstance(value[0], int) else value


def create_bottleneck_block(
    *,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    conv_a_kernel_size: Tuple[int] = (3, 1, 1),
    conv_a_stride: Tuple[int] = (2, 1, 1),
    conv_a_padding: Tuple[int] = (1, 0, 0),
    conv_a: Callable = nn.Conv3d,
    conv_b_kernel_size: Tuple[int] = (1, 3, 3),
    conv_b_stride: Tuple[int] = (1, 2, 2),
    conv_b_padding: Tuple[int] = (0, 1, 1),
    conv_b_num_groups: int = 1,
    conv_b_dilation: Tuple[int] = (1, 1, 1),
    conv_b: Callable = nn.Conv3d,
    conv_c: Callable = nn.Conv3d,
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """Bottleneck: conv_a (reduce) → norm → act → conv_b (spatio-temporal) → norm → act → conv_c (1x1x1) → norm.

    Every conv is bias-free; ``norm`` or ``activation`` may be None.
    """
    return BottleneckBlock(
        conv_a=conv_a(
            in_channels=dim_in,
            out_channels=dim_inner,
            kernel_size=conv_a_kernel_size,
            stride=conv_a_stride,
            padding=conv_a_padding,
            bias=False,
        ),
        norm_a=_make_norm(norm, dim_inner, norm_eps, norm_momentum),
        act_a=_make_act(activation),
        conv_b=conv_b(
            in_channels=dim_inner,
            out_channels=dim_inner,
            kernel_size=conv_b_kernel_size,
            stride=conv_b_stride,
            padding=conv_b_padding,
            bias=False,
            groups=conv_b_num_groups,
            dilation=conv_b_dilation,
        ),
        norm_b=_make_norm(norm, dim_inner, norm_eps, norm_momentum),
        act_b=_make_act(activation),
        conv_c=conv_c(in_channels=dim_inner, out_channels=dim_out, kernel_size=(1, 1, 1), bias=False),
        norm_c=_make_norm(norm, dim_out, norm_eps, norm_momentum),
    )


def create_acoustic_bottleneck_block(
    *,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    conv_a_kernel_size: Tuple[int] = (3, 1, 1),
    conv_a_stride: Tuple[int] = (2, 1, 1),
    conv_a_padding: Tuple[int] = (1, 0, 0),
    conv_a: Callable = nn.Conv3d,
    conv_b_kernel_size: Tuple[int] = (1, 1, 1),
    conv_b_stride: Tuple[int] = (1, 1, 1),
    conv_b_padding: Tuple[int] = (0, 0, 0),
    conv_b_num_groups: int = 1,
    conv_b_dilation: Tuple[int] = (1, 1, 1),
    conv_b: Callable = nn.Conv3d,
    conv_c: Callable = nn.Conv3d,
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """Bottleneck whose conv_b is split into a (1,kh,kw) spatial and a (kt,1,1) temporal conv, summed.

    The branch lists are ordered [spatial, temporal], matching upstream checkpoints.
    """

    def conv_b_branch(keep_axes: Tuple[bool, bool, bool]):
        def pick(values, neutral):
            return [value if keep else neutral for value, keep in zip(values, keep_axes)]

        return conv_b(
            in_channels=dim_inner,
            out_channels=dim_inner,
            kernel_size=pick(conv_b_kernel_size, 1),
            stride=conv_b_stride,
            padding=pick(conv_b_padding, 0),
            bias=False,
            groups=conv_b_num_groups,
            dilation=pick(conv_b_dilation, 1),
        )

    spatial, temporal = (False, True, True), (True, False, False)
    return SeparableBottleneckBlock(
        conv_a=conv_a(
            in_channels=dim_in,
            out_channels=dim_inner,
            kernel_size=conv_a_kernel_size,
            stride=conv_a_stride,
            padding=conv_a_padding,
            bias=False,
        ),
        norm_a=_make_norm(norm, dim_inner, norm_eps, norm_momentum),
        act_a=_make_act(activation),
        conv_b=nn.ModuleList([conv_b_branch(spatial), conv_b_branch(temporal)]),
        norm_b=nn.ModuleList([_make_norm(norm, dim_inner, norm_eps, norm_momentum) for _ in range(2)]),
        act_b=nn.ModuleList([_make_act(activation) for _ in range(2)]),
        conv_c=conv_c(in_channels=dim_inner, out_channels=dim_out, kernel_size=(1, 1, 1), bias=False),
        norm_c=_make_norm(norm, dim_out, norm_eps, norm_momentum),
    )


def _trivial_sum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # a named function (not a lambda) keeps models picklable
    return x + y


def create_res_block(
    *,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    bottleneck: Callable,
    use_shortcut: bool = False,
    branch_fusion: Callable = _trivial_sum,
    conv_a_kernel_size: Tuple[int] = (3, 1, 1),
    conv_a_stride: Tuple[int] = (2, 1, 1),
    conv_a_padding: Tuple[int] = (1, 0, 0),
    conv_a: Callable = nn.Conv3d,
    conv_b_kernel_size: Tuple[int] = (1, 3, 3),
    conv_b_stride: Tuple[int] = (1, 2, 2),
    conv_b_padding: Tuple[int] = (0, 1, 1),
    conv_b_num_groups: int = 1,
    conv_b_dilation: Tuple[int] = (1, 1, 1),
    conv_b: Callable = nn.Conv3d,
    conv_c: Callable = nn.Conv3d,
    conv_skip: Callable = nn.Conv3d,
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation_bottleneck: Callable = nn.ReLU,
    activation_block: Callable = nn.ReLU,
) -> nn.Module:
    """Residual block ``activation_block(branch_fusion(shortcut(x), bottleneck(x)))``.

    The shortcut is a strided 1x1x1 conv (+ norm) when the width or the stride changes, or when
    ``use_shortcut`` is set; otherwise it is the identity.
    """
    shortcut_stride = tuple(a * b for a, b in zip(conv_a_stride, conv_b_stride))
    needs_projection = use_shortcut or dim_in != dim_out or any(s != 1 for s in shortcut_stride)
    return ResBlock(
        branch1_conv=conv_skip(dim_in, dim_out, kernel_size=(1, 1, 1), stride=shortcut_stride, bias=False)
        if needs_projection
        else None,
        branch1_norm=_make_norm(norm, dim_out, norm_eps, norm_momentum) if needs_projection else None,
        branch2=bottleneck(
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
            conv_b=conv_b,
            conv_c=conv_c,
            norm=norm,
            norm_eps=norm_eps,
            norm_momentum=norm_momentum,
            activation=activation_bottleneck,
        ),
        activation=_make_act(activation_block),
        branch_fusion=branch_fusion,
    )


def create_res_stage(
    *,
    depth: int,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    bottleneck: Callable,
    conv_a_kernel_size: Union[Tuple[int], List[Tuple[int]]] = (3, 1, 1),
    conv_a_stride: Tuple[int] = (2, 1, 1),
    conv_a_padding: Union[Tuple[int], List[Tuple[int]]] = (1, 0, 0),
    conv_a: Callable = nn.Conv3d,
    conv_b_kernel_size: Tuple[int] = (1, 3, 3),
    conv_b_stride: Tuple[int] = (1, 2, 2),
    conv_b_padding: Tuple[int] = (0, 1, 1),
    conv_b_num_groups: int = 1,
    conv_b_dilation: Tuple[int] = (1, 1, 1),
    conv_b: Callable = nn.Conv3d,
    conv_c: Callable = nn.Conv3d,
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """``depth`` residual blocks; only block 0 is strided and changes width.

    ``conv_a_kernel_size`` / ``conv_a_padding`` may be one 3-tuple or a list of 3-tuples that is cycled
    over the blocks (e.g. I3D's alternating [(3,1,1), (1,1,1)]).
    """
    if depth < 1:
        raise ValueError(f"a stage needs depth >= 1, got {depth}")
    kernels = [conv_a_kernel_size] if isinstance(conv_a_kernel_size[0], int) else list(conv_a_kernel_size)
    paddings = [conv_a_padding] if isinstance(conv_a_padding[0], int) else list(conv_a_padding)
    res_blocks = []
    for index in range(depth):
        first = index == 0
        res_blocks.append(
            create_res_block(
                dim_in=dim_in if first else dim_out,
                dim_inner=dim_inner,
                dim_out=dim_out,
                bottleneck=bottleneck,
                conv_a_kernel_size=kernels[index % len(kernels)],
                conv_a_stride=conv_a_stride if first else (1, 1, 1),
                conv_a_padding=paddings[index % len(paddings)],
                conv_a=conv_a,
                conv_b_kernel_size=conv_b_kernel_size,
                conv_b_stride=conv_b_stride if first else (1, 1, 1),
                conv_b_padding=conv_b_padding,
                conv_b_num_groups=conv_b_num_groups,
                conv_b_dilation=conv_b_dilation,
                conv_b=conv_b,
                conv_c=conv_c,
                norm=norm,
                norm_eps=norm_eps,
                norm_momentum=norm_momentum,
                activation_bottleneck=activation,
                activation_block=activation,
            )
        )
    return ResStage(res_blocks=nn.ModuleList(res_blocks))


def _conv_b_padding(kernel: Tuple[int], dilation: Tuple[int]) -> Tuple[int, int, int]:
    """k//2 in time; in space the dilation when dilated (keeps 3x3 outputs the input size), else k//2."""
    return (
        kernel[0] // 2,
        dilation[1] if dilation[1] > 1 else kernel[1] // 2,
        dilation[2] if dilation[2] > 1 else kernel[2] // 2,
    )


def _check_depth(model_depth: int, table) -> Tuple[int, ...]:
    if model_depth not in table:
        raise ValueError(f"model_depth {model_depth} is not supported; choose one of {sorted(table)}")
    return table[model_depth]


def create_resnet(
    *,
    input_channel: int = 3,
    model_depth: int = 50,
    model_num_class: int = 400,
    dropout_rate: float = 0.5,
    norm: Callable = nn.BatchNorm3d,
    activation: Callable = nn.ReLU,
    stem_dim_out: int = 64,
    stem_conv_kernel_size: Tuple[int] = (3, 7, 7),
    stem_conv_stride: Tuple[int] = (1, 2, 2),
    stem_pool: Callable = nn.MaxPool3d,
    stem_pool_kernel_size: Tuple[int] = (1, 3, 3),
    stem_pool_stride: Tuple[int] = (1, 2, 2),
    stem: Callable = create_res_basic_stem,
    stage1_pool: Callable = None,
    stage1_pool_kernel_size: Tuple[int] = (2, 1, 1),
    stage_conv_a_kernel_size: Union[Tuple[int], Tuple[Tuple[int]]] = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1)),
    stage_conv_b_kernel_size: Union[Tuple[int], Tuple[Tuple[int]]] = ((1, 3, 3), (1, 3, 3), (1, 3, 3), (1, 3, 3)),
    stage_conv_b_num_groups: Tuple[int] = (1, 1, 1, 1),
    stage_conv_b_dilation: Union[Tuple[int], Tuple[Tuple[int]]] = ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    stage_spatial_h_stride: Tuple[int] = (1, 2, 2, 2),
    stage_spatial_w_stride: Tuple[int] = (1, 2, 2, 2),
    stage_temporal_stride: Tuple[int] = (1, 1, 1, 1),
    bottleneck: Union[Tuple[Callable], Callable] = create_bottleneck_block,
    head: Callable = create_res_basic_head,
    head_pool: Callable = nn.AvgPool3d,
    head_pool_kernel_size: Tuple[int] = (4, 7, 7),
    head_output_size: Tuple[int] = (1, 1, 1),
    head_activation: Callable = None,
    head_output_with_global_average: bool = True,
) -> nn.Module:
    """ResNet for video (C2D, I3D, Slow): stem → 4 stages (widths 256..2048) → head.

    ``stage1_pool`` (if given) becomes its own block after stage 1, shifting later block indices.
    With ``head=None`` the model ends at the last stage (used by the detection builder).
    """
    torch._C._log_api_usage_once("PYVIDEO.model.create_resnet")
    stage_depths = _check_depth(model_depth, _MODEL_STAGE_DEPTH)
    num_stages = len(stage_depths)
    stage_conv_a_kernel_size = _broadcast_per_stage(stage_conv_a_kernel_size, num_stages)
    stage_conv_b_kernel_size = _broadcast_per_stage(stage_conv_b_kernel_size, num_stages)
    stage_conv_b_dilation = _broadcast_per_stage(stage_conv_b_dilation, num_stages)
    if callable(bottleneck):
        bottleneck = (bottleneck,) * num_stages

    blocks = [
        stem(
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
    for idx in range(num_stages):
        blocks.append(
            create_res_stage(
                depth=stage_depths[idx],
                dim_in=stage_dim_in,
                dim_inner=stage_dim_out // 4,
                dim_out=stage_dim_out,
                bottleneck=bottleneck[idx],
                conv_a_kernel_size=stage_conv_a_kernel_size[idx],
                conv_a_stride=(stage_temporal_stride[idx], 1, 1),
                conv_a_padding=_half_kernel(stage_conv_a_kernel_size[idx]),
                conv_b_kernel_size=stage_conv_b_kernel_size[idx],
                conv_b_stride=(1, stage_spatial_h_stride[idx], stage_spatial_w_stride[idx]),
                conv_b_padding=_conv_b_padding(stage_conv_b_kernel_size[idx], stage_conv_b_dilation[idx]),
                conv_b_num_groups=stage_conv_b_num_groups[idx],
                conv_b_dilation=stage_conv_b_dilation[idx],
                norm=norm,
                activation=activation,
            )
        )
        if idx == 0 and stage1_pool is not None:
            blocks.append(
                stage1_pool(kernel_size=stage1_pool_kernel_size, stride=stage1_pool_kernel_size, padding=(0, 0, 0))
            )
        stage_dim_in, stage_dim_out = stage_dim_out, stage_dim_out * 2

    if head is not None:
        blocks.append(
            head(
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


def create_resnet_with_roi_head(
    *,
    input_channel: int = 3,
    model_depth: int = 50,
    model_num_class: int = 80,
    dropout_rate: float = 0.5,
    norm: Callable = nn.BatchNorm3d,
    activation: Callable = nn.ReLU,
    stem_dim_out: int = 64,
    stem_conv_kernel_size: Tuple[int] = (1, 7, 7),
    stem_conv_stride: Tuple[int] = (1, 2, 2),
    stem_pool: Callable = nn.MaxPool3d,
    stem_pool_kernel_size: Tuple[int] = (1, 3, 3),
    stem_pool_stride: Tuple[int] = (1, 2, 2),
    stem: Callable = create_res_basic_stem,
    stage1_pool: Callable = None,
    stage1_pool_kernel_size: Tuple[int] = (2, 1, 1),
    stage_conv_a_kernel_size: Union[Tuple[int], Tuple[Tuple[int]]] = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1)),
    stage_conv_b_kernel_size: Union[Tuple[int], Tuple[Tuple[int]]] = ((1, 3, 3), (1, 3, 3), (1, 3, 3), (1, 3, 3)),
    stage_conv_b_num_groups: Tuple[int] = (1, 1, 1, 1),
    stage_conv_b_dilation: Union[Tuple[int], Tuple[Tuple[int]]] = ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 2, 2)),
    stage_spatial_h_stride: Tuple[int] = (1, 2, 2, 1),
    stage_spatial_w_stride: Tuple[int] = (1, 2, 2, 1),
    stage_temporal_stride: Tuple[int] = (1, 1, 1, 1),
    bottleneck: Union[Tuple[Callable], Callable] = create_bottleneck_block,
    head: Callable = create_res_roi_pooling_head,
    head_pool: Callable = nn.AvgPool3d,
    head_pool_kernel_size: Tuple[int] = (4, 1, 1),
    head_output_size: Tuple[int] = (1, 1, 1),
    head_activation: Callable = nn.Sigmoid,
    head_output_with_global_average: bool = False,
    head_spatial_resolution: Tuple[int] = (7, 7),
    head_spatial_scale: float = 1.0 / 16.0,
    head_sampling_ratio: int = 0,
) -> nn.Module:
    """ResNet detector (AVA): a dilated, stride-16 ResNet and an RoI head; call as ``model(clip, boxes)``."""
    backbone = create_resnet(
        input_channel=input_channel,
        model_depth=model_depth,
        model_num_class=model_num_class,
        dropout_rate=dropout_rate,
        norm=norm,
        activation=activation,
        stem_dim_out=stem_dim_out,
        stem_conv_kernel_size=stem_conv_kernel_size,
        stem_conv_stride=stem_conv_stride,
        stem_pool=stem_pool,
        stem_pool_kernel_size=stem_pool_kernel_size,
        stem_pool_stride=stem_pool_stride,
        stem=stem,
        stage1_pool=stage1_pool,
        stage1_pool_kernel_size=stage1_pool_kernel_size,
        stage_conv_a_kernel_size=stage_conv_a_kernel_size,
        stage_conv_b_kernel_size=stage_conv_b_kernel_size,
        stage_conv_b_num_groups=stage_conv_b_num_groups,
        stage_conv_b_dilation=stage_conv_b_dilation,
        stage_spatial_h_stride=stage_spatial_h_stride,
        stage_spatial_w_stride=stage_spatial_w_stride,
        stage_temporal_stride=stage_temporal_stride,
        bottleneck=bottleneck,
        head=None,
    )
    detection_head = head(
        in_features=stem_dim_out * 2 ** (len(_MODEL_STAGE_DEPTH[model_depth]) + 1),
        out_features=model_num_class,
        pool=head_pool,
        output_size=head_output_size,
        pool_kernel_size=head_pool_kernel_size,
        dropout_rate=dropout_rate,
        activation=head_activation,
        output_with_global_average=head_output_with_global_average,
        resolution=head_spatial_resolution,
        spatial_scale=head_spatial_scale,
        sampling_ratio=head_sampling_ratio,
    )
    return DetectionBBoxNetwork(backbone, detection_head)


def create_acoustic_resnet(
    *,
    input_channel: int = 1,
    model_depth: int = 50,
    model_num_class: int = 400,
    dropout_rate: float = 0.5,
    norm: Callable = nn.BatchNorm3d,
    activation: Callable = nn.ReLU,
    stem_dim_out: int = 64,
    stem_conv_kernel_size: Tuple[int] = (9, 1, 9),
    stem_conv_stride: Tuple[int] = (1, 1, 3),
    stem_pool: Callable = None,
    stem_pool_kernel_size: Tuple[int] = (3, 1, 3),
    stem_pool_stride: Tuple[int] = (2, 1, 2),
    stem: Callable = create_acoustic_res_basic_stem,
    stage1_pool: Callable = None,
    stage1_pool_kernel_size: Tuple[int] = (2, 1, 1),
    stage_conv_a_kernel_size: Union[Tuple[int], Tuple[Tuple[int]]] = (3, 1, 1),
    stage_conv_b_kernel_size: Union[Tuple[int], Tuple[Tuple[int]]] = (3, 1, 3),
    stage_conv_b_num_groups: Tuple[int] = (1, 1, 1, 1),
    stage_conv_b_dilation: Union[Tuple[int], Tuple[Tuple[int]]] = (1, 1, 1),
    stage_spatial_h_stride: Tuple[int] = (1, 1, 1, 1),
    stage_spatial_w_stride: Tuple[int] = (1, 2, 2, 2),
    stage_temporal_stride: Tuple[int] = (1, 2, 2, 2),
    bottleneck: Union[Tuple[Callable], Callable] = (
        create_acoustic_bottleneck_block,
        create_acoustic_bottleneck_block,
        create_bottleneck_block,
        create_bottleneck_block,
    ),
    head_pool: Callable = nn.AvgPool3d,
    head_pool_kernel_size: Tuple[int] = (4, 1, 2),
    head_output_size: Tuple[int] = (1, 1, 1),
    head_activation: Callable = None,
    head_output_with_global_average: bool = True,
) -> nn.Module:
    """Audio ResNet on log-mel spectrograms shaped (B, 1, T, 1, F): time is T, frequency is "width"."""
    return create_resnet(**locals())


class ResBlock(nn.Module):
    """``activation(branch_fusion(shortcut, branch2(x)))``; the shortcut is identity unless branch1_conv is set."""

    def __init__(
        self,
        branch1_conv: nn.Module = None,
        branch1_norm: nn.Module = None,
        branch2: nn.Module = None,
        activation: nn.Module = None,
        branch_fusion: Callable = None,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if self.branch2 is None:
            raise ValueError("ResBlock needs a branch2 module")
        if self.branch_fusion is None:
            self.branch_fusion = _trivial_sum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            shortcut = self.branch1_conv(x)
            if self.branch1_norm is not None:
                shortcut = self.branch1_norm(shortcut)
        x = self.branch_fusion(shortcut, self.branch2(x))
        if self.activation is not None:
            x = self.activation(x)
        return x


class SeparableBottleneckBlock(nn.Module):
    """Bottleneck with several parallel conv_b branches reduced by "sum" or "cat" before conv_c."""

    def __init__(
        self,
        *,
        conv_a: nn.Module,
        norm_a: nn.Module,
        act_a: nn.Module,
        conv_b: nn.ModuleList,
        norm_b: nn.ModuleList,
        act_b: nn.ModuleList,
        conv_c: nn.Module,
        norm_c: nn.Module,
        reduce_method: str = "sum",
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if self.conv_b is None or self.conv_c is None:
            raise ValueError("SeparableBottleneckBlock needs conv_b and conv_c")
        if reduce_method not in ("sum", "cat"):
            raise ValueError(f"reduce_method must be 'sum' or 'cat', got {reduce_method!r}")
        if self.norm_c is not None:
            self.norm_c.block_final_bn = True  # zero-initialised by init_net_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_a is not None:
            x = self.conv_a(x)
        if self.norm_a is not None:
            x = self.norm_a(x)
        if self.act_a is not None:
            x = self.act_a(x)
        branches = []
        for conv, norm, act in zip(self.conv_b, self.norm_b, self.act_b):
            branch = conv(x)
            if norm is not None:
                branch = norm(branch)
            if act is not None:
                branch = act(branch)
            branches.append(branch)
        x = torch.stack(branches, dim=0).sum(dim=0) if self.reduce_method == "sum" else torch.cat(branches, dim=1)
        x = self.conv_c(x)
        if self.norm_c is not None:
            x = self.norm_c(x)
        return x


class BottleneckBlock(nn.Module):
    """conv_a → norm_a → act_a → conv_b → norm_b → act_b → conv_c → norm_c (norms/acts optional)."""

    def __init__(
        self,
        *,
        conv_a: nn.Module = None,
        norm_a: nn.Module = None,
        act_a: nn.Module = None,
        conv_b: nn.Module = None,
        norm_b: nn.Module = None,
        act_b: nn.Module = None,
        conv_c: nn.Module = None,
        norm_c: nn.Module = None,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if None in (self.conv_a, self.conv_b, self.conv_c):
            raise ValueError("BottleneckBlock needs conv_a, conv_b and conv_c")
        if self.norm_c is not None:
            self.norm_c.block_final_bn = True  # zero-initialised by init_net_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm, act in (
            (self.conv_a, self.norm_a, self.act_a),
            (self.conv_b, self.norm_b, self.act_b),
            (self.conv_c, self.norm_c, None),
        ):
            x = conv(x)
            if norm is not None:
                x = norm(x)
            if act is not None:
                x = act(x)
        return x


class ResStage(nn.Module):
    """Runs its ``res_blocks`` in order."""

    def __init__(self, res_blocks: nn.ModuleList) -> None:
        super().__init__()
        self.res_blocks = res_blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for res_block in self.res_blocks:
            x = res_block(x)
        return x
