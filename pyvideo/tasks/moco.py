"""MoCo v2 (Chen et al., 2020): momentum contrast with a queue of negatives and an MLP projection head.

Not part of PyTorchVideo's model zoo (which ships SimCLR, BYOL and a memory bank), so it lives with the tasks.
``forward(x1, x2)`` returns the InfoNCE loss of the query x1 against its key x2 (from the momentum encoder) and the
queued keys of earlier batches; keys of every DDP rank are enqueued, so all ranks keep the same queue.
"""
import copy

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import all_gather_cat


class MoCoV2(nn.Module):
    def __init__(self, backbone: nn.Module, projector: nn.Module, feature_dim: int, queue_size: int = 4096,
                 mmt: float = 0.999, temperature: float = 0.2):
        super().__init__()
        self.encoder = nn.Sequential(backbone, projector)
        self.encoder_mmt = copy.deepcopy(self.encoder)
        for param in self.encoder_mmt.parameters():
            param.requires_grad = False
        self.mmt, self.temperature = mmt, temperature
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, feature_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @property
    def backbone(self) -> nn.Module:
        return self.encoder[0]

    @torch.no_grad()
    def _momentum_update(self) -> None:
        for param, param_mmt in zip(self.encoder.parameters(), self.encoder_mmt.parameters()):
            param_mmt.mul_(self.mmt).add_(param.detach(), alpha=1.0 - self.mmt)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = all_gather_cat(keys)
        size = self.queue.shape[0]
        positions = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % size
        self.queue[positions] = keys[-size:] if len(keys) > size else keys
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % size)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        q = F.normalize(self.encoder(x1), dim=1)
        with torch.no_grad():
            if self.training:
                self._momentum_update()
            k = F.normalize(self.encoder_mmt(x2), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)
        negative = q @ self.queue.clone().t()
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        loss = F.cross_entropy(logits.float(), torch.zeros(len(q), dtype=torch.long, device=q.device))
        if self.training:
            self._enqueue(k)
        return loss
