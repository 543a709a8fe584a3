"""Activation kinds of the deploy form, named by string so that native kernels can switch on them."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.layers.swish import Swish

ACTIVATION_KINDS = ("identity", "relu", "swish", "hswish", "sigmoid")

_FUNCTIONS = {
    "identity": lambda x: x,
    "relu": F.relu,
    "swish": lambda x: x * torch.sigmoid(x),
    "hswish": F.hardswish,
    "sigmoid": torch.sigmoid,
}

# Plain torch modules whose function is one of the kinds (the efficient activation blocks report theirs themselves).
_MODULE_KINDS = (
    (nn.Identity, "identity"),
    (nn.ReLU, "relu"),
    (nn.SiLU, "swish"),
    (Swish, "swish"),
    (nn.Hardswish, "hswish"),
    (nn.Sigmoid, "sigmoid"),
)


def apply_activation(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Apply the activation named ``kind`` (one of ``ACTIVATION_KINDS``), never in place."""
    return _FUNCTIONS[kind](x)


def check_activation_kind(kind: str) -> str:
    if kind not in ACTIVATION_KINDS:
        raise ValueError(f"unknown activation kind {kind!r}; expected one of {ACTIVATION_KINDS}")
    return kind


def activation_kind_of(module: nn.Module):
    """The kind computed by ``module``, or None when it is not a plain elementwise activation."""
    kind = getattr(module, "activation_kind", None)
    if kind is not None:
        return kind
    for module_type, module_kind in _MODULE_KINDS:
        if type(module) is module_type:
            return module_kind
    return None
