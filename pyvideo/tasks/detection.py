"""AVA-style actor action detection with given boxes: clips centred on key frames, per-box multi-label
scores from a ``DetectionBBoxNetwork`` (e.g. ``slow_r50_detection``), BCE training and frame-level mAP.
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .ava_map import ava_frame_map
from .clip_dataset import decode_video, read_labeled_csv
from .trainer import TrainResult, fit, to_device


class AvaBoxDataset(Dataset):
    """Key-frame samples from videos with AVA-format box annotations (as ``pyvideo synth --boxes`` writes).

    Each sample: ``video`` float C,T,H,W (``num_frames`` frames centred on the key frame, then ``transform``),
    ``boxes`` K x 4 in pixels of the returned clip, ``labels`` K x num_classes multi-hot, plus ``video_id`` and
    ``timestamp`` of the key frame. ``keyframe_stride`` picks every n-th annotated frame that has a full window.
    """

    def __init__(self, csv_path: str, boxes_csv: str, *, video_path_prefix: str = "", num_classes: int,
                 num_frames: int = 8, fps: float = 8.0, keyframe_stride: int = 4,
                 transform: Optional[Callable] = None):
        from pyvideo.synth import read_ava_boxes

        annotations = read_ava_boxes(boxes_csv)
        self.num_classes, self.num_frames, self.fps, self.transform = num_classes, num_frames, fps, transform
        self.videos: List[torch.Tensor] = []
        self.keyframes = []  # (video slot, video_id, timestamp, frame index, [(box, action_id)])
        for path, _ in read_labeled_csv(csv_path):
            video_id = path[: -len(".mp4")] if path.endswith(".mp4") else path
            if video_id not in annotations:
                raise ValueError(f"{video_id} has no boxes in {boxes_csv}")
            full_path = f"{video_path_prefix.rstrip('/')}/{path}" if video_path_prefix else path
            self.videos.append(decode_video(full_path))
            frames = {}
            for timestamp, box, action, _ in annotations[video_id]:
                frames.setdefault(timestamp, []).append((box, action))
            total = self.videos[-1].shape[1]
            half = num_frames // 2
            for timestamp in sorted(frames)[::keyframe_stride]:
                index = round(timestamp * fps)
                if half <= index <= total - (num_frames - half):
                    self.keyframes.append((len(self.videos) - 1, video_id, timestamp, index, frames[timestamp]))
        if not self.keyframes:
            raise ValueError("no key frame has a full clip window; lower num_frames or keyframe_stride")

    def __len__(self) -> int:
        return len(self.keyframes)

    def __getitem__(self, i: int) -> dict:
        slot, video_id, timestamp, index, actors = self.keyframes[i]
        start = index - self.num_frames // 2
        video = self.videos[slot][:, start : start + self.num_frames].float()
        height, width = video.shape[-2:]
        boxes = torch.tensor([box for box, _ in actors], dtype=torch.float32) * torch.tensor([width, height] * 2)
        labels = torch.zeros(len(actors), self.num_classes)
        for row, (_, action) in enumerate(actors):
            labels[row, action - 1] = 1.0
        sample = {"video": video, "boxes": boxes, "labels": labels, "video_id": video_id, "timestamp": timestamp}
        return self.transform(sample) if self.transform else sample


def collate_detection(samples: Sequence[dict]) -> dict:
    """Stack clips; concatenate boxes as (batch index, x1, y1, x2, y2) rows, the RoI head's input format."""
    boxes = torch.cat([torch.cat([torch.full((len(s["boxes"]), 1), float(i)), s["boxes"]], dim=1)
                       for i, s in enumerate(samples)])
    return {"video": torch.stack([s["video"] for s in samples]), "boxes": boxes,
            "labels": torch.cat([s["labels"] for s in samples]),
            "video_id": [s["video_id"] for s in samples], "timestamp": [s["timestamp"] for s in samples]}


def detection_loss(model: nn.Module, batch: dict, outputs_are_probabilities: bool = True):
    """Multi-label BCE per box. The AVA detectors end in a Sigmoid (applied in training too), hence probabilities."""
    outputs = model(batch["video"], batch["boxes"]).float()
    if outputs_are_probabilities:
        return nn.functional.binary_cross_entropy(outputs.clamp(1e-6, 1 - 1e-6), batch["labels"])
    return nn.functional.binary_cross_entropy_with_logits(outputs, batch["labels"])


def train_detector(model: nn.Module, dataset: Dataset, *, outputs_are_probabilities: bool = True,
                   **fit_kwargs) -> TrainResult:
    return fit(model, dataset, lambda m, b: detection_loss(m, b, outputs_are_probabilities),
               collate_fn=collate_detection, bn_forward=lambda m, b: m(b["video"], b["boxes"]), **fit_kwargs)


@torch.no_grad()
def evaluate_detector(model: nn.Module, dataset: AvaBoxDataset, *, batch_size: int = 8, device="cpu",
                      iou_threshold: float = 0.5) -> Dict[str, object]:
    """Score the dataset's boxes and compute AVA frame-level mAP against its annotations (in normalised units)."""
    model.eval().to(device)
    ground_truth, detections = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_detection):
        scores = model(*to_device((batch["video"], batch["boxes"]), torch.device(device))).float().cpu()
        height, width = batch["video"].shape[-2:]
        scale = torch.tensor([width, height] * 2)
        for row, (frame, *box) in enumerate(batch["boxes"].tolist()):
            video_id, timestamp = batch["video_id"][int(frame)], batch["timestamp"][int(frame)]
            normalised = tuple((torch.tensor(box) / scale).tolist())
            for action in torch.nonzero(batch["labels"][row]).flatten().tolist():
                ground_truth.append((video_id, timestamp, normalised, action + 1))
            detections += [(video_id, timestamp, normalised, c + 1, float(s)) for c, s in enumerate(scores[row])]
    mean_ap, per_class = ava_frame_map(ground_truth, detections, iou_threshold)
    return {"mAP": mean_ap, "per_class_AP": per_class}
