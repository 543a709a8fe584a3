import copy
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class BYOL(nn.Module):
    """Bootstrap Your Own Latent (https://arxiv.org/abs/2006.07733).

    ``forward(x1, x2)`` returns the symmetric negative cosine similarity between the online predictions of
    one view and the momentum (EMA) network's projections of the other view. In training mode each forward
    first updates the momentum copy: ``p_mmt = mmt * p_mmt + (1 - mmt) * p``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: Optional[nn.Module] = None,
        predictor: Optional[nn.Module] = None,
        feature_dim: int = 2048,
        predictor_inner: int = 4096,
        mmt: float = 0.99,
        norm: Callable = nn.SyncBatchNorm,
    ) -> None:
        """
        Args:
            backbone: maps an input batch to features (B x feature_dim after the projector).
            projector: optional MLP appended to the backbone (kept in ``backbone`` as Sequential(backbone, projector)).
            predictor: online-only MLP; defaults to Linear -> norm -> ReLU -> Linear(feature_dim).
            feature_dim: output width of backbone(+projector) and of the predictor.
            predictor_inner: hidden width of the default predictor.
            mmt: EMA momentum of the momentum network.
            norm: normalisation of the default predictor (synchronised BN by default).
        """
        super().__init__()
        self.mmt = mmt
        self.feature_dim = feature_dim
        if projector is not None:
            backbone = nn.Sequential(backbone, projector)
        self.backbone = backbone
        self.backbone_mmt = copy.deepcopy(backbone)
        for param in self.backbone_mmt.parameters():
            param.requires_grad = False
        if predictor is None:
            predictor = nn.Sequential(
                nn.Linear(feature_dim, predictor_inner, bias=False),
                norm(predictor_inner),
                nn.ReLU(inplace=True),
                nn.Linear(predictor_inner, feature_dim, bias=True),
            )
        self.predictor = predictor

    @staticmethod
    def sim_loss(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Negative mean dot product of matching rows of two N x C tensors."""
        return -(q * k).sum(dim=1).mean()

    def update_mmt(self, mmt: float) -> None:
        """Sets the EMA momentum (for momentum annealing)."""
        self.mmt = mmt

    def get_mmt(self) -> float:
        return self.mmt

    @torch.no_grad()
    def _momentum_update_backbone(self) -> None:
        for param, param_mmt in zip(self.backbone.parameters(), self.backbone_mmt.parameters()):
            param_mmt.mul_(self.mmt).add_(param.detach(), alpha=1.0 - self.mmt)

    @torch.no_grad()
    def forward_backbone_mmt(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone_mmt(x), dim=1)

    def forward_backbone(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.predictor(self.backbone(x)), dim=1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        pred_1 = self.forward_backbone(x1)
        pred_2 = self.forward_backbone(x2)
        if self.training:
            self._momentum_update_backbone()
        proj_mmt_1 = self.forward_backbone_mmt(x1)
        proj_mmt_2 = self.forward_backbone_mmt(x2)
        return (self.sim_loss(pred_1, proj_mmt_2) + self.sim_loss(pred_2, proj_mmt_1)) / 2
