"""How closely an int8 model follows its fp32 model: top-1 agreement and logit errors over a set of clips.

``compare_int8(fp32_model, int8_model, clips)`` runs both models and calls :func:`compare_logits` on their outputs;
use it on held-out clips (not the calibration clips) to judge a quantized model.
"""
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Tuple, Union

import torch
import torch.fx as fx
import torch.nn as nn

from .graph_quantizer import _batch_input, _batch_tensor, _clip_count


@dataclass(frozen=True)
class Disagreement:
    """One clip whose top-1 class differs between the two models.

    ``fp32_margin`` = fp32 logit of fp32's class − fp32 logit of int8's class (≥ 0; small: fp32 itself was nearly
    undecided between the two); ``int8_margin`` = the same for the int8 logits (≥ 0)."""

    index: int
    fp32_class: int
    int8_class: int
    fp32_margin: float
    int8_margin: float


@dataclass(frozen=True)
class Int8Agreement:
    """Comparison of int8 logits against fp32 logits over ``count`` clips.

    Attributes:
        count: number of clips.
        agreed: clips whose top-1 class (first maximum, as ``torch.argmax``) is the same in both.
        top1_agreement: ``agreed / count``.
        mean_relative_l2, max_relative_l2: per clip ``‖int8 − fp32‖₂ / ‖fp32‖₂`` (0 when both are zero, inf when
            only fp32 is), averaged / maximised over the clips.
        max_abs_error: largest ``|int8 − fp32|`` over all logits.
        median_fp32_margin: median over the clips of fp32's top-1 minus top-2 logit (how decisive the fp32 model is;
            NaN with one class).
        disagreements: one :class:`Disagreement` per clip whose top-1 differs, in clip order.
    """

    count: int
    agreed: int
    top1_agreement: float
    mean_relative_l2: float
    max_relative_l2: float
    max_abs_error: float
    median_fp32_margin: float
    disagreements: Tuple[Disagreement, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def _check_logits(name: str, logits) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of logits [N, num_classes], got {type(logits).__name__}")
    if logits.dim() != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"{name} must have shape [N, num_classes] with N, num_classes >= 1, got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {logits.dtype}")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


def compare_logits(fp32_logits: torch.Tensor, int8_logits: torch.Tensor) -> Int8Agreement:
    """Agreement statistics of ``int8_logits`` against ``fp32_logits`` (both ``[N, num_classes]``, finite floats)."""
    _check_logits("fp32_logits", fp32_logits)
    _check_logits("int8_logits", int8_logits)
    if fp32_logits.shape != int8_logits.shape:
        raise ValueError(f"logit shapes differ: fp32 {tuple(fp32_logits.shape)} vs int8 {tuple(int8_logits.shape)}")
    fp32, int8 = fp32_logits.detach().double().cpu(), int8_logits.detach().double().cpu()
    fp32_top, int8_top = fp32.argmax(1), int8.argmax(1)
    error_norm, reference_norm = (int8 - fp32).norm(dim=1), fp32.norm(dim=1)
    relative = torch.where(reference_norm > 0, error_norm / reference_norm.clamp_min(1e-300),
                           torch.where(error_norm > 0, math.inf, 0.0))
    disagreements = tuple(
        Disagreement(
            index=i,
            fp32_class=int(fp32_top[i]),
            int8_class=int(int8_top[i]),
            fp32_margin=float(fp32[i, fp32_top[i]] - fp32[i, int8_top[i]]),
            int8_margin=float(int8[i, int8_top[i]] - int8[i, fp32_top[i]]),
        )
        for i in torch.nonzero(fp32_top != int8_top).flatten().tolist()
    )
    count = fp32.shape[0]
    if fp32.shape[1] > 1:
        top2 = fp32.topk(2, dim=1).values
        median_margin = float((top2[:, 0] - top2[:, 1]).median())
    else:
        median_margin = math.nan
    return Int8Agreement(
        count=count,
        agreed=count - len(disagreements),
        top1_agreement=(count - len(disagreements)) / count,
        mean_relative_l2=float(relative.mean()),
        max_relative_l2=float(relative.max()),
        max_abs_error=float((int8 - fp32).abs().max()),
        median_fp32_margin=median_margin,
        disagreements=disagreements,
    )


