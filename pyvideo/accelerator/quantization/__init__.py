"""int8 quantization of deploy-form models, without torch.ao.quantization.

- ``quantize_model(deploy_model, calibration_data)``: post-training static quantization;
- ``prepare_qat(deploy_model)`` → train → ``convert_qat(model)``: quantization-aware training;
- ``prepare`` / ``calibrate`` / ``convert``: the steps of ``quantize_model``, for custom flows (``mark_dynamic``
  between ``calibrate`` and ``convert`` gives tensors of unstable range per-sample run-time ranges).

The int8 model is a ``torch.fx.GraphModule`` of the modules in :mod:`.int8_modules`, whose forward is the exact
pure-torch reference of the integer arithmetic (see docs/notes/accelerator_interface.md).
"""
from .agreement import Int8Agreement, compare_int8, compare_logits
from .api import calibrate, convert_qat, mark_dynamic, prepare_qat, quantize_model
from .fake_quant import ActivationQuantizer, FakeQuantConv3d, FakeQuantLinear, fake_quantize, fake_quantize_weight
from .graph_quantizer import FloatLinear, classifier_node, convert, freeze_observers, prepare
from .int8_modules import (
    DequantizeTensor,
    QuantizedActivation,
    QuantizedAdd,
    QuantizedAvgPool3d,
    QuantizedCat,
    QuantizedConv3d,
    QuantizedGlobalAvgPool,
    QuantizedLinear,
    QuantizedMaxPool,
    QuantizedMul,
    QuantizedSqueezeExcitation,
    QuantizeTensor,
)
from .observers import ChannelMinMaxObserver, MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver
from .qparams import (
    DYNAMIC,
    ChannelQParams,
    DynamicQParams,
    QParams,
    SampleQParams,
    activation_qparams,
    channel_activation_qparams,
    dequantize,
    quantize,
    sample_qparams,
    weight_scales,
)

__all__ = [
    "Int8Agreement",
    "compare_int8",
    "compare_logits",
    "ActivationQuantizer",
    "ChannelMinMaxObserver",
    "ChannelQParams",
    "DYNAMIC",
    "DynamicQParams",
    "DequantizeTensor",
    "FakeQuantConv3d",
    "FakeQuantLinear",
    "FloatLinear",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "PercentileObserver",
    "QParams",
    "SampleQParams",
    "QuantizeTensor",
    "QuantizedActivation",
    "QuantizedAdd",
    "QuantizedAvgPool3d",
    "QuantizedCat",
    "QuantizedConv3d",
    "QuantizedGlobalAvgPool",
    "QuantizedLinear",
    "QuantizedMaxPool",
    "QuantizedMul",
    "QuantizedSqueezeExcitation",
    "activation_qparams",
    "calibrate",
    "channel_activation_qparams",
    "classifier_node",
    "convert",
    "convert_qat",
    "dequantize",
    "fake_quantize",
    "fake_quantize_weight",
    "freeze_observers",
    "mark_dynamic",
    "prepare",
    "prepare_qat",
    "quantize",
    "quantize_model",
    "sample_qparams",
    "weight_scales",
]
