"""Squeeze-excitation in one native call, fp32 and int8, as ``torch.ops.pyvideo`` ops.

``squeeze_excitation(x, fc0_weight, fc0_bias, fc1_weight, fc1_bias, hidden_activation, activation)`` computes
``act(x * sigmoid(fc1(hidden_act(fc0(mean(x))))))`` with the mean over T, H, W per sample: channel sums, the two
small Linear layers and the gated, activated product all happen natively (one pass to sum, one to scale).
``quantized_squeeze_excitation`` does the same on int8 ``x`` (gate from the exact integer sums) and requantizes, per
tensor (a float scale and an int zero point: ``pyvideo::quantized_squeeze_excitation``) or per channel (a 1-D float32
tensor of C scales and a 1-D int32 tensor of C zero points: ``pyvideo::quantized_squeeze_excitation_per_channel``).
Inputs ``[N, C, T, H, W]``; channels-last inputs are read in place and outputs are channels-last, like the conv ops.
Activations are the codes of :data:`pyvideo.ops.conv3d.ACTIVATION_CODES`.
"""
from typing import Optional, Union

import torch
from torch.utils.dlpack import to_dlpack

from pyvideo._native import native, num_threads
from pyvideo.ops._library import define_op
from pyvideo.ops.conv3d import channels_last_like, from_channels_last, to_channels_last


def _check(op: str, x: torch.Tensor, dtype: torch.dtype, weights):
    if x.dim() != 5:
        raise ValueError(f"{op}: input must be 5-D [N, C, T, H, W], got shape {tuple(x.shape)}")
    if x.dtype != dtype:
        raise TypeError(f"{op}: input must be {dtype}, got {x.dtype}")
    for name, t in weights.items():
        if t is None:
            continue
        if t.dtype != torch.float32:
            raise TypeError(f"{op}: {name} must be float32, got {t.dtype}")
        if t.device.type != "cpu" or x.device.type != "cpu":
            raise ValueError(f"{op}: tensors must be on the CPU (native kernels)")


def _run(op: str, binding, dtype: torch.dtype, input, fc0_weight, fc0_bias, fc1_weight, fc1_bias, *arguments):
    """Checks, the channels-last input and output, and the native call shared by both ops; ``arguments`` follow
    the layers in the binding's signature (activation codes, then qparams for int8)."""
    _check(op, input, dtype, dict(fc0_weight=fc0_weight, fc0_bias=fc0_bias, fc1_weight=fc1_weight, fc1_bias=fc1_bias))
    x = to_channels_last(input)
    out = torch.empty_like(x)
    layers = [None if t is None else to_dlpack(t.detach().contiguous())
              for t in (fc0_weight, fc0_bias, fc1_weight, fc1_bias)]
    binding(to_dlpack(x), *layers, to_dlpack(out), *arguments, num_threads())
    return from_channels_last(out)


def _squeeze_excitation_cpu(input: torch.Tensor, fc0_weight: torch.Tensor, fc0_bias: Optional[torch.Tensor],
                            fc1_weight: torch.Tensor, fc1_bias: Optional[torch.Tensor], hidden_activation: int,
                            activation: int) -> torch.Tensor:
    return _run("squeeze_excitation", native().squeeze_excitation_ndhwc, torch.float32, input, fc0_weight, fc0_bias,
                fc1_weight, fc1_bias, hidden_activation, activation)


def _quantized_squeeze_excitation_cpu(input: torch.Tensor, fc0_weight: torch.Tensor, fc0_bias: Optional[torch.Tensor],
                                      fc1_weight: torch.Tensor, fc1_bias: Optional[torch.Tensor],
                                      hidden_activation: int, activation: int, input_scale: float,
                                      input_zero_point: int, output_scale: float,
                                      output_zero_point: int) -> torch.Tensor:
    return _run("quantized_squeeze_excitation", native().quantized_squeeze_excitation_ndhwc, torch.int8, input,
                fc0_weight, fc0_bias, fc1_weight, fc1_bias, hidden_activation, activation, input_scale,
                input_zero_point, output_scale, output_zero_point)


