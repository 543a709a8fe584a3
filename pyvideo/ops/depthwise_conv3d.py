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


def _triple(value, name: str) -> List[int]:
    if isinstance(value, int):
        return [value] * 3
    values = [int(v) for v in value]
    if len(values) != 3:
        raise ValueError(f"depthwise_conv3d: {name} must be an int or 3 ints, got {value!r}")
    return values


def _output_shape(input: torch.Tensor, weight: torch.Tensor, stride: Sequence[int], padding: Sequence[int]):
    if input.dim() != 5:
        raise ValueError(f"depthwise_conv3d: input must be 5-D [N, C, T, H, W], got shape {tuple(input.shape)}")
    n, c = input.shape[:2]
    if weight.dim() != 5 or weight.shape[0] != c or weight.shape[1] != 1:
        raise ValueError(
            f"depthwise_conv3d: weight must be [C, 1, kt, kh, kw] with C={c} (depthwise), got {tuple(weight.shape)}"
        )
    sizes = []
    for dim, (size, k, s, p) in enumerate(zip(input.shape[2:], weight.shape[2:], stride, padding)):
        if s <= 0 or p < 0:
            raise ValueError(f"depthwise_conv3d: stride must be positive and padding non-negative, got {stride}, {padding}")
        if size + 2 * p < k:
            raise ValueError(f"depthwise_conv3d: kernel {tuple(weight.shape[2:])} larger than padded input {tuple(input.shape[2:])}")
        sizes.append((size + 2 * p - k) // s + 1)
    return (n, c, *sizes)


# Defined with the low-level torch.library API rather than torch.library.custom_op: the dispatcher then calls the
# CPU kernel directly, which costs ~15 us per call instead of ~45 us (these layers take 0.05-0.5 ms).
_LIBRARY = torch.library.Library("pyvideo", "FRAGMENT")
_LIBRARY.define("depthwise_conv3d(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding) -> Tensor")


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
    x = input.detach().permute(0, 2, 3, 4, 1).contiguous()  # no copy when input is channels_last_3d
    kt, kh, kw = weight.shape[2:]
    w = weight.detach().reshape(c, kt * kh * kw).t().reshape(kt, kh, kw, c).contiguous()
    n, _, to, ho, wo = out_shape
    out = torch.empty((n, to, ho, wo, c), dtype=torch.float32)
    b = None if bias is None else bias.detach().contiguous()
    native().dwconv3d_f32_ndhwc(x, w, b, out, list(stride), list(padding), num_threads())
    return out.permute(0, 4, 1, 2, 3)


_LIBRARY.impl("depthwise_conv3d", _depthwise_conv3d_cpu, "CPU")


@torch.library.register_fake("pyvideo::depthwise_conv3d")
def _(input, weight, bias, stride, padding):
    return input.new_empty(_output_shape(input, weight, stride, padding)).to(memory_format=torch.channels_last_3d)


depthwise_conv3d = torch.ops.pyvideo.depthwise_conv3d


def depthwise_conv3d_fn(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                        stride=1, padding=0) -> torch.Tensor:
    """Functional form accepting ints or triples for stride and padding."""
    return depthwise_conv3d(input, weight, bias, _triple(stride, "stride"), _triple(padding, "padding"))
