"""Distributed helpers that degrade to single-process behaviour when torch.distributed is absent or not
initialised, plus a differentiable all-gather (used by SimCLR)."""
from typing import List

import torch
import torch.distributed as dist

_LOCAL_PROCESS_GROUP = None


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    """Number of processes, 1 when not running distributed."""
    return dist.get_world_size() if _is_distributed() else 1


def get_rank() -> int:
    """Rank of this process, 0 when not running distributed."""
    return dist.get_rank() if _is_distributed() else 0


class _DifferentiableAllGather(torch.autograd.Function):
    """Forward: every rank's tensor. Backward: each rank's loss may use every rank's slice, so the
    gradients of all ranks are summed (all_reduce) and each rank keeps the part for its own tensor."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor):
        gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, tensor.contiguous())
        return tuple(gathered)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        # all_reduce rather than reduce_scatter: gloo (CPU) implements only the former
        grad = torch.stack(grads).contiguous()
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def all_gather(tensor: torch.Tensor) -> List[torch.Tensor]:
    """Differentiable all-gather: returns one tensor per rank (rank order); gradients flowing into entry i
    from every rank reach rank i's ``tensor``. Returns ``[tensor]`` when not distributed."""
    if get_world_size() == 1:
        return [tensor]
    return list(_DifferentiableAllGather.apply(tensor))


def cat_all_gather(tensors: torch.Tensor, local: bool = False) -> torch.Tensor:
    """Non-differentiable all-gather concatenated on dim 0, over all ranks or the local (per-machine) group."""
    gather_size = get_local_size() if local else get_world_size()
    if gather_size == 1:
        return tensors
    gathered = [torch.ones_like(tensors) for _ in range(gather_size)]
    dist.all_gather(gathered, tensors, async_op=False, group=_LOCAL_PROCESS_GROUP if local else None)
    return torch.cat(gathered, dim=0)


def init_distributed_training(num_gpus: int, shard_id: int) -> None:
    """Creates one process group per machine (``num_gpus`` processes each) and remembers this machine's."""
    global _LOCAL_PROCESS_GROUP
    if num_gpus <= 1:
        return
    num_machines = dist.get_world_size() // num_gpus
    for machine in range(num_machines):
        group = dist.new_group(list(range(machine * num_gpus, (machine + 1) * num_gpus)))
        if machine == shard_id:
            _LOCAL_PROCESS_GROUP = group


def get_local_size() -> int:
    """Size of the per-machine process group (1 when not distributed)."""
    return dist.get_world_size(group=_LOCAL_PROCESS_GROUP) if _is_distributed() else 1


def get_local_rank() -> int:
    """Rank within the per-machine process group (0 when not distributed)."""
    if not _is_distributed():
        return 0
    return dist.get_rank(group=get_local_process_group())


def get_local_process_group() -> "dist.ProcessGroup":
    if _LOCAL_PROCESS_GROUP is None:
        raise RuntimeError("no local process group: call init_distributed_training(num_gpus, shard_id) first")
    return _LOCAL_PROCESS_GROUP


class GroupGather(torch.autograd.Function):
    """Sums a tensor over the ranks of this rank's sync group (``num_sync_devices`` consecutive local ranks);
    the backward pass sums the gradients over the same group. Used by NaiveSyncBatchNorm."""

    @staticmethod
    def _group_sum(tensor: torch.Tensor, num_sync_devices: int, num_groups: int) -> torch.Tensor:
        gathered = [torch.zeros_like(tensor) for _ in range(get_local_size())]
        dist.all_gather(gathered, tensor, async_op=False, group=get_local_process_group())
        stacked = torch.stack(gathered, dim=0)
        if num_groups > 1:
            group_index = get_local_rank() // num_sync_devices
            stacked = stacked[group_index * num_sync_devices : (group_index + 1) * num_sync_devices]
        return stacked.sum(dim=0)

    @staticmethod
    def forward(ctx, input: torch.Tensor, num_sync_devices: int, num_groups: int) -> torch.Tensor:
        ctx.num_sync_devices = num_sync_devices
        ctx.num_groups = num_groups
        return GroupGather._group_sum(input, num_sync_devices, num_groups)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return GroupGather._group_sum(grad_output, ctx.num_sync_devices, ctx.num_groups), None, None
