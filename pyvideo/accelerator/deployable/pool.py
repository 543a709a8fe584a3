"""Global average pooling of the deploy form (no kernel size frozen from an example input)."""
import torch
import torch.nn as nn


class GlobalAvgPool(nn.Module):
    """Mean over every dim after the channel dim, keeping them as size-1 dims: [N, C, *S] -> [N, C, 1, ...]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
