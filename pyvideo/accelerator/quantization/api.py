"""User-facing quantization entry points: post-training static int8 and quantization-aware training."""
from typing import Iterable, Union

import torch
import torch.fx as fx
import torch.nn as nn

from .graph_quantizer import convert, freeze_observers, prepare


def _batch_tensor(batch) -> torch.Tensor:
    """The model input of one calibration item: a tensor, the first item of a tuple/list, or a dict's "video"."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    if isinstance(batch, dict) and isinstance(batch.get("video"), torch.Tensor):
        return batch["video"]
    raise TypeError(
        f"calibration items must be tensors, (tensor, ...) tuples or dicts with a 'video' tensor; got {type(batch).__name__}"
    )


def calibrate(prepared: fx.GraphModule, calibration_data: Union[torch.Tensor, Iterable]) -> int:
    """Run ``calibration_data`` (one batch tensor, or an iterable/DataLoader of batches) through ``prepared`` in
    eval mode, updating its observers. Returns the number of batches seen."""
    batches = [calibration_data] if isinstance(calibration_data, torch.Tensor) else calibration_data
    was_training = prepared.training
    prepared.eval()
    count = 0
    with torch.no_grad():
        for batch in batches:
            prepared(_batch_tensor(batch))
            count += 1
    prepared.train(was_training)
    if count == 0:
        raise ValueError("calibrate: calibration_data yielded no batches")
    return count


def quantize_model(
    deploy_model: nn.Module, calibration_data: Union[torch.Tensor, Iterable], observer="minmax"
) -> fx.GraphModule:
    """Post-training static int8 quantization of a deploy-form model.

    Args:
        deploy_model: output of ``convert_to_deployable_form`` (must be torch.fx-traceable); it is not modified.
        calibration_data: a batch tensor, or an iterable / DataLoader of batches (tensors, (tensor, label) tuples,
            or dicts with a "video" tensor), representative of the inputs the model will see.
        observer: how activation ranges are estimated: "minmax", "percentile" (99.99th, averaged per batch),
            or a zero-argument factory of an observer object.

    Returns:
        The int8 model (``torch.fx.GraphModule`` of ``int8_modules``): float input, float output.
    """
    prepared = prepare(deploy_model, observer=observer, qat=False)
    calibrate(prepared, calibration_data)
    return convert(prepared)


def prepare_qat(deploy_model: nn.Module, observer="moving_average") -> fx.GraphModule:
    """A training-mode copy of the deploy-form graph with fake-quantized weights and activations (straight-through
    gradients). It shares its parameters with ``deploy_model``: train it like any module, then call
    :func:`convert_qat`. Activation ranges follow the data (moving average) until :func:`freeze_observers`."""
    prepared = prepare(deploy_model, observer=observer, qat=True)
    return prepared.train()


def convert_qat(qat_model: fx.GraphModule) -> fx.GraphModule:
    """The int8 model for a model trained after :func:`prepare_qat` (same int8 modules as post-training)."""
    return convert(qat_model)


__all__ = ["calibrate", "convert", "convert_qat", "freeze_observers", "prepare", "prepare_qat", "quantize_model"]
