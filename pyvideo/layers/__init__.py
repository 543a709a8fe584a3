"""Building blocks shared by pyvideo's models (mirrors ``pytorchvideo.layers``)."""
import importlib

from .fusion import ConcatFusion, ReduceFusion, make_fusion_layer

# Re-exported lazily: these live in modules that import more (attention pulls in MLPs, drop-path and
# positional encodings), and keeping them lazy lets ``pyvideo.layers`` import cheaply.
_LAZY_EXPORTS = {
    "Mlp": "attention",
    "MultiScaleAttention": "attention",
    "MultiScaleBlock": "attention",
    "ScriptableMultiScaleBlock": "attention_torchscript",
    "DropPath": "drop_path",
    "make_multilayer_perceptron": "mlp",
    "PositionalEncoding": "positional_encoding",
    "SpatioTemporalClsPositionalEncoding": "positional_encoding",
    "ScriptableSpatioTemporalClsPositionalEncoding": "positional_encoding_torchscript",
}

__all__ = ["ConcatFusion", "ReduceFusion", "make_fusion_layer", *_LAZY_EXPORTS]


def __getattr__(name):
    if name in _LAZY_EXPORTS:
        module = importlib.import_module(f".{_LAZY_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
