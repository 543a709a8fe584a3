"""Running deploy-form models on pyvideo's native channels-last kernels.

:func:`lower_to_native` takes a model in deploy form (``convert_to_deployable_form``'s result, including transmuted
plain ``nn.Conv3d`` models) and replaces every :class:`~pyvideo.accelerator.deployable.FusedConv3d` the kernels
cover with a :class:`NativeConv3d`, which calls ``torch.ops.pyvideo.fused_conv3d`` /
``torch.ops.pyvideo.fused_depthwise_conv3d``. Activations stay channels-last from the first native layer on.
:func:`lower_quantized_to_native` does the same for int8 models (``QuantizedConv3d`` -> native int8 kernels).
:func:`compile_native` goes further: the model's native-capable layers become one :class:`NativeProgram` that C++
runs in a single call (no per-layer Python, dispatcher or DLPack cost); the remaining head stays in PyTorch.
"""
from .conv import NativeConv3d, NativeSqueezeExcitation, lower_to_native
from .program import NativeProgram, compile_native, load_program
from .quantized import NativeQuantizedConv3d, NativeQuantizedSqueezeExcitation, lower_quantized_to_native

__all__ = [
    "NativeConv3d",
    "NativeProgram",
    "NativeQuantizedConv3d",
    "NativeQuantizedSqueezeExcitation",
    "NativeSqueezeExcitation",
    "compile_native",
    "load_program",
    "lower_quantized_to_native",
    "lower_to_native",
]
