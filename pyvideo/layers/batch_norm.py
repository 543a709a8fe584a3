"""Batch norm whose training statistics are averaged across processes ("naive" sync BN).

Each process computes per-channel mean and mean-of-squares of its own batch; these are averaged over all
processes (``global_sync=True``) or within consecutive groups of ``num_sync_devices`` ranks, with a
differentiable all-reduce, so gradients flow through the shared statistics. Every process must hold the
same batch size, which is the "naive" part. Outside ``torch.distributed`` or in eval mode it is plain BN.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn

_SYNC_GROUPS: Dict[Tuple[int, int], object] = {}


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _local_sync_group(group_size: int):
    """Process group of the ``group_size`` consecutive ranks holding this rank (created once, collectively)."""
    world_size = _world_size()
    key = (world_size, group_size)
    if key not in _SYNC_GROUPS:
        if world_size % group_size:
            raise ValueError(f"world size {world_size} is not a multiple of num_sync_devices={group_size}")
        groups = [dist.new_group(list(range(start, start + group_size))) for start in range(0, world_size, group_size)]
        _SYNC_GROUPS[key] = groups
    return _SYNC_GROUPS[key][dist.get_rank() // group_size]


class _NaiveSyncBatchNormMixin:
    """Shared forward for the 1d/2d/3d variants; combined with the matching ``nn.BatchNormNd``."""

    def _init_sync(self, num_sync_devices: Optional[int], global_sync: bool) -> None:
        if global_sync and num_sync_devices is not None:
            raise ValueError("num_sync_devices must be None when global_sync=True")
        if not global_sync and (num_sync_devices is None or num_sync_devices < 1):
            raise ValueError("local sync (global_sync=False) needs num_sync_devices >= 1")
        self.global_sync = global_sync
        self.num_sync_devices = num_sync_devices

    def _synced_mean(self, stats: torch.Tensor) -> torch.Tensor:
        from torch.distributed.nn.functional import all_reduce

        if self.global_sync:
            return all_reduce(stats, group=dist.group.WORLD) / _world_size()
        group = _local_sync_group(self.num_sync_devices)
        return all_reduce(stats, group=group) / self.num_sync_devices

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if _world_size() == 1 or not self.training:
            return super().forward(input)
        if input.shape[0] == 0:
            raise ValueError("NaiveSyncBatchNorm does not support an empty batch")
        channels = input.shape[1]
        reduce_dims = [0] + list(range(2, input.dim()))
        mean = input.mean(dim=reduce_dims)
        mean_sq = (input * input).mean(dim=reduce_dims)
        mean, mean_sq = torch.split(self._synced_mean(torch.cat([mean, mean_sq])), channels)
        var = mean_sq - mean * mean
        with torch.no_grad():
            self.running_mean += self.momentum * (mean - self.running_mean)
            self.running_var += self.momentum * (var - self.running_var)
            self.num_batches_tracked += 1
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        view = [1, channels] + [1] * (input.dim() - 2)
        return input * scale.reshape(view) + shift.reshape(view)


class NaiveSyncBatchNorm1d(_NaiveSyncBatchNormMixin, nn.BatchNorm1d):
    def __init__(self, num_sync_devices: Optional[int] = None, global_sync: bool = True, **bn_kwargs) -> None:
        nn.BatchNorm1d.__init__(self, **bn_kwargs)
        self._init_sync(num_sync_devices, global_sync)


class NaiveSyncBatchNorm2d(_NaiveSyncBatchNormMixin, nn.BatchNorm2d):
    def __init__(self, num_sync_devices: Optional[int] = None, global_sync: bool = True, **bn_kwargs) -> None:
        nn.BatchNorm2d.__init__(self, **bn_kwargs)
        self._init_sync(num_sync_devices, global_sync)


class NaiveSyncBatchNorm3d(_NaiveSyncBatchNormMixin, nn.BatchNorm3d):
    def __init__(self, num_sync_devices: Optional[int] = None, global_sync: bool = True, **bn_kwargs) -> None:
        nn.BatchNorm3d.__init__(self, **bn_kwargs)
        self._init_sync(num_sync_devices, global_sync)