def _check_channel_qparams(input: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> None:
    """Dtypes and lengths of per-channel output qparams (their values are checked natively)."""
    op = "quantized_squeeze_excitation"
    if scale.dtype != torch.float32:
        raise TypeError(f"{op}: per-channel output scales must be float32, got {scale.dtype}")
    if zero_point.dtype != torch.int32:
        raise TypeError(f"{op}: per-channel output zero points must be int32, got {zero_point.dtype}")
    channels = input.shape[1] if input.dim() == 5 else None  # else the input check reports the input
    for name, t in (("scales", scale), ("zero points", zero_point)):
        if t.dim() != 1 or (channels is not None and t.shape[0] != channels):
            raise ValueError(f"{op}: per-channel output {name} must be 1-D with one entry per channel "
                             f"({channels}), got shape {tuple(t.shape)}")


def _quantized_squeeze_excitation_per_channel_cpu(input: torch.Tensor, fc0_weight: torch.Tensor,
                                                  fc0_bias: Optional[torch.Tensor], fc1_weight: torch.Tensor,
                                                  fc1_bias: Optional[torch.Tensor], hidden_activation: int,
                                                  activation: int, input_scale: float, input_zero_point: int,
                                                  output_scale: torch.Tensor,
                                                  output_zero_point: torch.Tensor) -> torch.Tensor:
    _check_channel_qparams(input, output_scale, output_zero_point)
    return _run("quantized_squeeze_excitation", native().quantized_squeeze_excitation_per_channel_ndhwc, torch.int8,
                input, fc0_weight, fc0_bias, fc1_weight, fc1_bias, hidden_activation, activation, input_scale,
                input_zero_point, to_dlpack(output_scale.detach().contiguous()),
                to_dlpack(output_zero_point.detach().contiguous()))


def _fake(input, *args):
    return channels_last_like(input, input.shape)


def _fake_per_channel(input, *args):
    _check_channel_qparams(input, args[-2], args[-1])
    return _fake(input)


_LAYERS = "Tensor fc0_weight, Tensor? fc0_bias, Tensor fc1_weight, Tensor? fc1_bias, int hidden_activation, int activation"
squeeze_excitation = define_op(f"squeeze_excitation(Tensor input, {_LAYERS}) -> Tensor", _squeeze_excitation_cpu,
                               _fake)
_quantized_per_tensor = define_op(
    f"quantized_squeeze_excitation(Tensor input, {_LAYERS}, float input_scale, int input_zero_point, "
    "float output_scale, int output_zero_point) -> Tensor", _quantized_squeeze_excitation_cpu, _fake)
_quantized_per_channel = define_op(
    f"quantized_squeeze_excitation_per_channel(Tensor input, {_LAYERS}, float input_scale, int input_zero_point, "
    "Tensor output_scale, Tensor output_zero_point) -> Tensor", _quantized_squeeze_excitation_per_channel_cpu,
    _fake_per_channel)


def quantized_squeeze_excitation(input: torch.Tensor, fc0_weight: torch.Tensor, fc0_bias: Optional[torch.Tensor],
                                 fc1_weight: torch.Tensor, fc1_bias: Optional[torch.Tensor], hidden_activation: int,
                                 activation: int, input_scale: float, input_zero_point: int,
                                 output_scale: Union[float, torch.Tensor],
                                 output_zero_point: Union[int, torch.Tensor]) -> torch.Tensor:
    """The int8 squeeze-excitation op. ``output_scale`` / ``output_zero_point``: a float and an int (per tensor), or
    a 1-D float32 tensor of C scales and a 1-D int32 tensor of C zero points (per channel); a scalar next to a
    tensor applies to every channel."""
    if not isinstance(output_scale, torch.Tensor) and not isinstance(output_zero_point, torch.Tensor):
        return _quantized_per_tensor(input, fc0_weight, fc0_bias, fc1_weight, fc1_bias, hidden_activation, activation,
                                     input_scale, input_zero_point, output_scale, output_zero_point)
    channels = input.shape[1] if input.dim() == 5 else 0
    if not isinstance(output_scale, torch.Tensor):
        output_scale = torch.full((channels,), float(output_scale), dtype=torch.float32)
    if not isinstance(output_zero_point, torch.Tensor):
        output_zero_point = torch.full((channels,), int(output_zero_point), dtype=torch.int32)
    return _quantized_per_channel(input, fc0_weight, fc0_bias, fc1_weight, fc1_bias, hidden_activation, activation,
                                  input_scale, input_zero_point, output_scale, output_zero_point)
