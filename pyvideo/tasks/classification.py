"""Supervised video classification: the loss for ``fit`` and a one-call trainer with per-epoch validation."""
from typing import Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .metrics import topk_accuracy
from .trainer import TrainResult, fit, to_device


def classification_loss(model: nn.Module, batch: dict, label_smoothing: float = 0.0):
    logits = model(batch["video"])
    labels = batch["label"]
    loss = nn.functional.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    return loss, {"acc": (logits.argmax(dim=1) == labels).float().mean().item()}


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, *, batch_size: int = 16, num_workers: int = 0, device="cpu"):
    """Single-view scores (logits) and labels over a dataset of {"video", "label"} samples, in dataset order."""
    model.eval().to(device)
    scores, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        batch = to_device(batch, torch.device(device))
        scores.append(model(batch["video"]).float().cpu())
        labels.append(batch["label"].cpu())
    return torch.cat(scores), torch.cat(labels)


def validation_accuracy(model: nn.Module, dataset: Dataset, **kwargs) -> dict:
    scores, labels = predict(model, dataset, **kwargs)
    return {f"val_{k}": v for k, v in topk_accuracy(scores, labels, ks=(1, 5)).items()}


def train_classifier(model: nn.Module, train_dataset: Dataset, *, val_dataset: Optional[Dataset] = None,
                     label_smoothing: float = 0.0, eval_batch_size: int = 16, **fit_kwargs) -> TrainResult:
    """Train with cross-entropy; ``fit_kwargs`` go to ``fit`` (optimizer, lr, epochs, precision, resume, ...).

    With ``val_dataset``, single-view top-1/top-5 are computed and logged after every epoch.
    """
    device = fit_kwargs.get("device", "cpu")
    evaluate = None
    if val_dataset is not None:
        def evaluate(m):
            return validation_accuracy(m, val_dataset, batch_size=eval_batch_size, device=device)
    return fit(model, train_dataset, lambda m, b: classification_loss(m, b, label_smoothing), evaluate=evaluate,
               bn_forward=lambda m, b: m(b["video"]), **fit_kwargs)
