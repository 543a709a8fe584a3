"""User-facing quantization entry points: post-training static int8 and quantization-aware training."""
import warnings
from typing import Iterable, Union

import torch
import torch.fx as fx
import torch.nn as nn

from .graph_quantizer import (DYNAMIC_SPREAD, calibrate, choose_channel_strengths, convert, freeze_observers,
                              mark_dynamic, prepare, unstable_ranges, weight_error_means)


def quantize_model(
    deploy_model: nn.Module,
    calibration_data: Union[torch.Tensor, Iterable],
    observer="minmax",
    per_channel: bool = True,
    bias_correction: bool = True,
    dynamic_ranges: Union[bool, float] = True,
    float_classifier: bool = True,
) -> fx.GraphModule:
    """Post-training static int8 quantization of a deploy-form model.

    Args:
        deploy_model: output of ``convert_to_deployable_form`` (must be torch.fx-traceable); it is not modified.
        calibration_data: a batch tensor, or an iterable / DataLoader of batches (tensors, (tensor, label) tuples,
            or dicts with a "video" tensor), representative of the inputs the model will see. For a model whose
            forward takes a list of clips (SlowFast, one per pathway) an iterable of batches each of which is a list
            or tuple of exactly that many tensors, or (clips, label) / {"video": clips} holding one; the first batch
            also serves to trace the model (``prepare``'s ``example_input``).
        observer: how activation ranges are estimated: "minmax", "percentile" (99.99th, averaged per batch),
            or a zero-argument factory of an observer object.
        per_channel: quantize squeeze-excitation outputs that only pointwise convs read per channel (their scales
            are folded into those convs' weights; ranges by per-channel min/max, and how far each channel's scale
            leaves the tensor's is chosen per tensor on the calibration data, see ``choose_channel_strengths``).
            False: every tensor per tensor.
        bias_correction: take the mean output shift that weight rounding causes (measured on the calibration data
            in a second pass, see ``weight_error_means``) off each int8 conv's and Linear's bias.
        dynamic_ranges: quantize the tensors whose calibration batches differ in magnitude by more than a factor
            (``True``: 3, or the given number; 0: every eligible tensor) per sample at run time, each sample with its
            own range, instead of with one static range (see ``mark_dynamic``; needs 3 or more calibration batches to
            measure; with fewer, every range stays static). Costs a float32 intermediate and a min/max pass per such
            tensor. ``False``: all static.
        float_classifier: keep the model's classifier (its final ``nn.Linear``, e.g. X3D's ``projection``) in float32:
            it reads the dequantized features (the layer before it then returns float32) and keeps its float weight
            (:class:`FloatLinear`). The classifier's int8 weight rounding shifts the logits of near-tied classes
            against each other: on a trained EfficientX3d-XS it alone flipped 9 of 216 held-out clips' top-1 class
            (docs/notes/accelerator_bench.md). Its cost is a float GEMV (2048 x 400 for Kinetics-400).
            ``False``: the classifier is int8 too.

    Returns:
        The int8 model (``torch.fx.GraphModule`` of ``int8_modules``): float input (a list of clips where the deploy
        form takes one), float output.

    Warns (RuntimeWarning) when some statically quantized tensor's magnitude differs by more than 20x between
    calibration batches: its static int8 range then serves some inputs badly (measure with ``compare_int8``;
    ``dynamic_ranges`` fixes that where the tensor qualifies).
    """
    if isinstance(dynamic_ranges, bool):
        spread = DYNAMIC_SPREAD if dynamic_ranges else None
    elif isinstance(dynamic_ranges, (int, float)) and dynamic_ranges >= 0:
        spread = float(dynamic_ranges)
    else:
        raise ValueError(f"quantize_model: dynamic_ranges must be a bool or a number >= 0, got {dynamic_ranges!r}")
    if not isinstance(calibration_data, torch.Tensor) and iter(calibration_data) is calibration_data:
        calibration_data = list(calibration_data)  # a one-shot iterator: later passes read the batches again
    first = calibration_data if isinstance(calibration_data, torch.Tensor) else next(iter(calibration_data), None)
    if first is None:
        raise ValueError("quantize_model: calibration_data yielded no batches")
    # a model that takes a list of clips is traced with the first batch's list
    prepared = prepare(deploy_model, observer=observer, qat=False, per_channel=per_channel,
                       float_classifier=float_classifier, _calibration_batch=first)
    calibrate(prepared, calibration_data)
    if spread is not None:
        mark_dynamic(prepared, spread)
    _warn_on_unstable_ranges(prepared)
    choose_channel_strengths(prepared, calibration_data)
    return convert(prepared, weight_error_means(prepared, calibration_data) if bias_correction else None)


def _warn_on_unstable_ranges(prepared: fx.GraphModule) -> None:
    unstable = unstable_ranges(prepared)
    if unstable:
        listed = "; ".join(f"{name}: {largest:.3g} vs {median:.3g}" for name, _, largest, median in unstable[:3])
        warnings.warn(
            f"quantize_model: {len(unstable)} tensors change scale by more than 20x between calibration batches "
            f"(largest vs median batch magnitude: {listed}{'; ...' if len(unstable) > 3 else ''}); one static int8 "
            f"range per tensor cannot serve such inputs well. Check the int8 model with compare_int8 on "
            f"representative clips; quantize_model(..., dynamic_ranges=True) gives such tensors per-clip ranges.",
            RuntimeWarning,
            stacklevel=2,
        )


def prepare_qat(deploy_model: nn.Module, observer="moving_average", per_channel: bool = True,
                example_input=None, float_classifier: bool = True) -> fx.GraphModule:
    """A training-mode copy of the deploy-form graph with fake-quantized weights and activations (straight-through
    gradients). It shares its parameters with ``deploy_model``: train it like any module, then call
    :func:`convert_qat`. Activation ranges follow the data (moving average) until :func:`freeze_observers`.
    ``per_channel`` as in :func:`quantize_model` (the fake quantization then simulates the per-channel tensors).
    ``example_input`` (a pyvideo extension) is required for a model whose forward takes a list of clips (SlowFast):
    one such list, e.g. ``[slow, fast]``, used only to trace one graph input per clip (see ``prepare``).
    ``float_classifier`` as in :func:`quantize_model` (the classifier then trains without fake quantization)."""
    prepared = prepare(deploy_model, observer=observer, qat=True, per_channel=per_channel, example_input=example_input,
                       float_classifier=float_classifier)
    return prepared.train()


def convert_qat(qat_model: fx.GraphModule) -> fx.GraphModule:
    """The int8 model for a model trained after :func:`prepare_qat` (same int8 modules as post-training)."""
    return convert(qat_model)


__all__ = ["calibrate", "convert", "convert_qat", "freeze_observers", "mark_dynamic", "prepare", "prepare_qat",
           "quantize_model"]
