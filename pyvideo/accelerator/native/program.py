"""compile_native: a deploy-form or int8 model with its native-capable layers run as one native program.

``lower_to_native`` / ``lower_quantized_to_native`` swap layers one by one, so every layer still pays a Python module
call, a trip through the torch dispatcher and a DLPack hand-over (~15-20 us each, ~100 layers per X3D clip).
``compile_native`` instead turns the longest native-capable prefix of the model's traced graph into one
``pyvideo._C.Program`` (csrc/runtime/program.h): a list of steps over channels-last buffers that C++ runs in one call,
recycling each buffer once its last reader has run. The rest of the graph (from the first node that cannot run
natively, e.g. a dilated conv or a ceil_mode pool) stays in PyTorch, with its layers on the per-layer native ops where
they have one, and reads the program's outputs.

Native-capable nodes: FusedConv3d (dilation 1; groups 1 or depthwise) with its fused residual and activation,
FusedSqueezeExcitation, global average pooling, fixed-kernel nn.AvgPool3d (no padding) and nn.MaxPool3d (dilation 1,
no ceil_mode or indices; padded, as after a ResNet stem; on float32 or, in int8 models, on int8 codes), nn.Identity /
nn.Dropout in eval mode, and in int8 models QuantizeTensor, QuantizedConv3d (int8 output, or float32 where only
float code reads it, e.g. the logits), QuantizedSqueezeExcitation (int8 output per tensor or per channel, or float32),
QuantizedGlobalAvgPool and QuantizedAvgPool3d, QuantizedLinear over the channels. The arithmetic is the per-layer
ops' (same kernels): fp32 outputs equal ``lower_to_native``'s up to float summation order in the pools and
squeeze-excitation means; int8 outputs equal ``lower_quantized_to_native``'s.
Dynamically quantized tensors (``quantize_model(..., dynamic_ranges=...)``) stay float32 in the program too: one
``dynamic_quantize`` step per such tensor quantizes each sample with its own range, and the int8 steps reading it
take that run's per-sample qparams (and derive their dequantization scales and int32 biases from them), exactly as
the reference modules do.

fp32 squeeze-excitation fusion: a FusedSqueezeExcitation whose output is read only by a pointwise conv (as X3D's
depthwise conv -> SE -> pointwise conv) becomes a gate step (the SE's means, two small Linears and sigmoid) and a
pointwise conv that reads ``act(x * gate)`` on the fly, so the SE output is never stored; a depthwise conv feeding
the gate also sums its output rows while storing them, so the gate needs no pass over the tensor.

fp32 conv -> depthwise fusion (in the C++ runtime, see csrc/runtime/program.h): a dense conv (X3D's expansion convs
and its stem's spatial conv) whose output only feeds the depthwise conv after it runs together with it where measured
to pay, its output computed a few rows at a time into per-thread rings instead of being stored (bit-identical
results).
"""
import operator
from typing import Dict, List, Optional

import torch
import torch.fx as fx
import torch.nn as nn
from torch.utils.dlpack import to_dlpack

from pyvideo._native import native, num_threads
from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation
from pyvideo.accelerator.deployable.conv import triple
from pyvideo.accelerator.deployable.graph import copy_module, trace
from pyvideo.accelerator.deployable.pool import is_global_pool
from pyvideo.accelerator.quantization.graph_quantizer import FloatLinear
from pyvideo.accelerator.quantization.int8_modules import (
    QuantizedAvgPool3d,
    QuantizedCat,
    QuantizedConv3d,
    QuantizedGlobalAvgPool,
    QuantizedLinear,
    QuantizedMaxPool,
    QuantizedSqueezeExcitation,
    QuantizeTensor,
    avg_pool_is_supported,
    avg_pool_window,
)
from pyvideo.ops.conv3d import activation_code, from_channels_last, pack_conv3d_weight, pack_depthwise_weight
from pyvideo.ops.quantized_conv3d import pack_quantized_depthwise_weight, pack_quantized_weight

from .conv import _native_replacement as _native_fp32_layer
from .conv import _replace_modules
from .conv import is_supported as conv_is_supported
from .quantized import _native_replacement as _native_int8_layer
from .quantized import is_supported as quantized_conv_is_supported
from .quantized import output_qparams