def _batches(clips, batch_size: int, clip_count=None):
    if isinstance(clips, torch.Tensor) and clip_count is not None:
        _batch_input(clips, clip_count, what="batch of clips")  # raises: a list model needs batches of clip lists
    if isinstance(clips, torch.Tensor):
        if clips.dim() < 2 or clips.shape[0] == 0:
            raise ValueError(f"clips must be a non-empty batch tensor [N, ...], got shape {tuple(clips.shape)}")
        yield from clips.split(batch_size)
        return
    if not isinstance(clips, Iterable):
        raise TypeError(f"clips must be a batch tensor or an iterable of batches, got {type(clips).__name__}")
    for batch in clips:
        if clip_count is not None:  # a model that takes a list of clips: the structure errors say what it wants
            yield _batch_input(batch, clip_count, what="batch of clips")
            continue
        try:
            yield _batch_tensor(batch)
        except TypeError:
            raise TypeError("each item of clips must be a tensor, a (tensor, ...) tuple or a dict with a 'video' "
                            f"tensor; got {type(batch).__name__}") from None


def _logits(model: nn.Module, batch, name: str) -> torch.Tensor:
    out = model(batch)
    size = batch.shape[0] if isinstance(batch, torch.Tensor) else batch[0].shape[0]  # a list of clips: the first's
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != size:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name} must return logits [batch, num_classes]; for a batch of {size} it returned {shape}")
    return out.float()


def compare_int8(
    fp32_model: nn.Module,
    int8_model: nn.Module,
    clips: Union[torch.Tensor, Iterable],
    batch_size: int = 8,
) -> Int8Agreement:
    """Run ``fp32_model`` and ``int8_model`` on ``clips`` and compare their logits (see :class:`Int8Agreement`).

    Args:
        fp32_model, int8_model: models returning logits ``[batch, num_classes]``; both run in eval mode under
            ``torch.no_grad`` (their training flags are restored afterwards).
        clips: a batch tensor ``[N, C, T, H, W]`` (split into chunks of ``batch_size``), or an iterable of batches
            in any form ``quantize_model`` accepts (tensors, ``(tensor, label, ...)`` tuples, ``{"video": ...}``
            dicts). Use clips that were not used for calibration. For an int8 model that takes a list of clips
            (SlowFast), an iterable of batches each holding one list (as ``quantize_model``'s calibration batches).
        batch_size: chunk size when ``clips`` is one tensor.
    """
    if not isinstance(fp32_model, nn.Module) or not isinstance(int8_model, nn.Module):
        raise TypeError("compare_int8: fp32_model and int8_model must be torch.nn.Modules")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"compare_int8: batch_size must be a positive int, got {batch_size!r}")
    flags = (fp32_model.training, int8_model.training)
    fp32_model.eval()
    int8_model.eval()
    fp32_out, int8_out = [], []
    try:
        with torch.no_grad():
            graph = getattr(int8_model, "graph", None)
            clip_count = _clip_count(graph) if isinstance(graph, fx.Graph) else None
            for batch in _batches(clips, batch_size, clip_count):
                fp32_out.append(_logits(fp32_model, batch, "fp32_model"))
                int8_out.append(_logits(int8_model, batch, "int8_model"))
    finally:
        fp32_model.train(flags[0])
        int8_model.train(flags[1])
    if not fp32_out:
        raise ValueError("compare_int8: clips yielded no batches")
    return compare_logits(torch.cat(fp32_out), torch.cat(int8_out))


__all__ = ["Disagreement", "Int8Agreement", "compare_int8", "compare_logits"]
