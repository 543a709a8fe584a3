"""Fused channels-last 3-D convolutions on the native fp32 kernels, as ``torch.library`` custom ops.

``torch.ops.pyvideo.fused_conv3d`` (groups = 1: pointwise, temporal, spatial, dense) and
``torch.ops.pyvideo.fused_depthwise_conv3d`` compute ``activation(conv3d(x, w) + bias [+ residual])`` in one pass.
Weights come pre-packed (:func:`pack_conv3d_weight`, :func:`pack_depthwise_weight`) so a model packs them once, not
per call. Inputs in ``torch.channels_last_3d`` memory format are read in place; anything else is copied once into
channels-last (documented copy). Outputs are channels-last (logical shape ``[N, C, T, H, W]``), so a chain of native
layers never changes layout. Dilation 1, zero padding, CPU float32. Fake implementations let ``torch.compile`` and
``torch.export`` trace the ops.
"""
from typing import List, Optional, Sequence

import torch
from torch.utils.dlpack import to_dlpack  # capsules are ~10x cheaper to make than Tensor.__dlpack__

from pyvideo._native import native, num_threads
from pyvideo.ops._library import define_op

ACTIVATION_CODES = {"identity": 0, "relu": 1, "swish": 2, "hswish": 3, "sigmoid": 4}


def activation_code(kind: str) -> int:
    """The native code of an activation kind (``identity``, ``relu``, ``swish``, ``hswish``, ``sigmoid``)."""
    if kind not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {kind!r}; expected one of {tuple(ACTIVATION_CODES)}")
    return ACTIVATION_CODES[kind]


def pack_conv3d_weight(weight: torch.Tensor) -> torch.Tensor:
    """PyTorch's ``[C_out, C_in, kT, kH, kW]`` conv weight as the kernel's ``[kT, kH, kW, C_in, C_out]``."""
    if weight.dim() != 5:
        raise ValueError(f"conv3d weight must be 5-D [C_out, C_in, kT, kH, kW], got {tuple(weight.shape)}")
    return weight.detach().to(torch.float32).permute(2, 3, 4, 1, 0).contiguous()


def pack_depthwise_weight(weight: torch.Tensor) -> torch.Tensor:
    """PyTorch's depthwise ``[C, 1, kT, kH, kW]`` weight as the kernel's ``[kT, kH, kW, C]``."""
    if weight.dim() != 5 or weight.shape[1] != 1:
        raise ValueError(f"depthwise weight must be [C, 1, kT, kH, kW], got {tuple(weight.shape)}")
    return weight.detach().to(torch.float32)[:, 0].permute(1, 2, 3, 0).contiguous()


