"""Graph-level int8 quantization of deploy-form models (torch.fx, no torch.ao.quantization).

Each node of the traced deploy graph gets a role:
- ``int8``: ops with an int8 implementation (FusedConv3d, nn.Linear, FusedSqueezeExcitation, global average
  pooling, elementwise activations, tensor + tensor, tensor * tensor);
- ``transparent``: ops that move int8 values without changing them (permute, reshape, Identity, Dropout ...);
  their output has the qparams of their input;
- ``float``: everything else (runs in float32 on dequantized values).

``prepare`` inserts an :class:`ActivationQuantizer` after every tensor that an int8 op reads or writes;
``convert`` replaces int8 ops by :mod:`int8_modules` with the observed qparams and puts Quantize/Dequantize
where the domains meet. An int8 op whose output is only read by float code returns float32 directly.
"""
import operator
from typing import Dict, Optional

import torch
import torch.fx as fx
import torch.nn as nn

from pyvideo.accelerator.deployable.activation import activation_kind_of
from pyvideo.accelerator.deployable.conv import FusedConv3d
from pyvideo.accelerator.deployable.graph import DeployTracer, replace_submodule
from pyvideo.accelerator.deployable.pool import is_global_pool
from pyvideo.accelerator.deployable.squeeze_excitation import FusedSqueezeExcitation

from . import int8_modules as q8
from .fake_quant import ActivationQuantizer, FakeQuantConv3d, FakeQuantLinear
from .observers import make_observer

# Adaptive pools that count as global: quantized graphs may also hold 4-D (image-like) tensors.
_GLOBAL_POOL_TYPES = (nn.AdaptiveAvgPool3d, nn.AdaptiveAvgPool2d)
_TRANSPARENT_METHODS = {"permute", "reshape", "view", "flatten", "contiguous", "squeeze", "unsqueeze", "transpose"}
_TRANSPARENT_FUNCTIONS = {torch.flatten, torch.reshape, torch.permute, torch.squeeze, torch.unsqueeze}
# tensor (+|*) tensor -> its int8 module
_BINARY_FUNCTIONS = {operator.add: q8.QuantizedAdd, torch.add: q8.QuantizedAdd, operator.mul: q8.QuantizedMul,
                     torch.mul: q8.QuantizedMul}  # fmt: skip


def _tensor_args(node: fx.Node):
    return [a for a in node.args if isinstance(a, fx.Node)]


