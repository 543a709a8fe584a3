import torch
import torch.nn as nn
import torch.nn.functional as F


class SoftTargetCrossEntropyLoss(nn.Module):
    """Cross entropy against soft (multi-label) targets, or hard class indices turned into one-hot rows.

    A sample is ignored, i.e. contributes no loss and is not counted by the "mean", when
    - its hard target equals ``ignore_index`` (any value, including the default -100), or
    - ``ignore_index`` is a class index in [0, C) and the sample's soft target puts mass on that class.

    Upstream raises ``AttributeError`` (it reads the undefined ``self.ignore_idx``) for an ``ignore_index``
    in [0, C), and crashes in the one-hot conversion for a hard target of -100; both work here.
    """

    def __init__(self, ignore_index: int = -100, reduction: str = "mean", normalize_targets: bool = True) -> None:
        """
        Args:
            ignore_index: samples whose target is this class are ignored (see the class docstring).
            reduction: "mean" (over the non-ignored samples) or "none" (one loss per sample).
            normalize_targets: rescale each target row to sum to 1.
        """
        super().__init__()
        if reduction not in ("mean", "none"):
            raise NotImplementedError(f'reduction type "{reduction}" not implemented')
        if not isinstance(normalize_targets, bool):
            raise TypeError(f"normalize_targets must be a bool, got {type(normalize_targets).__name__}")
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.normalize_targets = normalize_targets
        self.eps = torch.finfo(torch.float32).eps

    def _dense_targets(self, input: torch.Tensor, target: torch.Tensor):
        """Returns (targets [N, C] float, valid [N, 1] float)."""
        num_samples, num_classes = input.shape
        if target.dim() == 1:
            if target.shape[0] != num_samples:
                raise ValueError(
                    f"SoftTargetCrossEntropyLoss requires input and target to have the same batch size, "
                    f"got {num_samples} and {target.shape[0]}"
                )
            if target.is_floating_point():
                raise TypeError(f"hard targets must be integer class indices, got {target.dtype}")
            valid = target != self.ignore_index
            out_of_range = valid & ((target < 0) | (target >= num_classes))
            if bool(out_of_range.any()):
                raise ValueError(f"class indices must lie in [0, {num_classes}), got {target[out_of_range].tolist()}")
            one_hot = F.one_hot(torch.where(valid, target, torch.zeros_like(target)), num_classes)
            return one_hot.to(input.dtype), valid.to(input.dtype).unsqueeze(1)
        if target.shape != input.shape:
            raise ValueError(
                f"SoftTargetCrossEntropyLoss requires input and target to be same shape: "
                f"{tuple(input.shape)} != {tuple(target.shape)}"
            )
        valid = torch.ones((num_samples, 1), dtype=input.dtype, device=input.device)
        if 0 <= self.ignore_index < num_classes:
            valid = (target[:, self.ignore_index : self.ignore_index + 1] <= 0).to(input.dtype)
        return target.to(input.dtype), valid

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: N x C raw scores (before softmax).
            target: N x C soft targets, or N class indices.
        """
        if input.dim() != 2:
            raise ValueError(f"input must be N x C, got shape {tuple(input.shape)}")
        targets, valid = self._dense_targets(input, target)
        targets = targets * valid
        if self.normalize_targets:
            targets = targets / (self.eps + targets.sum(dim=1, keepdim=True))
        per_sample_loss = -(targets * F.log_softmax(input, dim=-1)).sum(dim=-1)
        if self.reduction == "none":
            return per_sample_loss
        return per_sample_loss.sum() / valid.sum().clamp(min=1)
