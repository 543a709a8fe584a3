"""Factorised 3-D convolutions: (2+1)D and parallel-sum/concat convolutions."""
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn

from pyvideo.layers.utils import set_attributes


class ConvReduce3D(nn.Module):
    """Parallel Conv3d layers (``convs``) whose outputs are summed or concatenated on channels."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: Tuple[Tuple[int, int, int]],
        stride: Optional[Tuple[Tuple[int, int, int]]] = None,
        padding: Optional[Tuple[Tuple[int, int, int]]] = None,
        padding_mode: Optional[Tuple[str]] = None,
        dilation: Optional[Tuple[Tuple[int, int, int]]] = None,
        groups: Optional[Tuple[int]] = None,
        bias: Optional[Tuple[bool]] = None,
        reduction_method: str = "sum",
    ) -> None:
        super().__init__()
        if reduction_method not in ("sum", "cat"):
            raise ValueError(f"reduction_method must be 'sum' or 'cat', got {reduction_method!r}")
        self.reduction_method = reduction_method
        num_convs = len(kernel_size)
        per_conv = {
            "stride": stride,
            "padding": padding,
            "padding_mode": padding_mode,
            "dilation": dilation,
            "groups": groups,
            "bias": bias,
        }
        for name, values in per_conv.items():
            if values is not None and len(values) != num_convs:
                raise ValueError(
                    f"{name} has {len(values)} entries but kernel_size has {num_convs}; give one per conv"
                )
        convs = []
        for index in range(num_convs):
            options = {name: values[index] for name, values in per_conv.items() if values is not None}
            convs.append(nn.Conv3d(in_channels, out_channels, kernel_size[index], **options))
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [conv(x) for conv in self.convs]
        if self.reduction_method == "sum":
            return torch.stack(outputs, dim=0).sum(dim=0)
        return torch.cat(outputs, dim=1)


class Conv2plus1d(nn.Module):
    """A temporal conv and a spatial conv in sequence, with an optional norm and activation between.

    Runs conv_t → norm → activation → conv_xy, or conv_xy first when ``conv_xy_first`` is set.
    """

    def __init__(
        self,
        *,
        conv_t: nn.Module = None,
        norm: nn.Module = None,
        activation: nn.Module = None,
        conv_xy: nn.Module = None,
        conv_xy_first: bool = False,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if self.conv_t is None or self.conv_xy is None:
            raise ValueError("Conv2plus1d needs both conv_t and conv_xy")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = (self.conv_xy, self.conv_t) if self.conv_xy_first else (self.conv_t, self.conv_xy)
        x = first(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return second(x)


def create_conv_2plus1d(
    *,
    in_channels: int,
    out_channels: int,
    inner_channels: int = None,
    conv_xy_first: bool = False,
    kernel_size: Tuple[int] = (3, 3, 3),
    stride: Tuple[int] = (2, 2, 2),
    padding: Tuple[int] = (1, 1, 1),
    bias: bool = False,
    dilation: Tuple[int] = (1, 1, 1),
    groups: int = 1,
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable = nn.ReLU,
) -> nn.Module:
    """Build a ``Conv2plus1d``: a (kt,1,1) temporal conv and a (1,kh,kw) spatial conv.

    Only ``groups=1`` and ``dilation=1`` are supported, as upstream.
    """
    if groups != 1:
        raise ValueError(f"create_conv_2plus1d supports only groups=1, got {groups}")
    if tuple(dilation) != (1, 1, 1):
        raise ValueError(f"create_conv_2plus1d supports only dilation=(1, 1, 1), got {dilation}")
    if inner_channels is None:
        inner_channels = out_channels
    t_in, t_out = (inner_channels, out_channels) if conv_xy_first else (in_channels, inner_channels)
    xy_in, xy_out = (in_channels, inner_channels) if conv_xy_first else (inner_channels, out_channels)
    conv_t = nn.Conv3d(
        in_channels=t_in,
        out_channels=t_out,
        kernel_size=(kernel_size[0], 1, 1),
        stride=(stride[0], 1, 1),
        padding=(padding[0], 0, 0),
        bias=bias,
    )
    conv_xy = nn.Conv3d(
        in_channels=xy_in,
        out_channels=xy_out,
        kernel_size=(1, kernel_size[1], kernel_size[2]),
        stride=(1, stride[1], stride[2]),
        padding=(0, padding[1], padding[2]),
        bias=bias,
    )
    norm_module = None if norm is None else norm(num_features=inner_channels, eps=norm_eps, momentum=norm_momentum)
    return Conv2plus1d(
        conv_t=conv_t,
        norm=norm_module,
        activation=None if activation is None else activation(),
        conv_xy=conv_xy,
        conv_xy_first=conv_xy_first,
    )
