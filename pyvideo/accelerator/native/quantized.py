"""NativeQuantizedConv3d: the int8 QuantizedConv3d on the native int8 kernels, and the pass that swaps them in."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.accelerator.deployable.graph import copy_module
from pyvideo.accelerator.quantization.graph_quantizer import FloatLinear
from pyvideo.accelerator.quantization.int8_modules import (
    QuantizedConv3d,
    QuantizedLinear,
    QuantizedSqueezeExcitation,
)
from pyvideo.ops.conv3d import activation_code, from_channels_last
from pyvideo.ops.quantized_conv3d import (
    pack_quantized_depthwise_weight,
    pack_quantized_weight,
    quantized_conv3d,
    quantized_depthwise_conv3d,
)
from pyvideo.ops.squeeze_excitation import quantized_squeeze_excitation

from .conv import NativeLinear, _replace_modules


def is_supported(conv: QuantizedConv3d, float_output: bool = False) -> bool:
    """Native int8 kernels cover dilation 1, groups 1 or depthwise, with static input qparams and an int8 output (the
    per-layer op) -- or, with ``float_output`` (native programs), also a float32 output and dynamic input / residual
    ranges."""
    static = not (conv.dynamic_input or conv.dynamic_residual)
    return (tuple(conv.dilation) == (1, 1, 1) and ((conv.output_scale is not None and static) or float_output)
            and (conv.groups == 1 or conv.kind == "depthwise"))


def output_qparams(module: nn.Module) -> tuple:
    """An int8 conv's or squeeze-excitation's ``output_scale`` and ``output_zero_point`` as the native ops and program
    steps take them: ``(None, 0)`` for a float32 output, a float and an int per tensor, or float32 [C] and int32 [C]
    tensors (detached copies) per channel."""
    scale, zero_point = module.output_scale, module.output_zero_point
    if scale is None:
        return None, 0
    if isinstance(scale, torch.Tensor):
        return scale.detach().float().clone(), zero_point.detach().to(torch.int32).clone()
    return float(scale), int(zero_point)


class NativeQuantizedConv3d(nn.Module):
    """A QuantizedConv3d (same int8 arithmetic, within 1 LSB) executed by the native int8 kernels; a per-channel output
    (``output_scales`` / ``output_zero_points`` buffers here) stays per channel."""

    def __init__(self, conv: QuantizedConv3d):
        super().__init__()
        if not is_supported(conv):
            raise ValueError(f"NativeQuantizedConv3d cannot run {conv.extra_repr()}")
        self.depthwise = conv.kind == "depthwise"
        if self.depthwise:
            self.register_buffer("packed_weight", pack_quantized_depthwise_weight(conv.weight_int8))
        else:
            packed, sums = pack_quantized_weight(conv.weight_int8)
            self.register_buffer("packed_weight", packed)
            self.register_buffer("weight_sum", sums)
        self.register_buffer("bias_int32", conv.bias_int32.clone())
        self.register_buffer("dequant_scale", conv.dequant_scale.clone())
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.input_zero_point = int(conv.input_zero_point)
        self.residual_scale = float(conv.residual_scale) if conv.adds_residual else 1.0
        self.residual_zero_point = int(conv.residual_zero_point) if conv.adds_residual else 0
        self.adds_residual = conv.adds_residual
        self.activation = conv.activation
        scale, zero_point = output_qparams(conv)
        if isinstance(scale, torch.Tensor):  # per channel: float32 [C_out] and int32 [C_out] buffers
            self.register_buffer("output_scales", scale)
            self.register_buffer("output_zero_points", zero_point)
            self.output_scale, self.output_zero_point = 1.0, 0  # unused by the kernels then
        else:
            self.output_scales = self.output_zero_points = None
            self.output_scale, self.output_zero_point = scale, zero_point
        self.kind = conv.kind

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        if (residual is not None) != self.adds_residual:
            raise RuntimeError(f"NativeQuantizedConv3d(adds_residual={self.adds_residual}) called "
                               f"with{'' if residual is not None else 'out'} a residual")
        tail = (self.input_zero_point, self.residual_scale, self.residual_zero_point, activation_code(self.activation),
                self.output_scale, self.output_zero_point, self.output_scales, self.output_zero_points)
        if self.depthwise:
            return quantized_depthwise_conv3d(x, self.packed_weight, self.bias_int32, self.dequant_scale, residual,
                                              self.stride, self.padding, *tail)
        return quantized_conv3d(x, self.packed_weight, self.weight_sum, self.bias_int32, self.dequant_scale, residual,
                                self.stride, self.padding, *tail)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, activation={self.activation}, adds_residual={self.adds_residual}"


class NativeQuantizedSqueezeExcitation(nn.Module):
    """A QuantizedSqueezeExcitation in one native call (``torch.ops.pyvideo.quantized_squeeze_excitation``).

    The gate (channel means from the exact int32 sums, the two small Linears, sigmoid) and the requantized product
    ``act(dequant(x) * gate)`` (the int8 depthwise kernel with a unit 1x1x1 weight and per-channel dequant scale
    ``input_scale * gate``) run natively, matching the reference module within 1 LSB. A per-channel output
    (``output_scale`` float32 [C] and ``output_zero_point`` int32 [C] buffers on the reference) stays per channel:
    the same buffers here.
    """

    def __init__(self, module: QuantizedSqueezeExcitation):
        super().__init__()
        if module.output_scale is None or module.dynamic_input:
            raise ValueError("NativeQuantizedSqueezeExcitation needs a static int8 input and an int8 output")
        self.se = module.se
        self.input_scale, self.input_zero_point = float(module.input_scale), int(module.input_zero_point)
        scale, zero_point = output_qparams(module)
        if isinstance(scale, torch.Tensor):
            self.register_buffer("output_scale", scale)
            self.register_buffer("output_zero_point", zero_point)
        else:
            self.output_scale, self.output_zero_point = scale, zero_point
        self.hidden_activation_id = activation_code(module.se.hidden_activation)
        self.activation_id = activation_code(module.se.activation)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if q.dtype != torch.int8:
            raise TypeError(f"NativeQuantizedSqueezeExcitation expects an int8 tensor, got {q.dtype}")
        fc0, fc1 = self.se.fc0, self.se.fc1
        return quantized_squeeze_excitation(q, fc0.weight, fc0.bias, fc1.weight, fc1.bias, self.hidden_activation_id,
                                            self.activation_id, self.input_scale, self.input_zero_point,
                                            self.output_scale, self.output_zero_point)


# Products of int8 values (x - zero_point in [-255, 255], |w| <= 127) summed over at most this many terms stay below
# 2**24, so a float32 matmul over such a slice of the reduction is exact.
_EXACT_FLOAT32_TERMS = (2**24 - 1) // (255 * 127)


def _exact_product(x: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    """``x @ weight_t`` for integer-valued float32 operands, exact: float32 matmuls over slices of the reduction short
    enough to be exact, added in float64."""
    k = x.shape[-1]
    if k <= _EXACT_FLOAT32_TERMS:
        return x @ weight_t
    parts = [x[..., i:i + _EXACT_FLOAT32_TERMS] @ weight_t[i:i + _EXACT_FLOAT32_TERMS]
             for i in range(0, k, _EXACT_FLOAT32_TERMS)]
    return torch.stack(parts).double().sum(dim=0)


class CachedQuantizedLinear(nn.Module):
    """A QuantizedLinear (int8 nn.Linear) with its weight converted once (not on every call) and its integer
    accumulators computed by exact float32 matmuls; same result as the reference module."""

    def __init__(self, module: QuantizedLinear):
        super().__init__()
        self.module = module
        self.register_buffer("weight_t", module.weight_int8.float().t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        centered, qparams = m._centered_input(x)
        acc = _exact_product(centered.float(), self.weight_t)  # integers below 2**8: exact in float32
        return m._requantize(acc, acc.dim() - 1, None, qparams)


class CachedQuantizedConv3d(nn.Module):
    """A QuantizedConv3d the native kernels do not cover (a float output, dilation, grouped but not depthwise) with its
    weight converted once; a 1x1x1 stride-1 one runs as exact float32 matmuls over the channels. Same result as the
    reference module."""

    def __init__(self, module: QuantizedConv3d):
        super().__init__()
        self.module = module
        self.pointwise = module.kind == "pointwise" and module.groups == 1
        weight = module.weight_int8.to(module._accumulation_dtype())
        self.register_buffer("weight", weight[:, :, 0, 0, 0].float().t().contiguous() if self.pointwise else weight)

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        m = self.module
        centered, qparams = m._centered_input(x)
        if self.pointwise:
            acc = from_channels_last(_exact_product(centered.float().permute(0, 2, 3, 4, 1), self.weight))
        else:
            acc = F.conv3d(centered, self.weight, None, m.stride, m.padding, m.dilation, m.groups)
        return m._requantize(acc, 1, residual, qparams)


def _native_replacement(module: nn.Module):
    if isinstance(module, QuantizedConv3d):
        return NativeQuantizedConv3d(module) if is_supported(module) else CachedQuantizedConv3d(module)
    if isinstance(module, QuantizedSqueezeExcitation) and module.output_scale is not None and not module.dynamic_input:
        return NativeQuantizedSqueezeExcitation(module)
    if isinstance(module, QuantizedLinear):
        return CachedQuantizedLinear(module)
    if isinstance(module, FloatLinear):  # the float classifier: the program's fp32 kernel, for the same bits
        return NativeLinear(module)
    return None


def lower_quantized_to_native(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The int8 model (``quantize_model`` / ``convert_qat`` result) with its supported QuantizedConv3d and
    QuantizedSqueezeExcitation layers on the native int8 kernels (other QuantizedConv3d and QuantizedLinear layers keep
    their converted weight cached); the rest (quantize/dequantize, pools, adds, float-output convs) stays in PyTorch."""
    if not any(isinstance(m, QuantizedConv3d) for m in model.modules()):
        raise ValueError("model has no QuantizedConv3d layers: quantize it with pyvideo.accelerator.quantization first")
    target = model if inplace else copy_module(model)
    _replace_modules(target, _native_replacement)
    return target.eval()
