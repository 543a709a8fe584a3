"""NativeConv3d: a FusedConv3d executed by the native fp32 kernels (and NativeLinear, NativeSqueezeExcitation), and
the pass that swaps them in."""
from typing import Optional

import torch
import torch.nn as nn

from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation
from pyvideo.accelerator.deployable.graph import copy_module
from pyvideo.ops.conv3d import (
    activation_code,
    fused_conv3d,
    fused_depthwise_conv3d,
    pack_conv3d_weight,
    pack_depthwise_weight,
)
from pyvideo.ops.squeeze_excitation import squeeze_excitation


def is_supported(conv: FusedConv3d) -> bool:
    """Whether the native kernels cover this conv: dilation 1 and either groups 1 or depthwise."""
    return conv.dilation == (1, 1, 1) and (conv.groups == 1 or conv.kind == "depthwise")


class NativeConv3d(nn.Module):
    """``activation(conv3d(x) + bias [+ residual])`` on the native kernels, weights packed once.

    Input may be in any memory format (a non-channels-last input is copied to channels-last once); the output is
    channels-last, which is what the next native layer reads in place.
    """

    def __init__(self, conv: FusedConv3d):
        super().__init__()
        if not is_supported(conv):
            raise ValueError(f"NativeConv3d needs dilation 1 and groups 1 or depthwise, got {conv.extra_repr()}")
        self.depthwise = conv.kind == "depthwise"
        pack = pack_depthwise_weight if self.depthwise else pack_conv3d_weight
        self.register_buffer("packed_weight", pack(conv.weight))
        self.register_buffer("bias", conv.bias.detach().to(torch.float32).clone())
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.activation = conv.activation
        self.activation_id = activation_code(conv.activation)
        self.adds_residual = conv.adds_residual
        self.kind = conv.kind
        self.out_channels = conv.out_channels

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        if (residual is not None) != self.adds_residual:
            raise RuntimeError(f"NativeConv3d(adds_residual={self.adds_residual}) called "
                               f"with{'' if residual is not None else 'out'} a residual")
        op = fused_depthwise_conv3d if self.depthwise else fused_conv3d
        return op(x, self.packed_weight, self.bias, residual, self.stride, self.padding, self.activation_id)

    def extra_repr(self) -> str:
        return (f"kind={self.kind}, out_channels={self.out_channels}, stride={tuple(self.stride)}, "
                f"padding={tuple(self.padding)}, activation={self.activation}, adds_residual={self.adds_residual}")


class NativeLinear(nn.Module):
    """An ``nn.Linear`` (over the last dim) on the native fp32 pointwise-conv kernel, weights packed once: the rows
    of the input are the columns of a 1x1x1 conv, as a native program's classifier step computes them, so the two
    give the same bits (an int8 model's float classifier, see ``quantize_model(float_classifier=True)``)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()
        self.register_buffer("packed_weight", pack_conv3d_weight(weight.reshape(*weight.shape, 1, 1, 1)))
        bias = linear.bias.detach() if linear.bias is not None else torch.zeros(linear.out_features)
        self.register_buffer("bias", bias.float().clone())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"NativeLinear: the input's last dim must be {self.in_features}, got {tuple(x.shape)}")
        rows = x.reshape(1, -1, 1, 1, self.in_features)  # [1, M, 1, 1, C]: M columns, channels last
        y = fused_conv3d(rows.permute(0, 4, 1, 2, 3), self.packed_weight, self.bias, None, [1, 1, 1], [0, 0, 0],
                         activation_code("identity"))
        return y.permute(0, 2, 3, 4, 1).reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class NativeSqueezeExcitation(nn.Module):
    """A FusedSqueezeExcitation in one native call (``torch.ops.pyvideo.squeeze_excitation``): channel means, the two
    small Linears, the sigmoid gate and ``act(x * gate)`` without returning to Python."""

    def __init__(self, se: FusedSqueezeExcitation):
        super().__init__()
        self.se = se
        self.hidden_activation_id = activation_code(se.hidden_activation)
        self.activation_id = activation_code(se.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc0, fc1 = self.se.fc0, self.se.fc1
        return squeeze_excitation(x, fc0.weight, fc0.bias, fc1.weight, fc1.bias, self.hidden_activation_id,
                                  self.activation_id)


def _replace_modules(model: nn.Module, make) -> int:
    """Replace each submodule m for which make(m) is not None; returns how many were replaced."""
    replaced = 0
    for name, child in list(model.named_children()):
        new = make(child)
        if new is not None:
            setattr(model, name, new)
            replaced += 1
        else:
            replaced += _replace_modules(child, make)
    return replaced


def lower_to_native(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The deploy-form ``model`` with its supported FusedConv3d (and FusedSqueezeExcitation) layers on native kernels.

    Unsupported convs (dilated, grouped but not depthwise) stay in PyTorch. Raises ValueError when the model has
    no FusedConv3d at all (it is not in deploy form: run ``convert_to_deployable_form`` first).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"lower_to_native expects an nn.Module, got {type(model).__name__}")
    if not any(isinstance(m, FusedConv3d) for m in model.modules()):
        raise ValueError("model has no FusedConv3d layers: convert it with convert_to_deployable_form first")
    target = model if inplace else copy_module(model)
    _replace_modules(target, _native_replacement)
    return target.eval()


def _native_replacement(module: nn.Module):
    if isinstance(module, FusedConv3d) and is_supported(module):
        return NativeConv3d(module)
    if isinstance(module, FusedSqueezeExcitation):
        return NativeSqueezeExcitation(module)
    return None