def _per_layer_native(module: nn.Module) -> Optional[nn.Module]:
    return _native_fp32_layer(module) or _native_int8_layer(module)


class NativeProgram(nn.Module):
    """Runs a ``pyvideo._C.Program`` on ``[N, C, T, H, W]`` float input and returns a tuple of its outputs, each
    presented as its layout says: ``ncthw`` a logical ``[N, C, T, H, W]`` tensor in channels-last memory, ``nthwc``
    the stored ``[N, T, H, W, C]`` tensor, ``vector`` an ``[N, C]`` matrix (float32 or int8)."""

    def __init__(self, program):
        super().__init__()
        self.program = program
        self.layouts = list(program.output_layouts)

    def forward(self, *inputs):
        """One ``[N, C, T, H, W]`` tensor, or for a program with several inputs (SlowFast's pathways) one tensor
        per input, as separate arguments or one list."""
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        expected = self.program.num_inputs
        if len(inputs) != expected:
            raise ValueError(f"NativeProgram takes {expected} input{'s' if expected > 1 else ''} (one [N, C, T, H, W] "
                             f"tensor each), got {len(inputs)}")
        for x in inputs:
            if not isinstance(x, torch.Tensor) or x.dim() != 5:
                raise ValueError(f"NativeProgram expects 5-D [N, C, T, H, W] tensors, got {getattr(x, 'shape', type(x))}")
            if x.dtype != torch.float32 or x.device.type != "cpu":
                raise TypeError(f"NativeProgram expects float32 CPU tensors, got {x.dtype} on {x.device}")
        inputs = [x.detach() for x in inputs]
        if any(x.shape[0] == 0 for x in inputs):
            # An empty batch gives empty outputs, as the torch model does; their shapes come from a run on one
            # all-zero clip per input (which also checks the clips' shapes).
            if not all(x.shape[0] == 0 for x in inputs):
                raise ValueError(f"NativeProgram's inputs differ in batch size: {[x.shape[0] for x in inputs]}")
            return tuple(out[:0] for out in self.forward(*[x.new_zeros((1, *x.shape[1:])) for x in inputs]))
        channels_last = [x.permute(0, 2, 3, 4, 1) for x in inputs]
        if all(c.is_contiguous() for c in channels_last):  # channels_last_3d memory: the steps' layout, read in place
            args, layout = [to_dlpack(c) for c in channels_last], "nthwc"
        else:  # the runtime copies [N, C, T, H, W] to channels-last itself (faster than torch's permuted copy)
            args, layout = [to_dlpack(x.contiguous()) for x in inputs], "ncthw"
        outputs = self.program.run(args[0] if len(args) == 1 else args, num_threads(), layout)
        return tuple(_present(torch.from_dlpack(out), layout) for out, layout in zip(outputs, self.layouts))

    def save(self, path: str) -> None:
        """Write the program to a model file that :func:`load_program` (or the C API, without Python or torch)
        reads back."""
        self.program.save(str(path))

    def extra_repr(self) -> str:
        return f"steps={self.program.num_steps}, outputs={self.layouts}\n{self.program.describe().rstrip()}"


def load_program(path: str) -> NativeProgram:
    """A :class:`NativeProgram` from a model file written by :meth:`NativeProgram.save`; ValueError when the file is
    missing, truncated or malformed."""
    return NativeProgram(native().Program.load(str(path)))


