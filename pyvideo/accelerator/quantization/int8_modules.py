"""int8 modules: explicit int8 parameters plus a pure-torch reference of the integer arithmetic.

The arithmetic is specified in docs/notes/accelerator_interface.md; the native int8 kernels implement the same and
are tested against these modules. Accumulation is exact: int8 products are summed in float32 when no partial sum can reach
2**24, else in float64 (exact below 2**53), then converted as an int32 accumulator would be. Activation tensors between modules are ``torch.int8``;
each module holds the qparams of its inputs and output. A module whose output goes only to float code has
``output_qparams = None`` and returns float32.

Dynamic ranges: convs, linears, squeeze-excitations and average pools may instead take a float32 input (and a conv a
float32 residual) with qparams :data:`~.qparams.DYNAMIC`: each call quantizes every sample with the qparams of its
own range (``sample_qparams``, scale at least ``input_min_scale`` / ``residual_min_scale``) and derives the
dequantization scales and the int32 bias from them (a conv / linear keeps its real-valued bias, ``float_bias``, for
that). Their producers return float32 (``output_qparams = None``). The quantizer gives every reader of a tensor the
same minimum scale: the largest that its conv / linear readers need for their int32 biases
(:meth:`_QuantizedWeightedOp.min_dynamic_input_scale`).
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.accelerator.deployable.activation import apply_activation, check_activation_kind
from pyvideo.accelerator.deployable.conv import FusedConv3d, triple
from pyvideo.accelerator.deployable.graph import register_leaf_type
from pyvideo.accelerator.deployable.squeeze_excitation import FusedSqueezeExcitation

from .qparams import (_MIN_SCALE, DYNAMIC, QMAX, QMIN, ChannelQParams, DynamicQParams, QParams, dequantize,
                      fold_input_scales, int32_bias_bound, kernel_input_qparams, quantize, quantize_weight,
                      sample_qparams, sample_requantization, weight_scales)


def _finish(y: torch.Tensor, output_qparams) -> torch.Tensor:
    """Float32 result -> the module output: int8 with ``output_qparams``, or float32 when there are none."""
    return y if output_qparams is None else quantize(y, output_qparams)


def _qparams_fields(prefix: str, qparams: Optional[QParams]) -> dict:
    """Plain ``{prefix}_scale`` / ``{prefix}_zero_point`` attributes: None for no qparams and for DYNAMIC ones (set
    per call), which ``dynamic_{prefix}`` marks."""
    fixed = qparams is not None and not isinstance(qparams, DynamicQParams)
    return {f"{prefix}_scale": qparams.scale if fixed else None, f"{prefix}_zero_point": qparams.zero_point if fixed else None,
            f"dynamic_{prefix}": isinstance(qparams, DynamicQParams), f"{prefix}_min_scale": _MIN_SCALE}


def _centered(q: torch.Tensor, qparams, dtype: torch.dtype) -> torch.Tensor:
    """int8 codes minus their zero point (a scalar, or one per sample), in ``dtype`` (exact: small integers)."""
    zero_point = qparams.broadcast(q)[1].to(dtype) if not isinstance(qparams, QParams) else qparams.zero_point
    return q.to(dtype) - zero_point


def _mean_scale(qparams, count: int, dims: int) -> torch.Tensor:
    """float32(scale) / float32(count), per sample for per-sample qparams (shaped to broadcast over ``dims`` dims)."""
    if isinstance(qparams, QParams):
        return torch.tensor(qparams.scale, dtype=torch.float32) / torch.tensor(float(count), dtype=torch.float32)
    return (qparams.scale.float() / torch.tensor(float(count), dtype=torch.float32)).reshape(-1, *([1] * (dims - 1)))


class _Int8Module(nn.Module):
    """Holds input/output qparams as plain attributes ``input_scale``, ``input_zero_point``, ``output_*``; per-channel
    output qparams (:class:`ChannelQParams`, only where a module class allows them) are buffers of the same names.
    ``dynamic_input``: the input is float32 and quantized per sample at each call (classes with
    ``accepts_dynamic_input``)."""

    accepts_dynamic_input = False

    def __init__(self, input_qparams: QParams, output_qparams, per_channel_output: bool = False):
        super().__init__()
        if isinstance(input_qparams, DynamicQParams) and not self.accepts_dynamic_input:
            raise TypeError(f"{type(self).__name__} takes static input qparams only, got DYNAMIC")
        self.__dict__.update(_qparams_fields("input", input_qparams))
        if isinstance(output_qparams, ChannelQParams):
            if not per_channel_output:
                raise TypeError(f"{type(self).__name__} has per-tensor outputs only, got per-channel qparams")
            self.register_buffer("output_scale", output_qparams.scale.float().clone())
            self.register_buffer("output_zero_point", output_qparams.zero_point.to(torch.int32).clone())
        else:
            self.__dict__.update(_qparams_fields("output", output_qparams))

    @property
    def input_qparams(self):
        """QParams, or DYNAMIC."""
        return DYNAMIC if self.dynamic_input else QParams(self.input_scale, self.input_zero_point)

    @property
    def output_qparams(self):
        """QParams, ChannelQParams (per-channel output) or None (float32 output)."""
        if isinstance(self.output_scale, torch.Tensor):
            return ChannelQParams(self.output_scale, self.output_zero_point)
        return None if self.output_scale is None else QParams(self.output_scale, self.output_zero_point)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dtype != torch.int8:
            raise TypeError(f"{type(self).__name__} expects an int8 tensor, got {x.dtype}")

    def _quantized_input(self, x: torch.Tensor):
        """(int8 codes, their qparams): an int8 input with the static qparams, or, for a dynamic input, the float input
        quantized per sample (:class:`SampleQParams` of this call)."""
        if not self.dynamic_input:
            self._check_input(x)
            return x, self.input_qparams
        if x.dtype != torch.float32:
            raise TypeError(f"{type(self).__name__} with a dynamic input expects a float32 tensor, got {x.dtype}")
        qparams = sample_qparams(x, self.input_min_scale)
        return quantize(x, qparams), qparams


class QuantizeTensor(_Int8Module):
    """float -> int8 with per-tensor qparams (the graph input, or a float op's output feeding int8 ops). Raises
    ValueError for NaN or infinite values, which no int8 code stands for (a dynamic input refuses them too; the
    native quantize step does the same)."""

    def __init__(self, qparams: QParams):
        super().__init__(qparams, qparams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(torch.isfinite(x).all()):
            raise ValueError("int8 quantization: the tensor holds non-finite values (NaN or inf)")
        return quantize(x, self.output_qparams)


class DequantizeTensor(_Int8Module):
    """int8 -> float32."""

    def __init__(self, qparams: QParams):
        super().__init__(qparams, None)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        self._check_input(q)
        return dequantize(q, self.input_qparams)


class _QuantizedWeightedOp(_Int8Module):
    """Shared int8 weight/bias state and requantization of QuantizedConv3d and QuantizedLinear.

    A per-channel input (ChannelQParams) is read as if its qparams were (1, 0): the channel scales are folded into the
    weight before it is quantized (``fold_input_scales``) and ``sum_k weight_int8[c, k] * zero_point[k]`` is taken off
    the int32 bias, which is exact. ``input_channel_scale`` / ``input_channel_zero_point`` keep the input's qparams.
    A dynamic input keeps the real bias (``float_bias``); ``dequant_scale`` and ``bias_int32`` are then None and
    computed per sample and call, as the static ones are at build time (:meth:`_dequant_scale_and_bias`)."""

    accepts_dynamic_input = True

    def __init__(self, weight, bias, activation, input_qparams, output_qparams, residual_qparams=None,
                 per_channel_output: bool = False):
        super().__init__(kernel_input_qparams(input_qparams) if not isinstance(input_qparams, DynamicQParams) else
                         input_qparams, output_qparams, per_channel_output=per_channel_output)  # fmt: skip
        if isinstance(output_qparams, ChannelQParams) and tuple(output_qparams.scale.shape) != (weight.shape[0],):
            raise ValueError(f"{type(self).__name__}: per-channel output qparams need {weight.shape[0]} channels, got "
                             f"{tuple(output_qparams.scale.shape)}")
        weight = fold_input_scales(weight.detach(), input_qparams)
        scales = weight_scales(weight)
        bias = torch.zeros(weight.shape[0]) if bias is None else bias.detach()
        self.register_buffer("weight_int8", quantize_weight(weight, scales))
        self.register_buffer("weight_scale", scales)
        self.activation = check_activation_kind(activation)
        self.__dict__.update(_qparams_fields("residual", residual_qparams))
        if self.dynamic_input:
            self.register_buffer("float_bias", bias.float().clone())
            self.register_buffer("dequant_scale", None)
            self.register_buffer("bias_int32", None)
            return
        dequant_scale = (torch.tensor(self.input_scale, dtype=torch.float32) * scales).float()
        self.register_buffer("dequant_scale", dequant_scale)
        bias_int32 = torch.round(bias.double() / dequant_scale.double())
        if isinstance(input_qparams, ChannelQParams):
            self.register_buffer("input_channel_scale", input_qparams.scale.float().clone())
            self.register_buffer("input_channel_zero_point", input_qparams.zero_point.to(torch.int32).clone())
            per_input_channel = self.weight_int8.double().reshape(*weight.shape[:2], -1).sum(dim=2)
            bias_int32 -= per_input_channel @ input_qparams.zero_point.double()
        self.register_buffer("bias_int32", bias_int32.clamp(-(2**31), 2**31 - 1).to(torch.int32))

    @property
    def adds_residual(self) -> bool:
        return self.residual_scale is not None or self.dynamic_residual

    def _dequant_scale_and_bias(self, qparams, dims: int, channel_dim: int):
        """(dequant scale float32, int32 bias) shaped to broadcast over an accumulator of ``dims`` dims: the stored
        ones, or for per-sample input qparams ``float32(scale[n] * weight_scale[c])`` and the real bias rounded onto
        that grid, one row per sample."""
        shape = [1] * dims
        shape[channel_dim] = -1
        if not self.dynamic_input:
            return self.dequant_scale.reshape(shape), self.bias_int32.reshape(shape)
        dequant_scale, bias = sample_requantization(self.float_bias, self.weight_int8, self.weight_scale, qparams.scale)
        shape[0] = dequant_scale.shape[0]
        shape[channel_dim] = dequant_scale.shape[1]
        return dequant_scale.reshape(shape), bias.reshape(shape)

    def min_dynamic_input_scale(self) -> float:
        """The smallest per-sample input scale at which no int32 bias of this layer clamps: |bias[c]| / (scale *
        weight_scale[c]) <= L[c] (``qparams.int32_bias_bound``), with a factor 2 for the float32 rounding; at least 1e-8. The
        quantizer floors its dynamic input's scale there, so near-constant samples keep the real bias."""
        if not self.dynamic_input:
            raise RuntimeError("min_dynamic_input_scale: the layer's input is not dynamic")
        bound = int32_bias_bound(self.weight_int8).double()
        need = (self.float_bias.double().abs() / (self.weight_scale.double() * bound)).max()
        return max(_MIN_SCALE, float(torch.tensor(2.0 * float(need), dtype=torch.float32)))

    def _requantize(self, acc: torch.Tensor, channel_dim: int, residual: Optional[torch.Tensor], qparams) -> torch.Tensor:
        dequant_scale, bias_int32 = self._dequant_scale_and_bias(qparams, acc.dim(), channel_dim)
        acc = acc.to(torch.int32) + bias_int32  # exact: acc holds integers
        v = acc.float() * dequant_scale
        if self.dynamic_residual:
            if residual is None or residual.dtype != torch.float32:
                raise TypeError(f"{type(self).__name__} with a dynamic residual needs a float32 residual tensor")
            residual_qparams = sample_qparams(residual, self.residual_min_scale)
            v = v + dequantize(quantize(residual, residual_qparams), residual_qparams)
        elif self.adds_residual:
            if residual is None or residual.dtype != torch.int8:
                raise TypeError(f"{type(self).__name__} with a fused residual needs an int8 residual tensor")
            v = v + (residual.float() - self.residual_zero_point) * self.residual_scale
        return _finish(apply_activation(v, self.activation), self.output_qparams)

    def _accumulation_dtype(self) -> torch.dtype:
        """float32 when every partial sum is an integer below 2**24 (then exact in any order), else float64."""
        terms_per_output = self.weight_int8[0].numel()
        return torch.float32 if terms_per_output * 255 * 127 < 2**24 else torch.float64

    def _centered_input(self, x: torch.Tensor):
        """(input codes minus zero point in the accumulation dtype, the input qparams of this call)."""
        q, qparams = self._quantized_input(x)
        return _centered(q, qparams, self._accumulation_dtype()), qparams


class QuantizedConv3d(_QuantizedWeightedOp):
    """int8 FusedConv3d: ``act(dequant(acc) [+ dequant(residual)])`` requantized; see the interface note.

    The output may be quantized per channel (:class:`ChannelQParams`: ``output_scale`` float32 [C_out] and
    ``output_zero_point`` int32 [C_out] buffers), for a tensor that unpadded pointwise convs alone read (they fold the
    scales into their weights): e.g. X3D's last block output, whose channels' ranges differ by up to 5x."""

    def __init__(self, conv: FusedConv3d, input_qparams, output_qparams, residual_qparams=None):
        if isinstance(input_qparams, ChannelQParams) and (conv.kind != "pointwise" or any(conv.padding or ())):
            raise ValueError(f"QuantizedConv3d: per-channel input qparams need an unpadded pointwise conv, got a "
                             f"{conv.kind} conv with padding {conv.padding}")
        super().__init__(conv.weight, conv.bias, conv.activation, input_qparams, output_qparams, residual_qparams,
                         per_channel_output=True)
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.kind = conv.kind

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        # Zero padding of (x - zero_point) is padding x with its zero point, i.e. with real 0.
        centered, qparams = self._centered_input(x)
        acc = F.conv3d(centered, self.weight_int8.to(self._accumulation_dtype()), None, self.stride, self.padding,
                       self.dilation, self.groups)  # fmt: skip
        return self._requantize(acc, 1, residual, qparams)

    def extra_repr(self) -> str:
        source = "dynamic" if self.dynamic_input else f"({self.input_scale:.3g}, {self.input_zero_point})"
        return (
            f"kind={self.kind}, weight={tuple(self.weight_int8.shape)}, stride={self.stride}, padding={self.padding}, "
            f"groups={self.groups}, activation={self.activation}, adds_residual={self.adds_residual}"
            f"{' (dynamic)' if self.dynamic_residual else ''}, input={source}, output={self.output_qparams}"
        )


class QuantizedLinear(_QuantizedWeightedOp):
    """int8 nn.Linear over the last dim, same requantization as QuantizedConv3d."""

    def __init__(self, linear: nn.Linear, input_qparams, output_qparams, activation: str = "identity"):
        if isinstance(input_qparams, ChannelQParams):  # its channels are the last dim, ChannelQParams' are dim 1
            raise ValueError("QuantizedLinear takes per-tensor input qparams only")
        super().__init__(linear.weight, linear.bias, activation, input_qparams, output_qparams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic_input and x.dim() < 2:
            raise ValueError(f"QuantizedLinear with a dynamic input needs a batch dim, got shape {tuple(x.shape)}")
        centered, qparams = self._centered_input(x)
        acc = centered @ self.weight_int8.to(self._accumulation_dtype()).t()
        return self._requantize(acc, acc.dim() - 1, None, qparams)


class QuantizedSqueezeExcitation(_Int8Module):
    """int8 in/out; the gate (mean, two small Linears, sigmoid) and the product run in float32 on dequantized x.

    The output may be quantized per channel (``output_scale`` float32 [C], ``output_zero_point`` int32 [C]): the gate
    scales each channel differently, so one scale for all wastes most levels of the weakly gated channels."""

    accepts_dynamic_input = True

    def __init__(self, se: FusedSqueezeExcitation, input_qparams, output_qparams):
        super().__init__(input_qparams, output_qparams, per_channel_output=True)
        channels = se.fc1.out_features
        if isinstance(output_qparams, ChannelQParams) and tuple(output_qparams.scale.shape) != (channels,):
            raise ValueError(f"QuantizedSqueezeExcitation: per-channel output qparams need {channels} channels, "
                             f"got {tuple(output_qparams.scale.shape)}")
        self.se = se

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, qparams = self._quantized_input(x)
        return _finish(self.se(dequantize(q, qparams)), self.output_qparams)


class QuantizedGlobalAvgPool(_Int8Module):
    """Mean over all dims after C, from the exact integer sum."""

    accepts_dynamic_input = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, qparams = self._quantized_input(x)
        dims = tuple(range(2, q.dim()))
        count = 1
        for d in dims:
            count *= q.shape[d]
        total = _centered(q, qparams, torch.float64).sum(dim=dims, keepdim=True)
        return _finish(total.float() * _mean_scale(qparams, count, q.dim()), self.output_qparams)


def avg_pool_is_supported(module: nn.Module) -> bool:
    """Whether an average pool has the int8 (and native) form: a 3-D pool without padding, ceil mode or divisor
    override (a classifier head's fixed-kernel pool, as vanilla X3D's and ResNet's), so every window is whole."""
    if type(module) is not nn.AvgPool3d or module.ceil_mode or module.divisor_override is not None:
        return False
    return all(p == 0 for p in triple(module.padding))


def avg_pool_window(pool: nn.AvgPool3d) -> tuple:
    """(kernel, stride) of an average pool as two 3-tuples (a missing stride is the kernel, as in torch)."""
    return triple(pool.kernel_size), triple(pool.stride if pool.stride is not None else pool.kernel_size)


class QuantizedAvgPool3d(_Int8Module):
    """A fixed-kernel 3-D average pool (no padding, whole windows) on int8: the exact integer sum of each window's
    (q - zp), times float32(scale) / float32(window size), in float32 (as :class:`QuantizedGlobalAvgPool`)."""

    accepts_dynamic_input = True

    def __init__(self, pool: nn.AvgPool3d, input_qparams, output_qparams):
        super().__init__(input_qparams, output_qparams)
        if not avg_pool_is_supported(pool):
            raise ValueError(f"QuantizedAvgPool3d: only an nn.AvgPool3d without padding, ceil_mode or divisor_override "
                             f"is supported, got {pool}")
        self.kernel_size, self.stride = avg_pool_window(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"QuantizedAvgPool3d expects a 5-D [N, C, T, H, W] tensor, got shape {tuple(x.shape)}")
        q, qparams = self._quantized_input(x)
        # divisor_override=1: the window sums themselves, exact in float64
        total = F.avg_pool3d(_centered(q, qparams, torch.float64), self.kernel_size, self.stride, divisor_override=1)
        count = self.kernel_size[0] * self.kernel_size[1] * self.kernel_size[2]
        return _finish(total.float() * _mean_scale(qparams, count, 5), self.output_qparams)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class QuantizedActivation(_Int8Module):
    """int8 -> int8 elementwise activation as a 256-entry table ``table[q + 128]``."""

    def __init__(self, activation: str, input_qparams, output_qparams):
        super().__init__(input_qparams, output_qparams)
        self.activation = check_activation_kind(activation)
        codes = torch.arange(QMIN, QMAX + 1, dtype=torch.int8)
        values = apply_activation(dequantize(codes, input_qparams), activation)
        self.register_buffer("table", quantize(values, output_qparams) if output_qparams else values)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        self._check_input(q)
        return self.table[q.long() - QMIN]


class _QuantizedBinary(_Int8Module):
    """``act(dequant(a) OP dequant(b))`` requantized (b may broadcast); ``input_*`` are a's qparams, ``other_*`` b's."""

    def __init__(self, input_qparams, other_qparams, output_qparams, activation: str = "identity"):
        super().__init__(input_qparams, output_qparams)
        self.__dict__.update(_qparams_fields("other", other_qparams))
        self.activation = check_activation_kind(activation)

    @staticmethod
    def combine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self._check_input(a)
        self._check_input(b)
        v = self.combine(dequantize(a, self.input_qparams), dequantize(b, QParams(self.other_scale, self.other_zero_point)))
        return _finish(apply_activation(v, self.activation), self.output_qparams)


class QuantizedAdd(_QuantizedBinary):
    """int8 ``act(a + b)`` (residual adds of plain ResNet-style models)."""

    combine = staticmethod(torch.add)


class QuantizedMul(_QuantizedBinary):
    """int8 ``act(a * b)`` (e.g. the squeeze-excitation gate of plain X3D models)."""

    combine = staticmethod(torch.mul)


class QuantizedCat(_Int8Module):
    """``torch.cat`` of int8 tensors (SlowFast's fusion of the fast pathway into the slow one, and its head): each input
    is requantized to the output's qparams, ``quantize(cat(dequant(a_i)), output)``; ``output_qparams=None`` returns the
    float32 concatenation. Requantizing costs an input at most half an output LSB (none where the input already has
    the output's qparams) and keeps the convs on both sides int8; the output range is observed on the concatenation,
    so it covers every input. ``input_*`` are the first input's qparams; ``input_scales`` / ``input_zero_points`` hold
    every input's, in order."""

    def __init__(self, input_qparams: Sequence[QParams], output_qparams: Optional[QParams], dim: int):
        input_qparams = list(input_qparams)
        if not input_qparams or not all(type(qp) is QParams for qp in input_qparams):
            raise TypeError(f"QuantizedCat needs static per-tensor QParams for each of its inputs, got {input_qparams}")
        if output_qparams is not None and type(output_qparams) is not QParams:
            raise TypeError(f"QuantizedCat has a per-tensor output only, got {output_qparams}")
        super().__init__(input_qparams[0], output_qparams)
        self.input_scales = tuple(float(qp.scale) for qp in input_qparams)
        self.input_zero_points = tuple(int(qp.zero_point) for qp in input_qparams)
        self.dim = int(dim)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        if len(tensors) != len(self.input_scales):
            raise ValueError(f"QuantizedCat was built for {len(self.input_scales)} inputs, got {len(tensors)}")
        values = []
        for q, scale, zero_point in zip(tensors, self.input_scales, self.input_zero_points):
            self._check_input(q)
            values.append(dequantize(q, QParams(scale, zero_point)))
        return _finish(torch.cat(values, self.dim), self.output_qparams)

    def extra_repr(self) -> str:
        inputs = ", ".join(f"({s:.3g}, {z})" for s, z in zip(self.input_scales, self.input_zero_points))
        return f"dim={self.dim}, inputs=[{inputs}], output={self.output_qparams}"


def max_pool_takes_int8(module: nn.Module) -> bool:
    """Whether a module is a max pool that :class:`QuantizedMaxPool` runs on int8 codes (1-, 2- or 3-D, without
    indices)."""
    return isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)) and not module.return_indices


class QuantizedMaxPool(nn.Module):
    """A max pool (1-, 2- or 3-D, without indices) that also takes int8 codes and returns int8 codes in the same
    qparams: quantization is monotone, so the max of the codes is the code of the max (exact). Float inputs (a
    dynamic tensor, float code) are pooled as they are. The codes go through float32 (exact for int8): torch's own
    int8 max pools refuse inputs of more than 127 elements per channel."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        if not max_pool_takes_int8(pool):
            raise ValueError(f"QuantizedMaxPool: an nn.MaxPool1d/2d/3d without return_indices is needed, got {pool}")
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.int8:
            return self.pool(x.float()).to(torch.int8)
        return self.pool(x)


INT8_MODULE_TYPES = (
    QuantizeTensor,
    DequantizeTensor,
    QuantizedConv3d,
    QuantizedLinear,
    QuantizedSqueezeExcitation,
    QuantizedGlobalAvgPool,
    QuantizedAvgPool3d,
    QuantizedActivation,
    QuantizedAdd,
    QuantizedMul,
    QuantizedCat,
    QuantizedMaxPool,
)
for _module_type in INT8_MODULE_TYPES:
    register_leaf_type(_module_type)
