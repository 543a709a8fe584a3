"""The reference-style deploy form (PyTorchVideo's ``convert_to_deployable_form`` layout), rebuilt for benchmarking.

PyTorchVideo rewrites every efficient conv block into 2-D convolutions run by torch eager, with shapes frozen from
one example input (see docs/notes/accelerator.md and the reference API notes, section 2). This module builds the
same kind of model from pyvideo's original-form blocks, so bench/accelerator.py can time the form a PyTorchVideo
user deploys today next to pyvideo's deploy form and native kernels:

- 1x1x1 pointwise conv (+ folded BN, act): the input is viewed as [N, C, T*H, W] with the frozen sizes and run
  through one 1x1 ``Conv2d``, then viewed back;
- convs with a kT x kH x kW kernel, temporal stride 1 and "same" temporal padding (3x3x3 depthwise, 1xkxk,
  3x1x1, 5x1x1, the strided 1x1x1 shortcut): one ``Conv2d`` per temporal tap; output frame t is the sum over the
  taps j of tap_j(frame t + j - pad), frames outside the clip (the zero padding) are skipped, and the frames are
  concatenated along T. The bias sits on the centre tap only, which every output frame uses exactly once;
- squeeze-excitation: global average pool, reshape to the frozen [N, C], Linear, act, Linear, sigmoid, reshape
  back, multiply;
- Swish becomes x * sigmoid(x); global pools become ``AvgPool3d``/``AvgPool2d`` with the example's size as kernel;
- BatchNorm inside a block is folded into its conv. Standalone BatchNorm/activation modules outside efficient
  blocks (a transmuted vanilla model has one after every conv) are left as they are, as the reference does, and
  the X3D bottleneck keeps its separate residual add and final activation (the reference fuses neither).

Shapes are frozen: the converted model runs only at the example input's shape, batch size included (the
reference's limitation too).
"""
import copy
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from pyvideo.accelerator.deployable.conv import fold_batchnorm
from pyvideo.accelerator.efficient_blocks.efficient_block_base import EfficientBlockBase
from pyvideo.accelerator.efficient_blocks.no_op_convert_block import NoOpConvertBlock
from pyvideo.layers.accelerator.mobile_cpu.activation_functions import Swish, supported_act_functions
from pyvideo.layers.accelerator.mobile_cpu.attention import SqueezeExcitation
from pyvideo.layers.accelerator.mobile_cpu.convolutions import (
    Conv3d3x1x1BnAct,
    Conv3d3x3x3DwBnAct,
    Conv3d5x1x1BnAct,
    Conv3dPwBnAct,
    Conv3dTemporalKernel1BnAct,
)
from pyvideo.layers.accelerator.mobile_cpu.pool import AdaptiveAvgPool2dOutSize1, AdaptiveAvgPool3dOutSize1
from pyvideo.models.accelerator.mobile_cpu.residual_blocks import X3dBottleneckBlock

_CONV_BLOCKS = (Conv3dPwBnAct, Conv3d3x3x3DwBnAct, Conv3dTemporalKernel1BnAct, Conv3d3x1x1BnAct, Conv3d5x1x1BnAct)
_ACTIVATION_BLOCKS = tuple(supported_act_functions.values())


class _MulSigmoidSwish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


def _folded_conv_weights(block) -> Tuple[torch.Tensor, torch.Tensor]:
    conv, bn = block.kernel.conv, getattr(block.kernel, "bn", None)
    weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
    if bn is not None:
        weight, bias = fold_batchnorm(weight, bias, bn)
    if bias is None:
        bias = torch.zeros(conv.out_channels)
    return weight.detach(), bias.detach()


def _block_activation(block) -> nn.Module:
    act = block.kernel.act
    return _MulSigmoidSwish() if isinstance(act, Swish) else act.act


class PointwiseAs2d(nn.Module):
    """1x1x1 conv as a 1x1 Conv2d over the frozen [N, C, T*H, W] view, then the block's activation."""

    def __init__(self, block: Conv3dPwBnAct, input_size: Tuple[int, ...]):
        super().__init__()
        weight, bias = _folded_conv_weights(block)
        n, _, t, h, w = input_size
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=1)
        with torch.no_grad():
            self.conv.weight.copy_(weight.reshape(*weight.shape[:2], 1, 1))
            self.conv.bias.copy_(bias)
        self.act = _block_activation(block)
        self.in_view = (n, weight.shape[1], t * h, w)
        self.out_view = (n, weight.shape[0], t, h, w)

    def forward(self, x):
        return self.act(self.conv(x.reshape(self.in_view)).reshape(self.out_view))