def _present(stored: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "ncthw":
        return from_channels_last(stored)
    if layout == "vector":
        return stored.reshape(stored.shape[0], stored.shape[4])
    return stored


def _geometry(conv) -> dict:
    return dict(kernel=list(conv.weight_int8.shape[2:] if hasattr(conv, "weight_int8") else conv.weight.shape[2:]),
                stride=list(conv.stride), padding=list(conv.padding))


class _Builder:
    """Emits program steps for graph nodes; ``value[node]`` is the program value a native node produced."""

    def __init__(self, modules: Optional[Dict[str, nn.Module]] = None, fuse_squeeze_excitation: bool = False):
        self.program = native().Program()
        self.modules = modules or {}
        self.fuse_squeeze_excitation = fuse_squeeze_excitation
        # Pointwise conv nodes, not emitted yet, that read an fp32 SE emitted as a gate: conv node -> (program value
        # of the gate, activation code applied after it, [the SE node and the pass-through nodes between]). Those
        # nodes' value is the SE's input.
        self.gated: Dict[fx.Node, tuple] = {}
        self.value: Dict[fx.Node, int] = {}
        # How each native node's value is laid out logically: "ncthw" (a normal [N, C, T, H, W] tensor), "nthwc"
        # (after a channels-last permute, as classifier heads do before their Linear) or "vector" ([N, C]).
        self.layout: Dict[fx.Node, str] = {}
        self.int8_values = set()  # program values holding int8 data
        self.pooled = set()  # values of global pools ([N, C, 1, 1, 1]: a Flatten makes them [N, C] vectors)
        # float32 value -> (its per-sample quantized (dynamic_quantize) value, that step's minimum scale)
        self.dynamic_of: Dict[int, tuple] = {}

    def dynamic(self, value: int, min_scale: float) -> int:
        """The int8 value of float32 ``value`` quantized per sample in each run (one step per value, shared by its
        readers, which the quantizer gave one minimum scale)."""
        if value not in self.dynamic_of:
            self.dynamic_of[value] = (self.program.dynamic_quantize(value, min_scale=min_scale), min_scale)
            self.int8_values.add(self.dynamic_of[value][0])
        quantized, step_min_scale = self.dynamic_of[value]
        if step_min_scale != min_scale:
            raise ValueError(f"readers of one dynamic tensor disagree on its minimum scale ({step_min_scale} vs "
                             f"{min_scale}); quantize the model with pyvideo's quantize_model / convert")
        return quantized

    def pool_value(self, value: int) -> int:
        self.pooled.add(value)
        return value

    def quantized_input(self, value: int, module: nn.Module):
        """(program value, input scale, input zero point) an int8 step reads: the value with the module's static
        qparams, or its dynamic_quantize value (whose per-sample qparams replace the placeholders 1.0 and 0)."""
        if module.dynamic_input:
            return self.dynamic(value, module.input_min_scale), 1.0, 0
        return value, module.input_scale, module.input_zero_point

    def inputs(self, node: fx.Node) -> Optional[List[int]]:
        """Program values of node's tensor arguments, or None when one of them is not native."""
        args = [a for a in node.args if isinstance(a, fx.Node)]
        if len(args) != len(node.args) or node.kwargs or not args:
            return None
        values = [self.value.get(a) for a in args]
        return None if any(v is None for v in values) else values

    def emit(self, node: fx.Node, module: nn.Module) -> Optional[int]:
        """The value produced by ``module`` called at ``node``, or None when it cannot run natively."""
        value = self.emit_module(node, module)
        int8_out = isinstance(module, QuantizeTensor) or (
            isinstance(module, (QuantizedConv3d, QuantizedSqueezeExcitation, QuantizedGlobalAvgPool, QuantizedAvgPool3d,
                                QuantizedLinear, QuantizedCat))
            and module.output_scale is not None)
        if value is not None and int8_out:
            self.int8_values.add(value)
        return value

    def emit_module(self, node: fx.Node, module: nn.Module) -> Optional[int]:
        values = self.inputs(node)
        if values is None:
            return None
        layout = self.layout[node.args[0]]
        self.layout[node] = layout
        if type(module) is nn.Flatten and (module.start_dim, module.end_dim) == (1, -1) and layout == "ncthw" \
                and values[0] in self.pooled:
            self.layout[node] = "vector"  # [N, C, 1, 1, 1] -> [N, C]: the same storage
            return values[0]
        if layout in ("nthwc", "vector"):
            return self.emit_head_layer(values, module)
        if layout != "ncthw":
            return None
        if isinstance(module, QuantizedCat):
            return self.emit_quantized_cat(node, values, module)
        x, residual = values[0], (values[1] if len(values) > 1 else -1)
        if len(values) > 2 or (len(values) == 2 and not getattr(module, "adds_residual", False)):
            return None
        p = self.program
        if isinstance(module, FusedConv3d) and conv_is_supported(module) and module.padding is not None:
            depthwise = module.kind == "depthwise"
            weight = (pack_depthwise_weight if depthwise else pack_conv3d_weight)(module.weight)
            gate, gate_activation, _ = self.gated.get(node, (-1, 0, None))
            value = p.conv(x, depthwise, out_channels=module.out_channels, weight=weight,
                           bias=module.bias.detach().float().contiguous(), residual=residual,
                           activation=activation_code(module.activation), input_gate=gate,
                           input_activation=gate_activation, **_geometry(module))
            self.gated.pop(node, None)
            return value
        if isinstance(module, FusedSqueezeExcitation):
            fc0, fc1 = module.fc0, module.fc1
            reader, chain = self.gated_reader(node) if self.fuse_squeeze_excitation else (None, [])
            if reader is not None:
                gate = p.squeeze_excitation_gate(x, fc0.weight.detach(), _detached(fc0.bias), fc1.weight.detach(),
                                                 _detached(fc1.bias), activation_code(module.hidden_activation))
                self.gated[reader] = (gate, activation_code(module.activation), chain)
                return x
            return self.emit_squeeze_excitation(x, module)
        if is_global_pool(module):
            return self.pool_value(p.global_avg_pool(x))
        if avg_pool_is_supported(module) and self.dtype_is_float(x):
            kernel, stride = avg_pool_window(module)
            return p.avg_pool(x, kernel=list(kernel), stride=list(stride))
        if isinstance(module, QuantizedMaxPool):
            module = module.pool
        if _max_pool_is_supported(module):
            # float32, or int8 codes (the pool keeps their qparams). A padding over half the kernel (which torch
            # refuses too) is a ValueError: the prefix ends here.
            stride = module.stride if module.stride is not None else module.kernel_size
            value = p.max_pool(x, kernel=list(triple(module.kernel_size)), stride=list(triple(stride)),
                               padding=list(triple(module.padding)))
            if not self.dtype_is_float(x):
                self.int8_values.add(value)
            return value
        if isinstance(module, QuantizeTensor):
            return p.quantize(x, module.output_scale, module.output_zero_point)
        if isinstance(module, QuantizedConv3d) and quantized_conv_is_supported(module, float_output=True):
            depthwise = module.kind == "depthwise"
            if depthwise:
                weight, sums = pack_quantized_depthwise_weight(module.weight_int8), None
            else:
                weight, sums = pack_quantized_weight(module.weight_int8)
            x, input_scale, input_zero_point = self.quantized_input(x, module)
            if module.dynamic_residual:
                residual = self.dynamic(residual, module.residual_min_scale)
            static_residual = module.adds_residual and not module.dynamic_residual
            output_scale, output_zero_point = output_qparams(module)
            return p.quantized_conv(
                x, depthwise, out_channels=module.weight_int8.shape[0], weight=weight, weight_sum=sums,
                input_scale=input_scale, input_zero_point=input_zero_point, residual=residual,
                residual_scale=module.residual_scale if static_residual else 1.0,
                residual_zero_point=module.residual_zero_point if static_residual else 0,
                activation=activation_code(module.activation), output_scale=output_scale,
                output_zero_point=output_zero_point, **_requantization(module), **_geometry(module))
        if isinstance(module, QuantizedSqueezeExcitation):  # int8 output, or float32 (read by dynamic readers)
            fc0, fc1 = module.se.fc0, module.se.fc1
            output_scale, output_zero_point = output_qparams(module)
            x, input_scale, input_zero_point = self.quantized_input(x, module)
            return p.quantized_squeeze_excitation(
                x, fc0.weight.detach(), _detached(fc0.bias), fc1.weight.detach(), _detached(fc1.bias),
                activation_code(module.se.hidden_activation), activation_code(module.se.activation),
                input_scale, input_zero_point, output_scale, output_zero_point)
        if isinstance(module, QuantizedGlobalAvgPool):
            x, input_scale, input_zero_point = self.quantized_input(x, module)
            return self.pool_value(p.quantized_global_avg_pool(x, input_scale, input_zero_point, module.output_scale,
                                                               module.output_zero_point or 0))
        if isinstance(module, QuantizedAvgPool3d):
            x, input_scale, input_zero_point = self.quantized_input(x, module)
            return p.quantized_avg_pool(x, kernel=list(module.kernel_size), stride=list(module.stride),
                                        input_scale=input_scale, input_zero_point=input_zero_point,
                                        output_scale=module.output_scale,
                                        output_zero_point=module.output_zero_point or 0)
        return None

    def gated_reader(self, node: fx.Node):
        """(the pointwise FusedConv3d that is the only reader of SE ``node``, reading it as its input and not as a
        residual, through single-reader pass-through modules such as X3D's Identity ``act_func_1``; the SE node and
        those pass-through nodes), or (None, [])."""
        chain = [node]
        while True:
            users = list(chain[-1].users)
            if len(users) != 1 or users[0].op != "call_module" or users[0].target not in self.modules:
                return None, []
            reader, module = users[0], self.modules[users[0].target]
            if not _passes_through(module):
                break
            chain.append(reader)
        if not isinstance(module, FusedConv3d) or module.kind != "pointwise" or not conv_is_supported(module):
            return None, []
        if reader.kwargs or not reader.args or reader.args[0] is not chain[-1] or chain[-1] in reader.args[1:]:
            return None, []
        return reader, chain

    def emit_squeeze_excitation(self, x: int, module: FusedSqueezeExcitation) -> int:
        fc0, fc1 = module.fc0, module.fc1
        return self.program.squeeze_excitation(x, fc0.weight.detach(), _detached(fc0.bias), fc1.weight.detach(),
                                               _detached(fc1.bias), activation_code(module.hidden_activation),
                                               activation_code(module.activation))

    def materialize_unread_gates(self, source: fx.GraphModule) -> None:
        """SEs whose pointwise reader ended up outside the program (the native prefix stopped before it): their
        output escapes, so it is computed by a plain SE step after all."""
        for _, _, chain in self.gated.values():
            if chain[0] in self.value:
                value = self.emit_squeeze_excitation(self.value[chain[0]], source.get_submodule(chain[0].target))
                for node in chain:
                    if node in self.value:
                        self.value[node] = value
        self.gated.clear()

    def emit_head_layer(self, values: List[int], module: nn.Module) -> Optional[int]:
        """Layers a classifier head applies to a channels-last view or to a flattened pooled vector: Linear over the
        channels (a pointwise conv) and its int8 form."""
        if len(values) != 1:
            return None
        if type(module) in (nn.Linear, FloatLinear):  # FloatLinear: an int8 model's float classifier
            weight = module.weight.detach().float().t().reshape(1, 1, 1, module.in_features, module.out_features)
            bias = module.bias if module.bias is not None else torch.zeros(module.out_features)
            return self.program.conv(values[0], False, kernel=[1, 1, 1], stride=[1, 1, 1], padding=[0, 0, 0],
                                     out_channels=module.out_features, weight=weight.contiguous(),
                                     bias=bias.detach().float().contiguous(), residual=-1,
                                     activation=activation_code("identity"))
        if isinstance(module, QuantizedLinear) and not isinstance(module.output_scale, torch.Tensor):
            x, input_scale, input_zero_point = self.quantized_input(values[0], module)
            value = self.program.quantized_linear(x, module.weight_int8.contiguous(), input_scale=input_scale,
                                                  input_zero_point=input_zero_point,
                                                  activation=activation_code(module.activation),
                                                  **_requantization(module))
            if module.output_scale is None:
                return value
            # An int8 output (read by an int8 pool, as vanilla X3D's head): the float result quantized as the
            # module's requantization does, round(y / scale) + zero point, so the two steps equal the module exactly.
            return self.program.quantize(value, module.output_scale, module.output_zero_point)
        return None

    def emit_function(self, node: fx.Node) -> Optional[int]:
        """``torch.cat`` of native float32 ``[N, C, T, H, W]`` values along the channels (SlowFast's fusion of the
        fast pathway into the slow one, and its head's concatenation of the pooled pathways): concat steps."""
        if node.target is not torch.cat or not node.args or not isinstance(node.args[0], (list, tuple)):
            return None
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if dim not in (1, -4) or set(node.kwargs) - {"dim"} or len(node.args) > 2:
            return None
        sources = list(node.args[0])
        if len(sources) < 2 or not all(isinstance(s, fx.Node) and s in self.value for s in sources):
            return None
        values = [self.value[s] for s in sources]
        if any(self.layout[s] != "ncthw" for s in sources) or not all(self.dtype_is_float(v) for v in values):
            return None
        value = values[0]
        for other in values[1:]:
            value = self.program.concat(value, other)
        self.layout[node] = "ncthw"
        if all(v in self.pooled for v in values):
            self.pooled.add(value)
        return value

    def emit_quantized_cat(self, node: fx.Node, values: List[int], module: QuantizedCat) -> Optional[int]:
        """An int8 concatenation of two int8 values along the channels (SlowFast's pathway fusion after
        quantization): one quantized_concat step, the arithmetic of the module (each input requantized to the
        output's qparams). More inputs would need one rounding per pair, which the module does not do: those stay in
        torch."""
        if len(values) != 2 or module.dim not in (1, -4) or any(self.layout[a] != "ncthw" for a in node.args):
            return None
        if any(self.dtype_is_float(v) for v in values):
            return None
        value = self.program.quantized_concat(  # (QuantizedCat's output qparams are per tensor or None)
            values[0], values[1], first_scale=module.input_scales[0], first_zero_point=module.input_zero_points[0],
            second_scale=module.input_scales[1], second_zero_point=module.input_zero_points[1],
            output_scale=module.output_scale, output_zero_point=module.output_zero_point or 0)
        if all(v in self.pooled for v in values):
            self.pooled.add(value)
        return value

    def emit_method(self, node: fx.Node) -> Optional[int]:
        """Tensor methods of classifier heads: permute to channels-last (free: that is the storage order) and the
        mean over T, H, W of a channels-last view (a global average pool)."""
        source = node.args[0] if node.args else None
        if not isinstance(source, fx.Node) or source not in self.value:
            return None
        layout, value = self.layout[source], self.value[source]
        if node.target == "permute" and layout == "ncthw" and _dims(node.args[1:], node.kwargs) == [0, 2, 3, 4, 1]:
            self.layout[node] = "nthwc"
            return value
        if node.target == "permute" and layout == "nthwc" and _dims(node.args[1:], node.kwargs) == [0, 4, 1, 2, 3]:
            self.layout[node] = "ncthw"  # back from a channels-last view (after a head's Linear): free as well
            return value
        if node.target == "mean" and layout == "nthwc" and _dims(node.args[1:], node.kwargs) == [1, 2, 3] \
                and not node.kwargs.get("keepdim", False) and len(node.args) <= 2 and self.dtype_is_float(value):
            self.layout[node] = "vector"
            return self.program.global_avg_pool(value)
        return None

    def dtype_is_float(self, value: int) -> bool:
        return value not in self.int8_values


def _dims(args, kwargs) -> Optional[List[int]]:
    """The dims of a permute/mean call, flattened: permute(0, 2, 3, 4, 1) or permute((0, 2, 3, 4, 1)) or dim=..."""
    dims = kwargs.get("dims", kwargs.get("dim", args[0] if len(args) == 1 else list(args)))
    if isinstance(dims, int):
        dims = [dims]
    try:
        return [int(d) for d in dims]
    except (TypeError, ValueError):
        return None


def _max_pool_is_supported(module: nn.Module) -> bool:
    """Whether a max pool has the program's form: 3-D, dilation 1, no ceil_mode (floor output sizes), no indices."""
    return type(module) is nn.MaxPool3d and all(d == 1 for d in triple(module.dilation)) and not module.ceil_mode \
        and not module.return_indices


def _requantization(module: nn.Module) -> dict:
    """The int32 bias and dequantization scales of an int8 conv / linear step; for a dynamic input, which derives
    them per sample and run, the weight scales and the real bias instead (and empty placeholders)."""
    if not module.dynamic_input:
        return dict(bias=module.bias_int32, dequant_scale=module.dequant_scale)
    return dict(bias=torch.empty(0, dtype=torch.int32), dequant_scale=torch.empty(0, dtype=torch.float32),
                weight_scale=module.weight_scale.detach().float().contiguous(),
                float_bias=module.float_bias.detach().float().contiguous())


def _detached(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if t is None else t.detach().float().contiguous()


def _passes_through(module: nn.Module) -> bool:
    """Modules that return their input unchanged in eval mode."""
    return type(module) is nn.Identity or (isinstance(module, nn.Dropout) and not module.training)


def _program_inputs(graph: fx.Graph) -> List[List[fx.Node]]:
    """The graph nodes holding each program input: one placeholder per input, or, for a model that takes a list of
    clips (SlowFast) traced as one placeholder, the ``x[i]`` getitem nodes of each index i (the program then takes
    the list's clips in index order)."""
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) == 1:
        users = list(placeholders[0].users)
        if users and all(u.op == "call_function" and u.target is operator.getitem and len(u.args) == 2
                         and isinstance(u.args[1], int) and not u.kwargs for u in users):
            indices = sorted({u.args[1] for u in users})
            if indices != list(range(len(indices))):
                raise ValueError(f"compile_native: the model reads clips {indices} of its input list; a program "
                                 "takes every clip from the first on")
            return [[u for u in users if u.args[1] == i] for i in indices]
    return [[p] for p in placeholders]


def _input_channels(graph_module: fx.GraphModule, placeholder: fx.Node) -> Optional[int]:
    """The channel count of the graph input, read from the first layer that consumes it (through quantize/identity)."""
    frontier = list(placeholder.users)
    while frontier:
        node = frontier.pop(0)
        if node.op != "call_module":
            continue
        module = graph_module.get_submodule(node.target)
        if isinstance(module, FusedConv3d):
            return module.in_channels
        if isinstance(module, QuantizedConv3d):
            return module.weight_int8.shape[1] * module.groups
        if isinstance(module, (FusedSqueezeExcitation, QuantizedSqueezeExcitation)):
            se = module if isinstance(module, FusedSqueezeExcitation) else module.se
            return se.fc0.in_features
        if isinstance(module, QuantizeTensor) or _passes_through(module):
            frontier.extend(node.users)
    return None


def compile_native(model: nn.Module, fuse_squeeze_excitation: bool = True,
                   fuse_pointwise_depthwise: bool = True) -> fx.GraphModule:
    """``model`` (a deploy form from ``convert_to_deployable_form``, or an int8 model from ``quantize_model`` /
    ``convert_qat``) with the longest native-capable prefix of its graph replaced by one :class:`NativeProgram`.

    The result is an ``fx.GraphModule`` in eval mode; ``model`` is not modified. A model that takes a list of clips
    (SlowFast's deploy form, one clip per pathway) compiles into a program with one input per clip and still takes
    the list; ``torch.cat`` along the channels runs natively (SlowFast's pathway fusion and pooled head). Raises
    ValueError when the model's first layer cannot run natively (nothing to compile), RuntimeError when torch.fx
    cannot trace it and TypeError for a non-module.
    ``fuse_squeeze_excitation=False`` is a debugging / benchmarking switch: fp32 squeeze-excitations then run as
    separate steps that store their output, as before the fusion (int8 programs are the same either way).
    ``fuse_pointwise_depthwise=False`` likewise runs every fp32 dense conv (pointwise or, like X3D's stem, spatial)
    as its own step even where its output only feeds a depthwise conv (the fusion is decided when the program runs, so it is the program's setting
    ``set_fuse_pointwise_depthwise``, not part of model files; the results are bit-identical either way).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"compile_native expects an nn.Module, got {type(model).__name__}")
    try:
        source = trace(copy_module(model).eval())
    except Exception as error:  # noqa: BLE001 - whatever the model's own code raises under torch.fx
        raise RuntimeError(
            f"compile_native needs a torch.fx-traceable model (tensor inputs, or one list of clips); tracing "
            f"{type(model).__name__} failed ({type(error).__name__}: {error}). lower_to_native(model) still runs its "
            "convs on the native kernels, one op per layer") from error
    inputs = _program_inputs(source.graph)
    channels = [_input_channels(source, nodes[0]) for nodes in inputs]
    if not inputs or any(c is None for c in channels):
        raise ValueError("compile_native: the model does not start with a layer that runs natively "
                         "(convert it with convert_to_deployable_form, and quantize_model for int8)")
    builder = _Builder(dict(source.named_modules()), fuse_squeeze_excitation)
    for index, (nodes, c) in enumerate(zip(inputs, channels)):
        value = (builder.program.add_input if index else builder.program.set_input)(c)
        for node in nodes:
            builder.value[node] = value
            builder.layout[node] = "ncthw"
    native_nodes = [node for nodes in inputs for node in nodes if node.op != "placeholder"]  # a clip list's getitems
    for node in source.graph.nodes:
        if node.op == "placeholder" or node in builder.value:
            continue
        produced = None
        if node.op == "call_module":
            module = source.get_submodule(node.target)
            values = builder.inputs(node)
            if _passes_through(module) and values is not None and len(values) == 1:
                produced = values[0]
                builder.layout[node] = builder.layout[node.args[0]]
            else:
                produced = _try(builder.emit, node, module)
        elif node.op == "call_method":
            produced = _try(builder.emit_method, node)
        elif node.op == "call_function":
            produced = _try(builder.emit_function, node)
        if produced is None:
            break  # the native prefix ends at the first node that cannot run natively
        builder.value[node] = produced
        native_nodes.append(node)
    if not native_nodes:
        raise ValueError("compile_native: the model's first layer cannot run natively")
    builder.materialize_unread_gates(source)
    builder.program.set_fuse_pointwise_depthwise(bool(fuse_pointwise_depthwise))
    return _split_graph(source, builder, native_nodes)


def _try(emit, *args) -> Optional[int]:
    """An emitted step's value, or None when the runtime rejects the layer (e.g. an unusual padding): the native
    prefix then simply ends before it."""
    try:
        return emit(*args)
    except ValueError:
        return None


def _split_graph(source: fx.GraphModule, builder: _Builder, native_nodes: List[fx.Node]) -> fx.GraphModule:
    """A new graph: input -> NativeProgram -> (its outputs) -> the remaining nodes of ``source``."""
    native_set = set(native_nodes)
    # Native values read by the rest of the graph become the program's outputs, one per (value, layout) pair.
    escaping = []
    for node in native_nodes:
        key = (builder.value[node], builder.layout[node])
        if any(user not in native_set for user in node.users) and key not in escaping:
            escaping.append(key)
    builder.program.set_outputs([value for value, _ in escaping], [layout for _, layout in escaping])
    program = NativeProgram(builder.program)

    graph = fx.Graph()
    env: Dict[fx.Node, fx.Node] = {}
    root = nn.Module()
    root.add_module("native_program", program)
    placeholders = [node for node in source.graph.nodes if node.op == "placeholder"]
    getters = {}
    for node in source.graph.nodes:
        if node.op == "placeholder":
            env[node] = graph.placeholder(node.name)
            if node is placeholders[-1]:  # every input declared: the program reads them all
                outputs = graph.call_module("native_program", tuple(env[p] for p in placeholders))
                getters = {key: graph.call_function(operator.getitem, (outputs, i)) for i, key in enumerate(escaping)}
            continue
        if node in native_set:
            key = (builder.value[node], builder.layout[node])
            if key in getters:
                env[node] = getters[key]
            continue
        if node.op == "call_module":
            _copy_submodule(source, root, node.target)
        env[node] = graph.node_copy(node, lambda n: env[n])
    result = fx.GraphModule(root, graph, class_name="NativeCompiled")
    # The layers left to torch run as the per-layer lowerings run them. A replaced module's own submodules are not
    # visited: an int8 squeeze-excitation's native replacement keeps its float layers (it read them from the
    # FusedSqueezeExcitation inside, which a walk over every named module then replaced with the fp32 op).
    _replace_modules(result, _per_layer_native)
    return result.eval()


def _copy_submodule(source: nn.Module, root: nn.Module, target: str) -> None:
    """Install ``source``'s submodule at dotted path ``target`` into ``root`` (creating empty parents)."""
    *parents, leaf = target.split(".")
    holder = root
    for name in parents:
        if not hasattr(holder, name):
            holder.add_module(name, nn.Module())
        holder = getattr(holder, name)
    holder.add_module(leaf, source.get_submodule(target))
