import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def _module_device(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


class MemoryBank(nn.Module):
    """Non-parametric instance discrimination (https://arxiv.org/abs/1805.01978) with a memory bank.

    ``forward(x, x_ind)`` embeds x (backbone, optional mlp, L2 norm), scores it against its own bank entry
    ``memory[x_ind]`` (the positive, logit 0) and ``neg_size`` entries drawn uniformly from the bank, and
    returns the softmax cross entropy. In training mode it then updates the bank:
    ``memory[x_ind] = normalize(mmt * memory[x_ind] + (1 - mmt) * embedding)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        mlp: Optional[nn.Module] = None,
        neg_size: int = 4096,
        temperature: float = 0.07,
        bank_size: int = 1280000,
        dim: int = 2048,
        mmt: float = 0.999,
    ) -> None:
        """
        Args:
            backbone: maps an input batch to B x dim features (or to the mlp's input).
            mlp: optional projection after the backbone.
            neg_size: negatives sampled per instance.
            temperature: softmax temperature.
            bank_size: number of entries, normally the training-set size (the buffer is bank_size x dim floats).
            dim: embedding width.
            mmt: momentum of the bank update.
        """
        super().__init__()
        self.backbone = backbone
        self.mlp = mlp
        self.neg_size = neg_size
        self.temperature = temperature
        self.bank_size = bank_size
        self.dim = dim
        self.mmt = mmt
        self._init_mem_bank(bank_size, dim)

    def _init_mem_bank(self, bank_size: int, dim: int) -> None:
        """Uniform in [-stdv, stdv) with stdv = 1 / sqrt(dim / 3), i.e. unit expected squared norm per row."""
        stdv = 1.0 / math.sqrt(dim / 3)
        memory = torch.rand(bank_size, dim, device=_module_device(self.backbone)).mul_(2 * stdv).add_(-stdv)
        self.register_buffer("memory", memory)

    def forward(self, x: torch.Tensor, x_ind: torch.Tensor) -> torch.Tensor:
        batch_size = x.shape[0]
        x_ind = x_ind.reshape(-1).long().to(self.memory.device)
        if x_ind.numel() != batch_size:
            raise ValueError(f"x_ind must hold one index per sample ({batch_size}), got {x_ind.numel()}")
        if bool((x_ind < 0).any()) or bool((x_ind >= self.bank_size).any()):
            raise ValueError(f"x_ind must lie in [0, {self.bank_size})")
        x = self.backbone(x)
        if self.mlp is not None:
            x = self.mlp(x)
        x = F.normalize(x, p=2, dim=1)
        idx = torch.randint(0, self.bank_size, (batch_size, self.neg_size + 1), device=self.memory.device)
        idx[:, 0] = x_ind  # column 0 holds each sample's positive
        weight = self.memory.index_select(0, idx.reshape(-1)).detach().view(batch_size, self.neg_size + 1, self.dim)
        logits = torch.einsum("bkc,bc->bk", weight, x) / self.temperature
        loss = F.cross_entropy(logits, torch.zeros(batch_size, dtype=torch.long, device=x.device))
        if self.training:
            with torch.no_grad():
                updated = self.memory.index_select(0, x_ind) * self.mmt + x.detach() * (1 - self.mmt)
                self.memory.index_copy_(0, x_ind, F.normalize(updated, p=2, dim=1))
        return loss
