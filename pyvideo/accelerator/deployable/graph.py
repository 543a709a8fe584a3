"""torch.fx tracing of deploy-form models, keeping the deploy modules (and plain torch.nn layers) as graph leaves."""
import copy
import inspect
import operator
import warnings
from typing import Any, Dict, Optional

import torch
import torch.fx as fx
import torch.nn as nn

from pyvideo.layers.swish import Swish

from .conv import FusedConv3d
from .pool import GlobalAvgPool
from .squeeze_excitation import FusedSqueezeExcitation

_LEAF_TYPES = [FusedConv3d, FusedSqueezeExcitation, GlobalAvgPool, Swish]


def register_leaf_type(module_type: type) -> None:
    """Make ``module_type`` an opaque node in traced graphs (used by the quantization modules)."""
    if module_type not in _LEAF_TYPES:
        _LEAF_TYPES.append(module_type)


class DeployTracer(fx.Tracer):
    """fx tracer whose leaves are the deploy modules, the torch.nn layers, and ``activation_kind`` modules."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        if type(module) is nn.Identity:
            return False  # traced through: it may be handed a list (SlowFast's fusion past its last stage)
        if isinstance(module, tuple(_LEAF_TYPES)):
            return True
        if getattr(module, "activation_kind", None) is not None and not list(module.children()):
            return True
        return super().is_leaf_module(module, qualified_name)


def _list_input_args(model: nn.Module, example_input: Any) -> Optional[Dict[str, Any]]:
    """``concrete_args`` that trace a model whose forward takes a list (or tuple) of tensors, such as SlowFast's one
    clip per pathway, with one placeholder per element (the traced code then indexes a real list, and the
    GraphModule's forward still takes the list); None for a tensor input."""
    if isinstance(example_input, torch.Tensor) or example_input is None:
        return None
    first = next(iter(inspect.signature(model.forward).parameters))
    return {first: type(example_input)(fx.PH for _ in example_input)}


def copy_module(model: nn.Module) -> nn.Module:
    """``copy.deepcopy(model)``; copying the input spec of a GraphModule that takes a list of clips makes torch (2.13)
    warn about its own deprecated ``LeafSpec`` check, which says nothing to our users, so that warning is dropped."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        return copy.deepcopy(model)


def takes_clip_list(graph: fx.Graph) -> bool:
    """Whether a traced model's input is a list of clips (its placeholder is only indexed, as in a SlowFast deploy form
    from ``convert_to_deployable_form(model, [slow, fast])``) rather than one tensor."""
    placeholders = [node for node in graph.nodes if node.op == "placeholder"]
    return len(placeholders) == 1 and bool(placeholders[0].users) and all(
        user.op == "call_function" and user.target is operator.getitem for user in placeholders[0].users)


def trace(model: nn.Module, example_input: Any = None) -> fx.GraphModule:
    """A GraphModule sharing ``model``'s submodules, traced with :class:`DeployTracer`. ``example_input`` only tells a
    list of clips (traced with one placeholder per clip, see ``_list_input_args``) from a tensor."""
    graph = DeployTracer().trace(model, concrete_args=_list_input_args(model, example_input))
    return fx.GraphModule(model, graph, class_name=type(model).__name__)


def replace_submodule(model: nn.Module, qualified_name: str, new_module: nn.Module) -> None:
    parent_name, _, child_name = qualified_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    parent._modules[child_name] = new_module
