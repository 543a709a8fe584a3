"""torch.fx tracing of deploy-form models, keeping the deploy modules (and plain torch.nn layers) as graph leaves."""
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
        if isinstance(module, tuple(_LEAF_TYPES)):
            return True
        if getattr(module, "activation_kind", None) is not None and not list(module.children()):
            return True
        return super().is_leaf_module(module, qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    """A GraphModule sharing ``model``'s submodules, traced with :class:`DeployTracer`."""
    graph = DeployTracer().trace(model)
    return fx.GraphModule(model, graph, class_name=type(model).__name__)


def replace_submodule(model: nn.Module, qualified_name: str, new_module: nn.Module) -> None:
    parent_name, _, child_name = qualified_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    parent._modules[child_name] = new_module
