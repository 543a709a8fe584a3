"""Graph-level fusions for deploy forms of transmuted plain models (X3D, CSN, ResNet through ``transmute_model``).

Efficient-block models fuse their residual adds and squeeze-excitations inside each block. Plain models keep them
as Python code in ``forward`` (``x = branch1(x) + branch2(x); x = relu(x)``, ``x * se(x)``), so after the per-module
conversion their traced graph still has a full-tensor ``add``, ``mul`` and activation per block: three extra passes
over memory in fp32, and int8 add/mul glue after quantization. This pass rewrites the traced graph:

- ``act(conv(x) + r)`` -> ``conv(x, residual=r)`` with ``act`` fused (FusedConv3d.fuse_residual), when ``conv``'s
  output feeds only that add, the two operands have the same shape (checked on the example input) and ``r`` is
  computed before ``conv`` in the graph;
- ``act(x * sigmoid(conv1(h_act(conv0(global_avg_pool(x))))))`` with 1x1x1 ``conv0``/``conv1`` -> one
  :class:`FusedSqueezeExcitation` (its Linear layers take the conv weights), the following activation fused.

Models without these patterns are returned unchanged; otherwise the result is an ``fx.GraphModule`` that shares the
original's submodules (same names, hence the same state_dict keys for every kept parameter) and accepts any input
size the original accepts. Its calls of the ``nn.Identity`` modules left by BatchNorm/activation folding are dropped.
"""
import logging
import operator
from typing import Dict, Optional

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp

from pyvideo.accelerator.deployable.activation import activation_kind_of
from pyvideo.accelerator.deployable.conv import FusedConv3d
from pyvideo.accelerator.deployable.graph import trace
from pyvideo.accelerator.deployable.pool import is_global_pool
from pyvideo.accelerator.deployable.squeeze_excitation import FusedSqueezeExcitation, linear_from_pointwise_conv

logger = logging.getLogger(__name__)

_ADD = (operator.add, torch.add)
_MUL = (operator.mul, torch.mul)


class _Graph:
    """A traced deploy graph with the lookups the rewrites need."""

    def __init__(self, model: nn.Module, example_input=None):
        self.module = trace(model, example_input)
        self.graph = self.module.graph
        self.modules: Dict[str, nn.Module] = dict(self.module.named_modules())
        self.order = {node: i for i, node in enumerate(self.graph.nodes)}
        self.calls = {}
        for node in self.graph.nodes:
            if node.op == "call_module":
                self.calls[node.target] = self.calls.get(node.target, 0) + 1

    def module_of(self, node, types) -> Optional[nn.Module]:
        """node's module if node calls a module of ``types`` that no other node calls, else None."""
        if not isinstance(node, fx.Node) or node.op != "call_module" or self.calls[node.target] != 1:
            return None
        module = self.modules[node.target]
        return module if isinstance(module, types) else None

    def skip_identity(self, node: fx.Node) -> fx.Node:
        """The node producing ``node``'s value, looking back through nn.Identity modules."""
        while node.op == "call_module" and type(self.modules[node.target]) is nn.Identity:
            node = node.args[0]
        return node

    def sole_user(self, node: fx.Node) -> Optional[fx.Node]:
        """The only consumer of ``node`` (looking through nn.Identity modules), or None."""
        while len(node.users) == 1:
            user = next(iter(node.users))
            if user.op == "call_module" and type(self.modules[user.target]) is nn.Identity:
                node = user
                continue
            return user
        return None

    def fusable_activation(self, node: fx.Node):
        """(activation node, kind) when ``node``'s sole consumer is a single-use activation module, else (None, None)."""
        user = self.sole_user(node)
        act = self.module_of(user, nn.Module)
        kind = activation_kind_of(act) if act is not None and len(user.args) == 1 else None
        if kind is None or kind == "identity":
            return None, None
        return user, kind

    def replace(self, old: fx.Node, new: fx.Node) -> None:
        old.replace_all_uses_with(new)


