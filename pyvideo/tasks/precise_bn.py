"""Precise BatchNorm: replace the EMA running statistics with exact averages over many training batches.

EMA statistics lag behind the weights at the end of training (and are noisy with small batches); recomputing
them with the final weights usually gives a small, free accuracy gain (Wu & Johnson, "Rethinking BatchNorm").
"""
from typing import Callable, Iterable

import torch
from torch import nn

from .distributed import all_reduce_mean


def batch_norm_layers(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def update_bn_stats(model: nn.Module, batches: Iterable, num_batches: int, forward: Callable = None) -> int:
    """Recompute running mean/var of every BN layer as the average over ``num_batches`` batches.

    ``forward(model, batch)`` runs the model on one batch (default: ``model(batch)``). Statistics are averaged
    over DDP ranks so every rank ends with the same buffers. Returns the number of batches used.
    """
    layers = batch_norm_layers(model)
    if not layers or num_batches < 1:
        return 0
    forward = forward or (lambda m, b: m(b))
    saved_momenta = [bn.momentum for bn in layers]
    was_training = model.training
    model.train()  # BN must use batch statistics while the rest runs as in training (no grads needed)
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # None = cumulative moving average: equal weight for every batch
    used = 0
    for batch in batches:
        if used == num_batches:
            break
        forward(model, batch)
        used += 1
    for bn, momentum in zip(layers, saved_momenta):
        bn.momentum = momentum
        all_reduce_mean(bn.running_mean)
        all_reduce_mean(bn.running_var)
    model.train(was_training)
    if used == 0:
        raise ValueError("precise BN got no batches")
    return used
