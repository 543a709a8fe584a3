"""pyvideo: video understanding for PyTorch with a native (C++) core.

Sub-packages mirror PyTorchVideo's (``pyvideo.data``, ``pyvideo.models``, ``pyvideo.transforms``,
``pyvideo.layers``, ``pyvideo.losses``, ``pyvideo.accelerator``). They are imported on first use,
so ``import pyvideo`` stays cheap and ``from pyvideo import data, models`` works as usual.
"""
import importlib

__version__ = "0.1.0"

_SUBPACKAGES = ("accelerator", "data", "layers", "losses", "models", "transforms", "tasks", "ops")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pyvideo' has no attribute {name!r}")