def _fuse_residual_adds(g: _Graph, shapes: Dict[fx.Node, torch.Size]) -> int:
    fused = 0
    for add in list(g.graph.nodes):
        if add.op != "call_function" or add.target not in _ADD or len(add.args) != 2 or add.kwargs:
            continue
        a, b = add.args
        if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)) or shapes.get(a) != shapes.get(b):
            continue
        # The conv operand computed last takes the other one as its residual (which then already exists).
        for conv_node, other in sorted(((a, b), (b, a)), key=lambda pair: -g.order[g.skip_identity(pair[0])]):
            producer = g.skip_identity(conv_node)
            conv = g.module_of(producer, FusedConv3d)
            if (conv is None or conv.adds_residual or conv.activation != "identity" or len(producer.args) != 1
                    or g.sole_user(producer) is not add or g.order[g.skip_identity(other)] > g.order[producer]):
                continue
            act_node, kind = g.fusable_activation(add)
            conv.fuse_residual(kind or "identity")
            producer.args = (producer.args[0], other)
            g.replace(act_node or add, producer)
            fused += 1
            break
    return fused


def _is_gate_conv(conv: Optional[FusedConv3d]) -> bool:
    return (conv is not None and conv.groups == 1 and conv.kernel_size == (1, 1, 1) and conv.stride == (1, 1, 1)
            and conv.padding == (0, 0, 0) and not conv.adds_residual)


def _fuse_squeeze_excitations(g: _Graph) -> int:
    fused = 0
    for mul in list(g.graph.nodes):
        if mul.op != "call_function" or mul.target not in _MUL or len(mul.args) != 2 or mul.kwargs:
            continue
        for x, gate in (mul.args, mul.args[::-1]):
            if not (isinstance(x, fx.Node) and isinstance(gate, fx.Node)):
                continue
            up = g.skip_identity(gate)
            conv1 = g.module_of(up, FusedConv3d)
            conv0_node = g.skip_identity(up.args[0]) if conv1 is not None else None
            conv0 = g.module_of(conv0_node, FusedConv3d)
            pool_node = g.skip_identity(conv0_node.args[0]) if conv0 is not None else None
            pool = g.module_of(pool_node, nn.Module)
            if not (_is_gate_conv(conv1) and conv1.activation == "sigmoid" and _is_gate_conv(conv0)
                    and pool is not None and is_global_pool(pool) and g.skip_identity(pool_node.args[0]) is g.skip_identity(x)
                    and g.sole_user(pool_node) is conv0_node and g.sole_user(conv0_node) is up
                    and g.sole_user(up) is mul):
                continue
            act_node, kind = g.fusable_activation(mul)
            se = FusedSqueezeExcitation(linear_from_pointwise_conv(conv0), linear_from_pointwise_conv(conv1),
                                        conv0.activation, kind or "identity")
            parent = pool_node.target.rpartition(".")[0]
            name = f"{parent}.fused_se" if parent else f"fused_se_{fused}"
            g.module.add_submodule(name, se)
            with g.graph.inserting_before(mul):
                se_node = g.graph.call_module(name, (x,))
            g.replace(act_node or mul, se_node)
            fused += 1
            break
    return fused


def fuse_residuals_and_squeeze_excitations(model: nn.Module, example_input) -> nn.Module:
    """The rewrite described in the module docstring; ``model`` unchanged when there is nothing to fuse (or it cannot
    be traced)."""
    try:
        g = _Graph(model, example_input)
        ShapeProp(g.module).propagate(*([example_input] if isinstance(example_input, torch.Tensor) else example_input))
    except Exception as error:  # noqa: BLE001 - an untraceable model keeps its unfused form
        logger.info("graph fusion skipped: model not traceable (%s)", error)
        return model
    shapes = {node: node.meta["tensor_meta"].shape for node in g.graph.nodes
              if isinstance(node.meta.get("tensor_meta"), torch.fx.passes.shape_prop.TensorMetadata)}
    fused = _fuse_squeeze_excitations(g) + _fuse_residual_adds(g, shapes)
    if not fused:
        return model
    for node in list(g.graph.nodes):  # the no-op modules left where BatchNorms and activations were folded
        if node.op == "call_module" and type(g.module.get_submodule(node.target)) is nn.Identity and len(node.args) == 1:
            g.replace(node, node.args[0])
    g.graph.eliminate_dead_code()
    g.graph.lint()
    g.module.delete_all_unused_submodules()
    g.module.recompile()
    return g.module.eval()
