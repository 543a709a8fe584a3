import torch
import torch.nn as nn


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False) -> torch.Tensor:
    """Stochastic depth: zeroes whole samples with probability ``drop_prob`` and rescales the kept ones
    by 1 / (1 - drop_prob), so the expected value is unchanged. Identity in eval mode or when drop_prob is 0.
    """
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"drop_prob must lie in [0, 1), got {drop_prob}")
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1.0 - drop_prob
    mask_shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    # floor(keep_prob + U[0, 1)) is 1 with probability keep_prob (the same draw as upstream, so seeded runs agree)
    keep = torch.floor(keep_prob + torch.rand(mask_shape, dtype=x.dtype, device=x.device))
    return x / keep_prob * keep


class DropPath(nn.Module):
    """Module form of :func:`drop_path`; active only in training mode."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