class TemporalTapsAs2d(nn.Module):
    """A kT x kH x kW conv (temporal stride/dilation 1, "same" temporal padding) as kT per-frame Conv2d taps."""

    def __init__(self, block, input_size: Tuple[int, ...]):
        super().__init__()
        conv = block.kernel.conv
        k_t = conv.kernel_size[0]
        if conv.stride[0] != 1 or conv.dilation[0] != 1 or 2 * conv.padding[0] + 1 != k_t:
            raise ValueError(f"TemporalTapsAs2d needs temporal stride 1, dilation 1 and 'same' padding: {conv}")
        weight, bias = _folded_conv_weights(block)
        self.pad = conv.padding[0]
        self.frames = input_size[2]
        self.taps = nn.ModuleList()
        for j in range(k_t):
            tap = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size[1:], stride=conv.stride[1:],
                            padding=conv.padding[1:], dilation=conv.dilation[1:], groups=conv.groups,
                            bias=j == self.pad)
            with torch.no_grad():
                tap.weight.copy_(weight[:, :, j])
                if j == self.pad:
                    tap.bias.copy_(bias)
            self.taps.append(tap)
        self.act = _block_activation(block)

    def forward(self, x):
        frames = []
        for t in range(self.frames):
            out = self.taps[self.pad](x[:, :, t])
            for j, tap in enumerate(self.taps):
                source = t + j - self.pad
                if j != self.pad and 0 <= source < self.frames:
                    out = out + tap(x[:, :, source])
            frames.append(out.unsqueeze(2))
        return self.act(torch.cat(frames, 2))


class SqueezeExcitationAs2d(nn.Module):
    """SE with the frozen [N, C] reshapes around two Linear layers."""

    def __init__(self, block: SqueezeExcitation, input_size: Tuple[int, ...]):
        super().__init__()
        conv0, self.hidden_act, conv1 = block.se.block[0], copy.deepcopy(block.se.block[1]), block.se.block[2]
        self.fc0, self.fc1 = nn.Linear(conv0.in_channels, conv0.out_channels), nn.Linear(conv1.in_channels, conv1.out_channels)
        with torch.no_grad():
            for fc, conv in ((self.fc0, conv0), (self.fc1, conv1)):
                fc.weight.copy_(conv.weight.reshape(conv.out_channels, conv.in_channels))
                fc.bias.copy_(conv.bias)
        n, c = input_size[:2]
        self.pool = nn.AdaptiveAvgPool3d(1) if len(input_size) == 5 else nn.AdaptiveAvgPool2d(1)
        self.flat_size = (n, c)
        self.gate_size = (n, c) + (1,) * (len(input_size) - 2)

    def forward(self, x):
        gate = self.fc1(self.hidden_act(self.fc0(self.pool(x).reshape(self.flat_size))))
        return x * torch.sigmoid(gate).reshape(self.gate_size)


def _record_input_sizes(model: nn.Module, example_input: torch.Tensor) -> Dict[str, Tuple[int, ...]]:
    sizes = {}

    def recorder(name):
        def hook(module, inputs):  # returns None: a pre-hook's return value would replace the inputs
            sizes.setdefault(name, tuple(inputs[0].shape))
        return hook

    hooks = [module.register_forward_pre_hook(recorder(name)) for name, module in model.named_modules()]
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def _rewrite(block: nn.Module, size: Tuple[int, ...], path: str) -> Optional[nn.Module]:
    """The reference-style replacement of ``block`` (input size ``size``), or None to keep it and look inside."""
    if isinstance(block, Conv3dPwBnAct):
        return PointwiseAs2d(block, size)
    if isinstance(block, _CONV_BLOCKS):
        return TemporalTapsAs2d(block, size)
    if isinstance(block, SqueezeExcitation):
        return SqueezeExcitationAs2d(block, size)
    if isinstance(block, Swish):
        return _MulSigmoidSwish()
    if isinstance(block, AdaptiveAvgPool3dOutSize1):
        return nn.AvgPool3d(size[2:], stride=1)
    if isinstance(block, AdaptiveAvgPool2dOutSize1):
        return nn.AvgPool2d(size[2:], stride=1)
    # The bottleneck is kept: its original forward is the reference's deploy structure (layers, then a separate
    # residual add and final activation); its children are rewritten.
    if isinstance(block, EfficientBlockBase) and not isinstance(
        block, (X3dBottleneckBlock, NoOpConvertBlock) + _ACTIVATION_BLOCKS
    ):
        raise TypeError(f"reference-style deploy: no rewrite for efficient block {type(block).__name__} at {path}")
    return None


def _convert_children(module: nn.Module, prefix: str, sizes: Dict[str, Tuple[int, ...]]) -> None:
    for name, child in list(module.named_children()):
        path = f"{prefix}{name}"
        size = sizes.get(path)  # None: not called itself (a ModuleList) or not on the example's path
        replacement = None if size is None else _rewrite(child, size, path)
        if replacement is None:
            _convert_children(child, path + ".", sizes)
        else:
            module._modules[name] = replacement


def convert_reference_style(model: nn.Module, example_input: torch.Tensor) -> nn.Module:
    """A copy of ``model`` (original form, efficient blocks or transmuted) in the reference's 2-D deploy layout,
    frozen to ``example_input``'s shape. ``model`` is not modified."""
    converted = copy.deepcopy(model).eval()
    _convert_children(converted, "", _record_input_sizes(converted, example_input))
    return converted


def check_equivalent(original: nn.Module, converted: nn.Module, example_input: torch.Tensor, tolerance=1e-4) -> float:
    """Max |converted - original| / max |original| on ``example_input``; raises if above ``tolerance``."""
    with torch.no_grad():
        expected, actual = original.eval()(example_input), converted(example_input)
    error = float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
    if not error <= tolerance:
        raise RuntimeError(f"reference-style deploy differs from the original model: relative error {error:.2e}")
    return error
