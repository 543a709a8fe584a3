"""The deploy form's building blocks: small modules with explicit parameters and no baked-in shapes.

Every efficient block's ``convert()`` produces these, and both the int8 quantizer and the native lowering read them:

- :class:`FusedConv3d`: conv3d + folded BatchNorm + activation (+ residual add before the activation);
- :class:`FusedSqueezeExcitation`: global mean → fc → act → fc → sigmoid → channel-wise scale, then an activation;
- :class:`GlobalAvgPool`: mean over every dim after the channel dim, kept as size-1 dims.
"""
from .activation import ACTIVATION_KINDS, activation_kind_of, apply_activation
from .conv import FusedConv3d
from .pool import GlobalAvgPool
from .squeeze_excitation import FusedSqueezeExcitation

__all__ = [
    "ACTIVATION_KINDS",
    "FusedConv3d",
    "FusedSqueezeExcitation",
    "GlobalAvgPool",
    "activation_kind_of",
    "apply_activation",
]
