from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.layers.distributed import all_gather, get_rank


class SimCLR(nn.Module):
    """A Simple Framework for Contrastive Learning of Visual Representations (https://arxiv.org/abs/2002.05709).

    ``forward(x1, x2)`` embeds both views (backbone, then ``mlp``, then L2 normalisation) and returns the
    InfoNCE loss of each x1 row against the x2 rows gathered from every process; the positive of row i on
    rank r is gathered row ``r * batch_size + i``. The all-gather is differentiable, so every rank's x2
    embeddings receive the gradients of every rank's loss.
    """

    def __init__(self, mlp: nn.Module, backbone: Optional[nn.Module] = None, temperature: float = 0.07) -> None:
        super().__init__()
        self.mlp = mlp
        self.backbone = backbone
        self.temperature = temperature

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.backbone is not None:
            x = self.backbone(x)
        return F.normalize(self.mlp(x), p=2, dim=1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        z1 = self._embed(x1)
        z2 = torch.cat(all_gather(self._embed(x2)), dim=0)
        logits = z1 @ z2.t() / self.temperature
        batch_size = z1.shape[0]
        offset = get_rank() * batch_size
        targets = torch.arange(offset, offset + batch_size, device=z1.device)
        return F.cross_entropy(logits, targets)
