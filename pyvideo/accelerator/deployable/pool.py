"""Global average pooling of the deploy form (no kernel size frozen from an example input)."""
import torch
import torch.nn as nn


class GlobalAvgPool(nn.Module):
    """Mean over every dim after the channel dim, keeping them as size-1 dims: [N, C, *S] -> [N, C, 1, ...]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


def is_global_pool(module: nn.Module, adaptive_types=(nn.AdaptiveAvgPool3d,)) -> bool:
    """Whether ``module`` averages over every dim after C: a GlobalAvgPool, or an adaptive average pool of one of
    ``adaptive_types`` with output size 1 (a 2-D one is global only on 4-D inputs, so it is opt-in)."""
    if isinstance(module, GlobalAvgPool):
        return True
    if isinstance(module, adaptive_types):
        size = module.output_size
        return all(s == 1 for s in (size if isinstance(size, tuple) else (size,)))
    return False

