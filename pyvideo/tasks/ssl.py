"""Self-supervised pre-training (SimCLR, BYOL, MoCo v2) on unlabeled clips, and linear-probe evaluation.

Each training sample carries two independently augmented views of one clip (``TwoViews``); the method's wrapper
turns (view1, view2) into a loss, which ``fit`` minimises. Labels, if present, are ignored until the probe.
"""
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .moco import MoCoV2
from .trainer import TrainResult, fit, to_device

SSL_METHODS = ("simclr", "byol", "moco_v2")


class TwoViews:
    """Dict transform: ``video`` -> ``video1``, ``video2``, two draws of ``view_transform`` on the same clip."""

    def __init__(self, view_transform: Callable[[torch.Tensor], torch.Tensor]):
        self.view_transform = view_transform

    def __call__(self, sample: dict) -> dict:
        video = sample["video"]
        rest = {k: v for k, v in sample.items() if k != "video"}
        return {**rest, "video1": self.view_transform(video), "video2": self.view_transform(video)}


def projection_mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, dim_out))


def make_ssl_model(method: str, backbone: nn.Module, feature_dim: int, *, projection_dim: int = 128,
                   hidden_dim: int = 512, temperature: Optional[float] = None, mmt: Optional[float] = None,
                   queue_size: int = 4096) -> nn.Module:
    """Wrap ``backbone`` (clip batch -> B x feature_dim) for ``method``; the wrapper's forward(x1, x2) is the loss."""
    from pyvideo.models.byol import BYOL
    from pyvideo.models.simclr import SimCLR

    if method == "simclr":
        return SimCLR(mlp=projection_mlp(feature_dim, hidden_dim, projection_dim), backbone=backbone,
                      temperature=temperature or 0.1)
    if method == "byol":
        # plain BatchNorm1d: SyncBatchNorm (upstream's default) needs a GPU process group
        return BYOL(backbone, projector=projection_mlp(feature_dim, hidden_dim, projection_dim),
                    feature_dim=projection_dim, predictor_inner=hidden_dim, mmt=mmt or 0.99, norm=nn.BatchNorm1d)
    if method == "moco_v2":
        return MoCoV2(backbone, projection_mlp(feature_dim, hidden_dim, projection_dim), projection_dim,
                      queue_size=queue_size, mmt=mmt or 0.99, temperature=temperature or 0.2)
    raise ValueError(f"method must be one of {SSL_METHODS}, got {method!r}")


def pretrain_ssl(backbone: nn.Module, dataset: Dataset, *, method: str = "simclr", feature_dim: int,
                 projection_dim: int = 128, hidden_dim: int = 512, temperature: Optional[float] = None,
                 mmt: Optional[float] = None, queue_size: int = 4096, **fit_kwargs) -> TrainResult:
    """Pre-train ``backbone`` in place on samples with "video1"/"video2"; returns ``fit``'s result whose
    ``model`` is the SSL wrapper (the backbone inside it is the object passed in)."""
    wrapper = make_ssl_model(method, backbone, feature_dim, projection_dim=projection_dim, hidden_dim=hidden_dim,
                             temperature=temperature, mmt=mmt, queue_size=queue_size)
    return fit(wrapper, dataset, lambda m, b: m(b["video1"], b["video2"]), **fit_kwargs)


@torch.no_grad()
def extract_features(backbone: nn.Module, dataset: Dataset, *, batch_size: int = 32, device="cpu"):
    backbone.eval().to(device)
    features, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        batch = to_device(batch, torch.device(device))
        features.append(backbone(batch["video"]).float().flatten(1).cpu())
        labels.append(batch["label"].cpu())
    return torch.cat(features), torch.cat(labels)


def linear_probe(backbone: nn.Module, train_dataset: Dataset, val_dataset: Dataset, *, num_classes: int,
                 epochs: int = 100, lr: float = 0.1, weight_decay: float = 1e-4, device="cpu") -> dict:
    """Freeze ``backbone``, fit a linear classifier on its (standardised) features, report top-1 on both sets.

    Features are extracted once, so the classifier trains full-batch in milliseconds; the same seed gives the same probe.
    """
    train_x, train_y = extract_features(backbone, train_dataset, device=device)
    val_x, val_y = extract_features(backbone, val_dataset, device=device)
    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    generator = torch.Generator().manual_seed(0)
    probe = nn.Linear(train_x.shape[1], num_classes)
    with torch.no_grad():
        probe.weight.normal_(0, 0.01, generator=generator)
        probe.bias.zero_()
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        optimizer.zero_grad()
        nn.functional.cross_entropy(probe(train_x), train_y).backward()
        optimizer.step()
    with torch.no_grad():
        return {"train_top1": (probe(train_x).argmax(1) == train_y).float().mean().item(),
                "val_top1": (probe(val_x).argmax(1) == val_y).float().mean().item()}
