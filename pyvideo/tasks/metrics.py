"""Classification metrics as papers report them: top-k accuracy, (mean) average precision, confusion matrix."""
from typing import Dict, Sequence

import torch


def topk_accuracy(scores: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """Fraction of rows whose target is among the k highest scores; k is capped at the number of classes."""
    if scores.dim() != 2 or targets.dim() != 1 or scores.shape[0] != targets.shape[0]:
        raise ValueError(f"expected scores N x C and targets N, got {tuple(scores.shape)} and {tuple(targets.shape)}")
    if scores.shape[0] == 0:
        raise ValueError("cannot compute accuracy over zero samples")
    ranked = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hits = ranked == targets[:, None]
    return {f"top{k}": hits[:, : min(k, scores.shape[1])].any(dim=1).float().mean().item() for k in ks}


def average_precision(scores: torch.Tensor, positives: torch.Tensor) -> float:
    """Non-interpolated AP of one class: sum over score thresholds of (recall step) x precision.

    Tied scores form one threshold (as sklearn.metrics.average_precision_score). NaN when there is no positive.
    """
    positives = positives.bool()
    num_pos = int(positives.sum())
    if num_pos == 0:
        return float("nan")
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_scores, sorted_pos = scores[order], positives[order].double()
    true_pos = torch.cumsum(sorted_pos, 0)
    # the last index of each run of equal scores closes a threshold
    last_of_run = torch.ones_like(sorted_scores, dtype=torch.bool)
    last_of_run[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    tp = true_pos[last_of_run]
    counted = torch.arange(1, len(scores) + 1, dtype=torch.float64, device=tp.device)[last_of_run]
    precision, recall = tp / counted, tp / num_pos
    recall_step = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((recall_step * precision).sum())


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Multi-label mAP (Charades): mean AP over the classes that have at least one positive. targets: N x C in {0,1}."""
    if scores.shape != targets.shape or scores.dim() != 2:
        raise ValueError(f"scores and targets must both be N x C, got {tuple(scores.shape)} and {tuple(targets.shape)}")
    aps = [average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])]
    valid = [ap for ap in aps if ap == ap]
    if not valid:
        raise ValueError("no class has a positive target; mAP is undefined")
    return sum(valid) / len(valid)


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """counts[i, j] = number of samples of true class i predicted as j."""
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape")
    for name, values in (("predictions", predictions), ("targets", targets)):
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes}), got range [{int(values.min())}, {int(values.max())}]")
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
