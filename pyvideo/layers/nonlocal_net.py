"""Non-local block (Wang et al., "Non-local Neural Networks"), residual."""
from typing import Callable, Iterable, Optional, Tuple

import torch
import torch.nn as nn

from pyvideo.layers.utils import set_attributes


class NonLocal(nn.Module):
    """Self-attention over all T*H*W positions, added back onto the input.

    ``instantiation="softmax"`` scales the affinities by dim_inner^-0.5 and normalises them with softmax;
    ``"dot_product"`` divides them by the number of key positions. An optional ``pool`` subsamples the
    keys and values (phi, g) only; the residual always uses the unpooled input.
    """

    def __init__(
        self,
        *,
        conv_theta: nn.Module,
        conv_phi: nn.Module,
        conv_g: nn.Module,
        conv_out: nn.Module,
        pool: Optional[nn.Module] = None,
        norm: Optional[nn.Module] = None,
        instantiation: str = "dot_product",
    ) -> None:
        super().__init__()
        set_attributes(self, locals())
        if None in (conv_theta, conv_phi, conv_g, conv_out):
            raise ValueError("NonLocal needs conv_theta, conv_phi, conv_g and conv_out")
        if instantiation not in ("dot_product", "softmax"):
            raise ValueError(f"unknown instantiation {instantiation!r}; use 'dot_product' or 'softmax'")
        widths = {conv_theta.out_channels, conv_phi.out_channels, conv_g.out_channels, conv_out.in_channels}
        if len(widths) != 1:
            raise ValueError(f"theta, phi, g and out convs must share one inner width, got {sorted(widths)}")
        self.dim_inner = conv_theta.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, time, height, width = x.shape
        theta = self.conv_theta(x).flatten(2)
        keys_in = x if self.pool is None else self.pool(x)
        phi = self.conv_phi(keys_in).flatten(2)
        g = self.conv_g(keys_in).flatten(2)

        affinity = torch.einsum("nct,ncp->ntp", theta, phi)
        if self.instantiation == "softmax":
            affinity = torch.softmax(affinity * (self.dim_inner**-0.5), dim=2)
        else:
            affinity = affinity / affinity.shape[2]
        attended = torch.einsum("ntp,ncp->nct", affinity, g)
        out = self.conv_out(attended.reshape(batch, self.dim_inner, time, height, width))
        if self.norm is not None:
            out = self.norm(out)
        return x + out


def create_nonlocal(
    *,
    dim_in: int,
    dim_inner: int,
    pool_size: Tuple[int] = (1, 1, 1),
    instantiation: str = "softmax",
    norm: Callable = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
) -> nn.Module:
    """Build a ``NonLocal`` block with 1x1x1 projections and optional max-pooling of keys/values."""
    if pool_size is None:
        pool_size = (1, 1, 1)
    if not isinstance(pool_size, Iterable):
        raise TypeError(f"pool_size must be a sequence of 3 ints, got {pool_size!r}")
    pool = (
        nn.MaxPool3d(kernel_size=pool_size, stride=pool_size, padding=(0, 0, 0))
        if any(size > 1 for size in pool_size)
        else None
    )
    return NonLocal(
        conv_theta=nn.Conv3d(dim_in, dim_inner, kernel_size=1, stride=1, padding=0),
        conv_phi=nn.Conv3d(dim_in, dim_inner, kernel_size=1, stride=1, padding=0),
        conv_g=nn.Conv3d(dim_in, dim_inner, kernel_size=1, stride=1, padding=0),
        conv_out=nn.Conv3d(dim_inner, dim_in, kernel_size=1, stride=1, padding=0),
        pool=pool,
        norm=None if norm is None else norm(num_features=dim_in, eps=norm_eps, momentum=norm_momentum),
        instantiation=instantiation,
    )
