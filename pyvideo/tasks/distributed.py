"""torch.distributed helpers: launch detection (torchrun's environment), rank queries and reductions.

gloo is used on CPU and NCCL on CUDA. Everything degrades to single-process behaviour when no process group exists.
"""
import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init_distributed(device: str = "cpu", init_method: str = "env://", rank_id: int = None, num_processes: int = None) -> bool:
    """Join the process group described by torchrun's environment (or the arguments); no-op when there is none.

    Returns True when this process is part of a multi-process group afterwards.
    """
    if is_distributed():
        return True
    if rank_id is None and not launched_by_torchrun():
        return False
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if str(device).startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank_id or 0)))
    kwargs = {} if rank_id is None else {"rank": rank_id, "world_size": num_processes}
    dist.init_process_group(backend=backend, init_method=init_method, **kwargs)
    return is_distributed()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average a tensor over ranks (in place); identity without a process group."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= world_size()
    return tensor


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate equally shaped tensors from every rank along dim 0 (rank order)."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def barrier() -> None:
    if is_distributed():
        dist.barrier()
