"""int8 channels-last 3-D convolutions with fused requantization on the native kernels, as custom ops.

``torch.ops.pyvideo.quantized_conv3d`` (groups 1) and ``torch.ops.pyvideo.quantized_depthwise_conv3d`` implement the
int8 arithmetic of docs/notes/accelerator_interface.md (int32 accumulation, per-channel dequant, residual,
activation, round-half-even requantization, per tensor or per output channel) and match ``QuantizedConv3d``
within 1 LSB. Inputs and outputs are ``torch.int8`` ``[N, C, T, H, W]`` tensors; channels-last inputs are read in
place, outputs are channels-last.
Weights are packed once with :func:`pack_quantized_weight` / :func:`pack_quantized_depthwise_weight`.
"""
from typing import List, Optional, Tuple

import torch
from torch.utils.dlpack import to_dlpack

from pyvideo._native import native, num_threads
from pyvideo.ops._library import define_op
from pyvideo.ops.conv3d import channels_last_like, from_channels_last, output_size, to_channels_last


def pack_quantized_weight(weight_int8: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``[C_out, C_in, kT, kH, kW]`` int8 -> (``[kT, kH, kW, ceil(C_in/4), C_out, 4]`` int8, per-channel sums int32).

    Four consecutive input channels of one output channel are adjacent (the VNNI / sdot operand layout); the
    padding channels are zero. The sums feed the kernels' zero-point correction.
    """
    if weight_int8.dim() != 5 or weight_int8.dtype != torch.int8:
        raise ValueError(f"weight must be int8 [C_out, C_in, kT, kH, kW], got {weight_int8.dtype} {tuple(weight_int8.shape)}")
    co, ci = weight_int8.shape[:2]
    groups = (ci + 3) // 4
    padded = torch.zeros((co, groups * 4, *weight_int8.shape[2:]), dtype=torch.int8)
    padded[:, :ci] = weight_int8
    packed = padded.reshape(co, groups, 4, *weight_int8.shape[2:]).permute(3, 4, 5, 1, 0, 2).contiguous()
    return packed, weight_int8.to(torch.int32).sum(dim=(1, 2, 3, 4)).to(torch.int32)


def pack_quantized_depthwise_weight(weight_int8: torch.Tensor) -> torch.Tensor:
    """Depthwise ``[C, 1, kT, kH, kW]`` int8 -> ``[kT, kH, kW, C]``."""
    if weight_int8.dim() != 5 or weight_int8.shape[1] != 1 or weight_int8.dtype != torch.int8:
        raise ValueError(f"depthwise weight must be int8 [C, 1, kT, kH, kW], got {tuple(weight_int8.shape)}")
    return weight_int8[:, 0].permute(1, 2, 3, 0).contiguous()


def _check_int8(op: str, **tensors):
    for name, t in tensors.items():
        if t is not None and t.dtype != torch.int8:
            raise TypeError(f"{op}: {name} must be int8, got {t.dtype}")
        if t is not None and t.device.type != "cpu":
            raise ValueError(f"{op}: {name} must be a CPU tensor, got {t.device}")


def _prepare(op, input, residual, kernel, out_channels, stride, padding):
    _check_int8(op, input=input, residual=residual)
    to, ho, wo = output_size(input, kernel, stride, padding, op)
    out = torch.empty((input.shape[0], to, ho, wo, out_channels), dtype=torch.int8)
    if residual is not None and tuple(residual.shape) != (input.shape[0], out_channels, to, ho, wo):
        raise ValueError(f"{op}: residual must have the output's shape, got {tuple(residual.shape)}")
    res = None if residual is None else to_dlpack(to_channels_last(residual))
    return out, res


def _quantized_conv3d_cpu(input: torch.Tensor, packed_weight: torch.Tensor, weight_sum: torch.Tensor,
                          bias_int32: torch.Tensor, dequant_scale: torch.Tensor, residual: Optional[torch.Tensor],
                          stride: List[int], padding: List[int], input_zero_point: int, residual_scale: float,
                          residual_zero_point: int, activation: int, output_scale: float,
                          output_zero_point: int, output_scales: Optional[torch.Tensor] = None,
                          output_zero_points: Optional[torch.Tensor] = None) -> torch.Tensor:
    """int8 groups-1 conv3d + requantization; packed_weight from :func:`pack_quantized_weight`."""
    out, res = _prepare("quantized_conv3d", input, residual, packed_weight.shape[:3], packed_weight.shape[4], stride,
                        padding)
    native().qconv3d_ndhwc(to_dlpack(to_channels_last(input)), to_dlpack(packed_weight), to_dlpack(weight_sum),
                           to_dlpack(bias_int32), to_dlpack(dequant_scale), res, to_dlpack(out), stride, padding,
                           input_zero_point, residual_scale, residual_zero_point, activation, output_scale,
                           output_zero_point, num_threads(), **_channel_outputs(output_scales, output_zero_points))
    return from_channels_last(out)


def _channel_outputs(output_scales: Optional[torch.Tensor], output_zero_points: Optional[torch.Tensor]) -> dict:
    """The native calls' per-channel output arguments (None: per tensor)."""
    return {"output_scales": None if output_scales is None else to_dlpack(output_scales.contiguous()),
            "output_zero_points": None if output_zero_points is None else to_dlpack(output_zero_points.contiguous())}


def _quantized_conv3d_fake(input, packed_weight, weight_sum, bias_int32, dequant_scale, residual, stride, padding, *args):
    to, ho, wo = output_size(input, packed_weight.shape[:3], stride, padding, "quantized_conv3d")
    shape = (input.shape[0], packed_weight.shape[4], to, ho, wo)
    return channels_last_like(input, shape, torch.int8)


def _quantized_depthwise_conv3d_cpu(input: torch.Tensor, packed_weight: torch.Tensor, bias_int32: torch.Tensor,
                                    dequant_scale: torch.Tensor, residual: Optional[torch.Tensor], stride: List[int],
                                    padding: List[int], input_zero_point: int, residual_scale: float,
                                    residual_zero_point: int, activation: int, output_scale: float,
                                    output_zero_point: int, output_scales: Optional[torch.Tensor] = None,
                                    output_zero_points: Optional[torch.Tensor] = None) -> torch.Tensor:
    """int8 depthwise conv3d + requantization; packed_weight ``[kT, kH, kW, C]``."""
    out, res = _prepare("quantized_depthwise_conv3d", input, residual, packed_weight.shape[:3], packed_weight.shape[3],
                        stride, padding)
    native().qdwconv3d_ndhwc(to_dlpack(to_channels_last(input)), to_dlpack(packed_weight), to_dlpack(bias_int32),
                             to_dlpack(bias_int32.to(torch.float32)), to_dlpack(dequant_scale), res, to_dlpack(out),
                             stride, padding, input_zero_point, residual_scale, residual_zero_point, activation,
                             output_scale, output_zero_point, num_threads(),
                             **_channel_outputs(output_scales, output_zero_points))
    return from_channels_last(out)


def _quantized_depthwise_conv3d_fake(input, packed_weight, bias_int32, dequant_scale, residual, stride, padding, *args):
    to, ho, wo = output_size(input, packed_weight.shape[:3], stride, padding, "quantized_depthwise_conv3d")
    shape = (input.shape[0], packed_weight.shape[3], to, ho, wo)
    return channels_last_like(input, shape, torch.int8)


# output_scales / output_zero_points (float32 / int32 [C_out]): per-channel output quantization instead of
# output_scale / output_zero_point (which are then unused), for a tensor that unpadded pointwise convs alone read.
_REQUANT_ARGS = ("int input_zero_point, float residual_scale, int residual_zero_point, int activation, "
                 "float output_scale, int output_zero_point, Tensor? output_scales=None, "
                 "Tensor? output_zero_points=None")
#: int8 groups-1 conv3d + requantization; packed_weight from :func:`pack_quantized_weight`.
quantized_conv3d = define_op(
    "quantized_conv3d(Tensor input, Tensor packed_weight, Tensor weight_sum, Tensor bias_int32, Tensor dequant_scale, "
    f"Tensor? residual, int[] stride, int[] padding, {_REQUANT_ARGS}) -> Tensor",
    _quantized_conv3d_cpu, _quantized_conv3d_fake)
#: int8 depthwise conv3d + requantization; packed_weight ``[kT, kH, kW, C]``.
quantized_depthwise_conv3d = define_op(
    "quantized_depthwise_conv3d(Tensor input, Tensor packed_weight, Tensor bias_int32, Tensor dequant_scale, "
    f"Tensor? residual, int[] stride, int[] padding, {_REQUANT_ARGS}) -> Tensor",
    _quantized_depthwise_conv3d_cpu, _quantized_depthwise_conv3d_fake)