def output_size(input: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], op: str):
    """``[To, Ho, Wo]`` of a convolution, or a ValueError naming what does not fit."""
    if input.dim() != 5:
        raise ValueError(f"{op}: input must be 5-D [N, C, T, H, W], got shape {tuple(input.shape)}")
    if len(stride) != 3 or len(padding) != 3:
        raise ValueError(f"{op}: stride and padding need 3 values, got {list(stride)}, {list(padding)}")
    sizes = []
    for size, k, s, p in zip(input.shape[2:], kernel, stride, padding):
        if s <= 0 or p < 0:
            raise ValueError(f"{op}: stride must be positive and padding non-negative, got {stride}, {padding}")
        if size + 2 * p < k:
            raise ValueError(f"{op}: kernel {tuple(kernel)} larger than padded input {tuple(input.shape[2:])}")
        sizes.append((size + 2 * p - k) // s + 1)
    return sizes


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, T, H, W]`` as a contiguous ``[N, T, H, W, C]`` view (a copy only when x is not channels-last)."""
    return x.detach().permute(0, 2, 3, 4, 1).contiguous()


def from_channels_last(stored: torch.Tensor) -> torch.Tensor:
    """A stored ``[N, T, H, W, C]`` tensor as the logical ``[N, C, T, H, W]`` one, without a copy: the native ops'
    and programs' outputs.

    With one channel both layouts are the same memory, and the view then gets torch's standard strides rather than
    channels-last ones (``stride(1) == 1``, what ``permute`` gives): torch's CPU ``conv3d`` (2.13, oneDNN) computes
    wrong values for a one-channel input with channels-last strides when the output is one column wide and the W
    stride is above 1, and such inputs reached it from the per-layer lowerings (a float-output int8 conv after a
    one-channel native conv). The fake implementations give these strides too."""
    if stored.shape[4] == 1:
        return stored.reshape(stored.shape[0], 1, *stored.shape[1:4])
    return stored.permute(0, 4, 1, 2, 3)


def channels_last_like(input: torch.Tensor, shape, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """An empty logical ``[N, C, T, H, W]`` tensor of ``shape`` laid out as the ops' outputs are
    (:func:`from_channels_last`): what the fake implementations return."""
    n, c, t, h, w = shape
    return from_channels_last(input.new_empty((n, t, h, w, c), dtype=dtype or input.dtype))


def _check_cpu_float(op: str, **tensors):
    for name, t in tensors.items():
        if t is None:
            continue
        if t.device.type != "cpu":
            raise ValueError(f"{op}: {name} must be a CPU tensor (native kernels), got {t.device}")
        if t.dtype != torch.float32:
            raise TypeError(f"{op}: {name} must be float32, got {t.dtype}")


def _run(op: str, kernel_fn, input, packed_weight, out_channels, bias, residual, stride, padding, activation):
    _check_cpu_float(op, input=input, weight=packed_weight, bias=bias, residual=residual)
    to, ho, wo = output_size(input, packed_weight.shape[:3], stride, padding, op)
    n = input.shape[0]
    out = torch.empty((n, to, ho, wo, out_channels), dtype=torch.float32)
    if residual is not None and tuple(residual.shape) != (n, out_channels, to, ho, wo):
        raise ValueError(f"{op}: residual must have the output's shape {(n, out_channels, to, ho, wo)}, "
                         f"got {tuple(residual.shape)}")
    res = None if residual is None else to_dlpack(to_channels_last(residual))
    b = None if bias is None else to_dlpack(bias.detach().contiguous())
    kernel_fn(to_dlpack(to_channels_last(input)), to_dlpack(packed_weight.contiguous()), b, res, to_dlpack(out), stride,
              padding, int(activation), num_threads())
    return from_channels_last(out)


def _fused_conv3d_cpu(input: torch.Tensor, packed_weight: torch.Tensor, bias: Optional[torch.Tensor],
                      residual: Optional[torch.Tensor], stride: List[int], padding: List[int],
                      activation: int) -> torch.Tensor:
    if packed_weight.dim() != 5 or packed_weight.shape[3] != input.shape[1]:
        raise ValueError(f"fused_conv3d: packed weight must be [kT, kH, kW, C_in={input.shape[1]}, C_out], "
                         f"got {tuple(packed_weight.shape)}")
    return _run("fused_conv3d", native().conv3d_f32_ndhwc, input, packed_weight, packed_weight.shape[4], bias,
                residual, stride, padding, activation)


def _fused_conv3d_fake(input, packed_weight, bias, residual, stride, padding, activation):
    to, ho, wo = output_size(input, packed_weight.shape[:3], stride, padding, "fused_conv3d")
    shape = (input.shape[0], packed_weight.shape[4], to, ho, wo)
    return channels_last_like(input, shape)


def _fused_depthwise_conv3d_cpu(input: torch.Tensor, packed_weight: torch.Tensor, bias: Optional[torch.Tensor],
                                residual: Optional[torch.Tensor], stride: List[int], padding: List[int],
                                activation: int) -> torch.Tensor:
    if packed_weight.dim() != 4 or packed_weight.shape[3] != input.shape[1]:
        raise ValueError(f"fused_depthwise_conv3d: packed weight must be [kT, kH, kW, C={input.shape[1]}], "
                         f"got {tuple(packed_weight.shape)}")
    return _run("fused_depthwise_conv3d", native().dwconv3d_fused_f32_ndhwc, input, packed_weight,
                packed_weight.shape[3], bias, residual, stride, padding, activation)


def _fused_depthwise_conv3d_fake(input, packed_weight, bias, residual, stride, padding, activation):
    to, ho, wo = output_size(input, packed_weight.shape[:3], stride, padding, "fused_depthwise_conv3d")
    shape = (input.shape[0], packed_weight.shape[3], to, ho, wo)
    return channels_last_like(input, shape)


_CONV_ARGS = "Tensor input, Tensor packed_weight, Tensor? bias, Tensor? residual, int[] stride, int[] padding, int activation"
#: ``act(conv3d(input, w, bias, stride, padding) [+ residual])``, groups 1; packed_weight ``[kT, kH, kW, Ci, Co]``.
fused_conv3d = define_op(f"fused_conv3d({_CONV_ARGS}) -> Tensor", _fused_conv3d_cpu, _fused_conv3d_fake)
#: Depthwise ``act(conv3d(input, w, bias, groups=C) [+ residual])``; packed_weight ``[kT, kH, kW, C]``.
fused_depthwise_conv3d = define_op(f"fused_depthwise_conv3d({_CONV_ARGS}) -> Tensor", _fused_depthwise_conv3d_cpu,
                                   _fused_depthwise_conv3d_fake)
