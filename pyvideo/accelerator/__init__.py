"""Deployment of video models to mobile CPUs: efficient blocks, deployable conversion, int8 quantization.

``accelerator.deployment.convert_to_deployable_form(model, input_tensor)`` turns a model built from efficient
blocks (or a plain ``nn.Conv3d`` model after ``transmute_model``) into its deploy form: BatchNorm folded,
activations and residual adds fused into :class:`~pyvideo.accelerator.deployable.FusedConv3d` modules.
``accelerator.quantization`` quantizes a deploy-form model to int8 (post-training or quantization-aware training);
``accelerator.native`` runs deploy-form and int8 models on the native kernels (per layer, or as one native program).

Sub-packages are imported on first use: the efficient blocks in ``pyvideo.layers.accelerator`` import
``efficient_blocks`` from here, and ``deployment`` imports those blocks back.
"""
import importlib

_SUBPACKAGES = ("deployable", "deployment", "efficient_blocks", "native", "quantization")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pyvideo.accelerator' has no attribute {name!r}")