def node_role(node: fx.Node, modules: Dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        module = modules[node.target]
        if isinstance(module, ActivationQuantizer):
            return "transparent"
        if isinstance(module, (FusedConv3d, nn.Linear, FusedSqueezeExcitation)) or is_global_pool(module, _GLOBAL_POOL_TYPES):
            return "int8"
        kind = activation_kind_of(module)
        if kind == "identity" or isinstance(module, (nn.Dropout, nn.Flatten)):
            return "transparent"
        return "int8" if kind is not None else "float"
    if node.op == "call_method" and node.target in _TRANSPARENT_METHODS:
        return "transparent"
    if node.op == "call_function" and node.target in _TRANSPARENT_FUNCTIONS:
        return "transparent"
    if node.op == "call_function" and node.target in _BINARY_FUNCTIONS and not node.kwargs:
        return "int8" if len(node.args) == 2 and len(_tensor_args(node)) == 2 else "float"
    return "float"


class _Plan:
    """Roles, qparams sources and output domains of a traced graph's nodes."""

    def __init__(self, graph: fx.Graph, modules: Dict[str, nn.Module]):
        nodes = list(graph.nodes)
        self.role = {n: node_role(n, modules) for n in nodes}
        # A transparent op's values are its input's values: they share the input's qparams source.
        self.source = {}
        for n in nodes:
            transparent = self.role[n] == "transparent" and _tensor_args(n)
            self.source[n] = self.source[_tensor_args(n)[0]] if transparent else n
        # Does an int8 op (directly or through transparent ops) read this node's output?
        self.read_as_int8 = {}
        for n in reversed(nodes):
            self.read_as_int8[n] = any(
                self.role[u] == "int8" or (self.role[u] == "transparent" and self.read_as_int8[u]) for u in n.users
            )

    def observed(self, node: fx.Node) -> bool:
        """Whether ``node`` produces a tensor that will be int8 (so it needs qparams): an int8 op reads it."""
        return self.source[node] is node and self.read_as_int8[node]

    def int8_output(self, node: fx.Node) -> bool:
        if self.role[node] == "transparent":
            return self.int8_output(self.source[node])
        return self.role[node] == "int8" and self.read_as_int8[node]


def _check_deploy_form(model: nn.Module) -> None:
    unconverted = [name for name, m in model.named_modules() if getattr(m, "convert_flag", True) is False]
    if unconverted:
        raise ValueError(
            f"quantization works on the deploy form; call convert_to_deployable_form first "
            f"({len(unconverted)} efficient blocks are not converted, e.g. {unconverted[0]!r})"
        )


def _trace_eval(model: nn.Module) -> fx.GraphModule:
    was_training = model.training
    model.eval()  # the deploy graph is the inference graph; leaf modules still follow .train() when run
    try:
        graph = DeployTracer().trace(model)
    except Exception as error:
        raise RuntimeError(
            f"quantization needs a torch.fx-traceable deploy-form model; tracing {type(model).__name__} failed: {error}"
        ) from error
    finally:
        model.train(was_training)
    return fx.GraphModule(model, graph, class_name=f"Quantizable{type(model).__name__}")


def prepare(model: nn.Module, observer="minmax", qat: bool = False) -> fx.GraphModule:
    """Traced graph of ``model`` (sharing its modules) with ActivationQuantizers inserted: they observe only, or with
    ``qat`` also fake-quantize; with ``qat`` the int8 convs and linears are also swapped for versions whose weight and
    bias are fake-quantized (sharing the parameters)."""
    _check_deploy_form(model)
    gm = _trace_eval(model)
    modules = dict(gm.named_modules())
    plan = _Plan(gm.graph, modules)
    nodes = list(gm.graph.nodes)
    input_source = {n: plan.source[_tensor_args(n)[0]] for n in nodes if plan.role[n] == "int8" and _tensor_args(n)}
    quantizer_of = {}
    for index, node in enumerate(nodes):
        if node.op == "output" or not plan.observed(node):
            continue
        name = f"activation_quantizer_{index}"
        quantizer_of[node] = ActivationQuantizer(make_observer(observer), observe=True, fake_quant=qat)
        gm.add_submodule(name, quantizer_of[node])
        with gm.graph.inserting_after(node):
            quantizer = gm.graph.call_module(name, (node,))
        node.replace_all_uses_with(quantizer, delete_user_cb=lambda user: user is not quantizer)
    if qat:
        for node, source in input_source.items():
            if node.op == "call_module":
                _swap_for_fake_quant(gm, node.target, modules[node.target], quantizer_of[source])
    gm.recompile()
    gm.train(model.training)
    return gm


def _swap_for_fake_quant(gm: fx.GraphModule, target: str, module: nn.Module, input_quantizer) -> None:
    if type(module) is FusedConv3d:
        fake = FakeQuantConv3d.from_fused(module)
    elif type(module) is nn.Linear:
        fake = FakeQuantLinear.from_linear(module)
    else:
        return
    fake.input_qparams = input_quantizer.qparams_if_observed  # a bound method: no second registration as submodule
    replace_submodule(gm, target, fake)


def freeze_observers(prepared: fx.GraphModule) -> None:
    """Stop updating activation ranges (late in QAT, or after calibration)."""
    for module in prepared.modules():
        if isinstance(module, ActivationQuantizer):
            module.observe = False


class _Converter:
    """Builds the int8 graph from a prepared GraphModule."""

    def __init__(self, prepared: fx.GraphModule):
        self.prepared = prepared
        self.modules = dict(prepared.named_modules())
        self.quantizer_of = {}  # observed node -> its ActivationQuantizer
        for node in prepared.graph.nodes:
            if node.op == "call_module" and isinstance(self.modules[node.target], ActivationQuantizer):
                self.quantizer_of[node.args[0]] = self.modules[node.target]
        self.plan = _Plan(prepared.graph, self.modules)
        self.graph = fx.Graph()
        self.root = nn.Module()
        self.env = {}
        self.cast_cache = {}

    def qparams(self, node: fx.Node):
        quantizer = self.quantizer_of.get(self.plan.source[node])
        if quantizer is None:
            raise RuntimeError(f"no observer for {node.name}; was the model prepared with pyvideo's prepare()?")
        return quantizer.qparams()

    def add_module(self, module: nn.Module, node_name: str) -> str:
        name = f"{node_name}_int8"
        self.root.add_module(name, module)
        return name

    def cast(self, node: fx.Node, want_int8: bool):
        """``node``'s new value in the wanted domain (Quantize/Dequantize inserted once per node and domain)."""
        value = self.env[node]
        if self.is_int8[node] == want_int8:
            return value
        key = (node, want_int8)
        if key not in self.cast_cache:
            qp = self.qparams(node)
            module = q8.QuantizeTensor(qp) if want_int8 else q8.DequantizeTensor(qp)
            name = self.add_module(module, f"{node.name}_{'q' if want_int8 else 'dq'}")
            self.cast_cache[key] = self.graph.call_module(name, (value,))
        return self.cast_cache[key]

    def _is_quantizer(self, node: fx.Node) -> bool:
        return node.op == "call_module" and isinstance(self.modules[node.target], ActivationQuantizer)

    def _activation_after(self, node: fx.Node) -> Optional[fx.Node]:
        """The elementwise activation that is the only consumer of ``node``'s output (e.g. ResNet's ReLU), if any."""
        users = list(node.users)
        if len(users) == 1 and self._is_quantizer(users[0]):
            users = list(users[0].users)
        if len(users) != 1 or users[0].op != "call_module" or self.plan.role[users[0]] != "int8":
            return None
        kind = activation_kind_of(self.modules[users[0].target])
        return users[0] if kind not in (None, "identity") else None

    def convert(self) -> fx.GraphModule:
        self.is_int8 = {}
        self.absorbed = {}  # activation node -> the add/mul node that computes it
        for node in self.prepared.graph.nodes:
            if self._is_quantizer(node) or node in self.absorbed:
                source = self.absorbed.get(node, node.args[0])
                self.env[node], self.is_int8[node] = self.env[source], self.is_int8[source]
                continue
            role = self.plan.role.get(node, "float")
            handler = {"int8": self.int8_node, "transparent": self.copy_node}.get(role, self.float_node)
            self.env[node], self.is_int8[node] = handler(node)
        return fx.GraphModule(self.root, self.graph, class_name=f"Int8{type(self.prepared).__name__}")

    def _copy(self, node: fx.Node, mapper):
        if node.op == "call_module":
            self.root.add_module(node.target.replace(".", "_"), self.modules[node.target])
            return self.graph.create_node("call_module", node.target.replace(".", "_"), fx.map_arg(node.args, mapper),
                                          fx.map_arg(node.kwargs, mapper), node.name)  # fmt: skip
        if node.op == "get_attr":
            raise RuntimeError(f"quantization does not support get_attr nodes ({node.target})")
        return self.graph.node_copy(node, mapper)

    def copy_node(self, node: fx.Node):
        """Transparent op: runs on whatever domain its input is in; identities (folded BN/activations) vanish."""
        if node.op == "call_module" and activation_kind_of(self.modules[node.target]) == "identity":
            return self.env[node.args[0]], self.is_int8[node.args[0]]
        value = self._copy(node, lambda n: self.env[n])
        return value, self.is_int8[_tensor_args(node)[0]] if _tensor_args(node) else False

    def float_node(self, node: fx.Node):
        return self._copy(node, lambda n: self.cast(n, False)), False

    def int8_node(self, node: fx.Node):
        inputs = _tensor_args(node)
        output_qp = self.qparams(node) if self.plan.int8_output(node) else None
        module = self._int8_module(node, inputs, output_qp)
        name = self.add_module(module, node.name)
        args = tuple(self.cast(n, True) for n in inputs)
        return self.graph.call_module(name, args), module.output_qparams is not None

    def _int8_module(self, node: fx.Node, inputs, output_qp) -> nn.Module:
        in_qp = self.qparams(inputs[0])
        if node.op == "call_function":  # tensor (+|*) tensor, with the activation that follows it fused in
            module_type = _BINARY_FUNCTIONS[node.target]
            activation = self._activation_after(node)
            if activation is None:
                return module_type(in_qp, self.qparams(inputs[1]), output_qp)
            self.absorbed[activation] = node
            output_qp = self.qparams(activation) if self.plan.int8_output(activation) else None
            kind = activation_kind_of(self.modules[activation.target])
            return module_type(in_qp, self.qparams(inputs[1]), output_qp, activation=kind)
        module = self.modules[node.target]
        if isinstance(module, FusedConv3d):
            residual_qp = self.qparams(inputs[1]) if len(inputs) > 1 else None
            return q8.QuantizedConv3d(module, in_qp, output_qp, residual_qp)
        if isinstance(module, nn.Linear):
            return q8.QuantizedLinear(module, in_qp, output_qp)
        if isinstance(module, FusedSqueezeExcitation):
            return q8.QuantizedSqueezeExcitation(module, in_qp, output_qp)
        if is_global_pool(module, _GLOBAL_POOL_TYPES):
            return q8.QuantizedGlobalAvgPool(in_qp, output_qp)
        return q8.QuantizedActivation(activation_kind_of(module), in_qp, output_qp)


def convert(prepared: fx.GraphModule) -> fx.GraphModule:
    """The int8 model (eval mode) for a prepared and calibrated (or QAT-trained) GraphModule."""
    if not any(isinstance(m, ActivationQuantizer) for m in prepared.modules()):
        raise ValueError("convert() needs a model returned by prepare() or prepare_qat()")
    return _Converter(prepared).convert().eval()
