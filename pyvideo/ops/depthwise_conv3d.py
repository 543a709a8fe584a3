"""``torch.ops.pyvideo.depthwise_conv3d``: depthwise 3-D convolution on the native fp32 kernels.

Semantics equal ``torch.nn.functional.conv3d(input, weight, bias, stride, padding, groups=C)`` with dilation 1.
The kernels work channels-last: an input already in ``torch.channels_last_3d`` memory format is read in place; any
other layout is copied once into channels-last first (documented copy). The result is returned in channels-last
memory format (logical shape ``[N, C, T, H, W]`` as usual), so consecutive native layers never change layout.
CPU, float32 only; registered with a fake implementation so ``torch.compile`` and ``torch.export`` can trace it.
"""
from typing import List, Optional, Sequence

import torch

from pyvideo._native import native, num_threads
from pyvideo.ops._library import define_op
from pyvideo.ops.conv3d import (
    activation_code,
    channels_last_like,
    from_channels_last,
    output_size,
    pack_depthwise_weight,
    to_channels_last,
)


def _triple(value, name: str) -> List[int]:
    if isinstance(value, int):
        return [value] * 3
    values = [int(v) for v in value]
    if len(values) != 3:
        raise ValueError(f"depthwise_conv3d: {name} must be an int or 3 ints, got {value!r}")
    return values


def _output_shape(input: torch.Tensor, weight: torch.Tensor, stride: Sequence[int], padding: Sequence[int]):
    if input.dim() == 5 and (weight.dim() != 5 or weight.shape[0] != input.shape[1] or weight.shape[1] != 1):
        raise ValueError(f"depthwise_conv3d: weight must be [C, 1, kt, kh, kw] with C={input.shape[1]} (depthwise), "
                         f"got {tuple(weight.shape)}")
    sizes = output_size(input, weight.shape[2:], stride, padding, "depthwise_conv3d")
    return (input.shape[0], input.shape[1], *sizes)


def _depthwise_conv3d_cpu(
    input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int], padding: List[int]
) -> torch.Tensor:
    out_shape = _output_shape(input, weight, stride, padding)
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if t.device.type != "cpu":
            raise ValueError(f"depthwise_conv3d: {name} must be a CPU tensor (native kernels), got {t.device}")
        if t.dtype != torch.float32:
            raise TypeError(f"depthwise_conv3d: {name} must be float32, got {t.dtype}")
    c = input.shape[1]
    if bias is not None and bias.shape != (c,):
        raise ValueError(f"depthwise_conv3d: bias must have shape ({c},), got {tuple(bias.shape)}")
    n, _, to, ho, wo = out_shape
    out = torch.empty((n, to, ho, wo, c), dtype=torch.float32)
    b = None if bias is None else bias.detach().contiguous()
    native().dwconv3d_fused_f32_ndhwc(to_channels_last(input), pack_depthwise_weight(weight), b, None, out,
                                      list(stride), list(padding), activation_code("identity"), num_threads())
    return from_channels_last(out)


def _depthwise_conv3d_fake(input, weight, bias, stride, padding):
    return channels_last_like(input, _output_shape(input, weight, stride, padding))


depthwise_conv3d = define_op(
    "depthwise_conv3d(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding) -> Tensor",
    _depthwise_conv3d_cpu, _depthwise_conv3d_fake)


def depthwise_conv3d_fn(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                        stride=1, padding=0) -> torch.Tensor:
    """Functional form accepting ints or triples for stride and padding."""
    return depthwise_conv3d(input, weight, bias, _triple(stride, "stride"), _triple(padding, "padding"))
