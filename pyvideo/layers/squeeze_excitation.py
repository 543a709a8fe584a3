"""Squeeze-and-excitation: channel gating from globally pooled features."""
from typing import Callable, Optional

import torch
import torch.nn as nn


def _sum_branches(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # a named function rather than a lambda so that models stay picklable
    return x + y


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation with the parameter layout of fvcore's ``SqueezeExcitation``.

    ``block`` is conv(reduce) → ReLU → conv(expand) → Sigmoid (1x1 convs with bias), so X3D checkpoints
    store ``block.0.*`` and ``block.2.*``. Works on 4-D (``is_3d=False``) or 5-D (``is_3d=True``) input.
    """

    def __init__(
        self,
        num_channels: int,
        num_channels_reduced: Optional[int] = None,
        reduction_ratio: float = 2.0,
        is_3d: bool = False,
        activation: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        if num_channels_reduced is None:
            num_channels_reduced = int(round(num_channels / reduction_ratio))
        conv = nn.Conv3d if is_3d else nn.Conv2d
        self.avg_pool = nn.AdaptiveAvgPool3d(1) if is_3d else nn.AdaptiveAvgPool2d(1)
        self.block = nn.Sequential(
            conv(num_channels, num_channels_reduced, kernel_size=1, bias=True),
            nn.ReLU(inplace=True) if activation is None else activation,
            conv(num_channels_reduced, num_channels, kernel_size=1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(self.avg_pool(x))


class SqueezeAndExcitationLayer2D(nn.Module):
    """2-D squeeze-and-excitation layer (Hu et al.), with parameters under ``excitation.{0,2}``.

    Exactly one of ``reduction_ratio`` and ``reduced_planes`` must be given.
    """

    def __init__(
        self,
        in_planes: int,
        reduction_ratio: Optional[int] = 16,
        reduced_planes: Optional[int] = None,
    ) -> None:
        super().__init__()
        if bool(reduction_ratio) == bool(reduced_planes):
            raise ValueError("give exactly one of reduction_ratio and reduced_planes for the SE layer")
        if reduced_planes is None:
            reduced_planes = in_planes // reduction_ratio
        if reduced_planes < 1:
            raise ValueError(f"SE layer on {in_planes} channels would reduce them to {reduced_planes}; lower the ratio")
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.excitation = nn.Sequential(
            nn.Conv2d(in_planes, reduced_planes, kernel_size=1, stride=1, bias=True),
            nn.ReLU(),
            nn.Conv2d(reduced_planes, in_planes, kernel_size=1, stride=1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excitation(self.avgpool(x))


def create_audio_2d_squeeze_excitation_block(
    dim_in: int,
    dim_out: int,
    use_se=False,
    se_reduction_ratio=16,
    branch_fusion: Callable = _sum_branches,
    conv_a_kernel_size: int = 3,
    conv_a_stride: int = 1,
    conv_a_padding: int = 1,
    conv_b_kernel_size: int = 3,
    conv_b_stride: int = 1,
    conv_b_padding: int = 1,
    norm: Callable = nn.BatchNorm2d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """2-D residual block (conv, norm, act, conv, norm, optional SE) for spectrogram models.

    Returns a ``ResBlock`` whose ``branch2`` is an ``nn.Sequential``; a 1x1 projection shortcut is added
    when the stride is not 1 or the widths differ.
    """
    from pyvideo.models.resnet import ResBlock  # resnet imports layers, so import it late

    branch2 = [
        nn.Conv2d(dim_in, dim_out, conv_a_kernel_size, stride=conv_a_stride, padding=conv_a_padding, bias=False),
        norm(dim_out, norm_eps, norm_momentum),
        activation() if activation else nn.Identity(),
        nn.Conv2d(dim_out, dim_out, conv_b_kernel_size, stride=conv_b_stride, padding=conv_b_padding, bias=False),
        norm(dim_out, norm_eps, norm_momentum),
    ]
    if use_se:
        branch2.append(SqueezeAndExcitationLayer2D(dim_out, reduction_ratio=se_reduction_ratio))

    shortcut_stride = conv_a_stride * conv_b_stride
    needs_projection = shortcut_stride != 1 or dim_in != dim_out
    return ResBlock(
        branch1_conv=nn.Conv2d(dim_in, dim_out, kernel_size=1, stride=shortcut_stride, bias=False)
        if needs_projection
        else None,
        branch1_norm=norm(dim_out, norm_eps, norm_momentum) if needs_projection else None,
        branch2=nn.Sequential(*branch2),
        activation=activation() if activation else None,
        branch_fusion=branch_fusion,
    )
