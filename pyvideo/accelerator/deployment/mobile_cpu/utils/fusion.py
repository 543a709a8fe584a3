"""Fold standalone BatchNorm and activation layers into the convolution that feeds them.

Models transmuted from plain ``nn.Conv3d`` networks keep their ``BatchNorm3d`` and activation modules next to the
converted conv. When tracing shows that such a module's only input is a conv's output, and the conv's output
goes nowhere else, the BatchNorm (eval statistics) and then the activation move into the conv's
:class:`FusedConv3d`, and the modules are replaced by ``nn.Identity``; plain ``nn.Conv3d`` layers that no
transmuter matched (e.g. dense 3×7×7 stems) become FusedConv3d on the way.
"""
import logging
from collections import Counter
from typing import Optional

import torch.fx as fx
import torch.nn as nn

from pyvideo.accelerator.deployable.activation import activation_kind_of
from pyvideo.accelerator.deployable.conv import FusedConv3d
from pyvideo.accelerator.deployable.graph import replace_submodule, trace

logger = logging.getLogger(__name__)


def _sole_user(node: fx.Node) -> Optional[fx.Node]:
    users = list(node.users)
    return users[0] if len(users) == 1 and users[0].args[:1] == (node,) and len(users[0].args) == 1 else None


def _as_fused_conv(model: nn.Module, target: str) -> Optional[FusedConv3d]:
    module = model.get_submodule(target)
    if isinstance(module, FusedConv3d):
        return module
    if type(module) is nn.Conv3d and module.padding_mode == "zeros" and not isinstance(module.padding, str):
        fused = FusedConv3d.from_conv(module)
        replace_submodule(model, target, fused)
        return fused
    return None


def fold_batchnorm_and_activation(model: nn.Module, example_input=None) -> None:
    """Apply the folding described in the module docstring, in place. Untraceable models are left unchanged.
    ``example_input`` only tells a list input (one placeholder per clip) from a tensor."""
    try:
        graph = trace(model, example_input).graph
    except Exception as error:  # noqa: BLE001 - any tracing failure just means "no graph-level fusion"
        logger.info("fold_batchnorm_and_activation: model not traceable (%s); BN/activation left unfused", error)
        return
    calls = Counter(node.target for node in graph.nodes if node.op == "call_module")

    def called_once_module(node: Optional[fx.Node]) -> Optional[nn.Module]:
        if node is None or node.op != "call_module" or calls[node.target] != 1:
            return None
        return model.get_submodule(node.target)

    def next_op(node: fx.Node) -> Optional[fx.Node]:
        """The sole consumer of ``node``, looking through no-op modules (e.g. X3D's Identity in place of an SE)."""
        user = _sole_user(node)
        while user is not None and user.op == "call_module" and type(model.get_submodule(user.target)) is nn.Identity:
            user = _sole_user(user)
        return user

    for node in list(graph.nodes):
        if called_once_module(node) is None:
            continue
        conv = _as_fused_conv(model, node.target)
        if conv is None or conv.activation != "identity" or conv.adds_residual:
            continue
        follower = next_op(node)
        bn = called_once_module(follower)
        if isinstance(bn, nn.BatchNorm3d) and bn.track_running_stats:
            conv.fold_batchnorm(bn)
            replace_submodule(model, follower.target, nn.Identity())
            follower = next_op(follower)
        act = called_once_module(follower)
        kind = activation_kind_of(act) if act is not None else None
        if kind is not None and kind != "identity":
            conv.fuse_activation(kind)
            replace_submodule(model, follower.target, nn.Identity())
