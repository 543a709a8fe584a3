"""Evaluation the way papers report it: multi-view testing (N temporal clips x K spatial crops, scores averaged),
top-1/top-5 accuracy, mAP for multi-label sets and a confusion-matrix PNG.
"""
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .metrics import confusion_matrix, mean_average_precision, topk_accuracy
from .png import save_confusion_matrix_png


@dataclass
class EvalResult:
    scores: torch.Tensor  # N x C, averaged over views
    targets: torch.Tensor  # N (single-label) or N x C (multi-label)
    metrics: dict
    confusion: Optional[torch.Tensor] = None


def temporal_clip_starts(num_frames: int, clip_frames: int, num_clips: int) -> list:
    """Start frames of ``num_clips`` clips spread evenly over the video, i * (T - t) / (n - 1) as
    ConstantClipsPerVideoSampler spaces them; a single clip is centred."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    span = max(num_frames - clip_frames, 0)
    if num_clips == 1:
        return [span // 2]
    return [round(i * span / (num_clips - 1)) for i in range(num_clips)]


def multiview_clips(video: torch.Tensor, *, num_frames: int, sampling_rate: int = 1, num_temporal_clips: int = 1,
                    num_spatial_crops: int = 3, crop_size: int, short_side_size: Optional[int] = None) -> torch.Tensor:
    """All views of one C,T,H,W video as V x C x num_frames x crop x crop (V = temporal clips x spatial crops).

    Each temporal clip covers ``num_frames * sampling_rate`` frames (shorter videos repeat frames); the short side is
    scaled to ``short_side_size`` (default ``crop_size``) and crops are taken at the start/centre/end of the long side.
    """
    from pyvideo.transforms.functional import short_side_scale, uniform_crop, uniform_temporal_subsample

    if num_spatial_crops not in (1, 3):
        raise ValueError(f"num_spatial_crops must be 1 (centre) or 3 (start, centre, end), got {num_spatial_crops}")
    video = video.float()
    span = num_frames * sampling_rate
    scaled = short_side_scale(video, short_side_size or crop_size)
    crop_indices = [1] if num_spatial_crops == 1 else [0, 1, 2]
    views = []
    for start in temporal_clip_starts(video.shape[1], span, num_temporal_clips):
        window = scaled[:, start : start + span]
        clip = uniform_temporal_subsample(window, num_frames)
        views += [uniform_crop(clip, crop_size, index) for index in crop_indices]
    return torch.stack(views)


def _normalise(clips: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    shape = (1, -1, 1, 1, 1)
    mean = torch.tensor(mean, dtype=clips.dtype, device=clips.device).view(shape)
    std = torch.tensor(std, dtype=clips.dtype, device=clips.device).view(shape)
    return (clips / 255.0 - mean) / std


@torch.no_grad()
def evaluate_multiview(
    model: nn.Module,
    samples: Iterable[Tuple[torch.Tensor, Union[int, torch.Tensor]]],
    *,
    num_frames: int,
    crop_size: int,
    sampling_rate: int = 1,
    num_temporal_clips: int = 10,
    num_spatial_crops: int = 3,
    short_side_size: Optional[int] = None,
    mean: Sequence[float] = (0.45, 0.45, 0.45),
    std: Sequence[float] = (0.225, 0.225, 0.225),
    view_transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    multilabel: bool = False,
    num_classes: Optional[int] = None,
    confusion_png: Optional[str] = None,
    device: Union[str, torch.device] = "cpu",
    views_per_batch: int = 32,
) -> EvalResult:
    """Score every (raw C,T,H,W 0-255 video, target) pair by the average over its views of softmax (or, with
    ``multilabel``, sigmoid) scores. Reports top1/top5 (single-label) or mAP (multi-label; targets are multi-hot).
    ``view_transform`` runs on the normalised V x C x T x H x W views (e.g. residual frames) before the model."""
    model.eval().to(device)
    activation = torch.sigmoid if multilabel else (lambda x: torch.softmax(x, dim=1))
    all_scores, all_targets = [], []
    for video, target in samples:
        views = multiview_clips(video, num_frames=num_frames, sampling_rate=sampling_rate,
                                num_temporal_clips=num_temporal_clips, num_spatial_crops=num_spatial_crops,
                                crop_size=crop_size, short_side_size=short_side_size)
        views = _normalise(views, mean, std)
        if view_transform is not None:
            views = view_transform(views)
        scores = torch.cat([activation(model(chunk.to(device)).float()).cpu() for chunk in views.split(views_per_batch)])
        all_scores.append(scores.mean(dim=0))
        all_targets.append(torch.as_tensor(target))
    if not all_scores:
        raise ValueError("evaluate_multiview got no samples")
    scores, targets = torch.stack(all_scores), torch.stack(all_targets)
    if multilabel:
        return EvalResult(scores, targets, {"mAP": mean_average_precision(scores, targets)})
    metrics = topk_accuracy(scores, targets.long(), ks=(1, 5))
    confusion = confusion_matrix(scores.argmax(dim=1), targets.long(), num_classes or scores.shape[1])
    if confusion_png:
        save_confusion_matrix_png(confusion_png, confusion)
    return EvalResult(scores, targets, metrics, confusion)
