"""Frame-level mean average precision at IoU 0.5, as the AVA evaluation computes it.

The AVA protocol (its `object_detection_evaluation` with PASCAL-style AP): for each action class, detections of
that class over all key frames are ranked by score; a detection is a true positive when the ground-truth box of the
same class in the same key frame with which it has the highest IoU has IoU >= 0.5 and was not already matched;
otherwise (including frames without ground truth) it is a false positive. AP is the area under the
precision/recall curve after making precision monotonically non-increasing; mAP averages AP over the classes that
have ground truth.
"""
from collections import defaultdict
from typing import Dict, Iterable, Tuple

import torch

Box = Tuple[float, float, float, float]


def box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """IoU of every pair of (x1, y1, x2, y2) boxes (areas without the +1 of pixel boxes, as AVA's evaluator)."""
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]).clamp(min=0) * (boxes_a[:, 3] - boxes_a[:, 1]).clamp(min=0)
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]).clamp(min=0) * (boxes_b[:, 3] - boxes_b[:, 1]).clamp(min=0)
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def voc_average_precision(is_true_positive: torch.Tensor, num_ground_truth: int) -> float:
    """AP of detections already sorted by descending score (AVA/PASCAL VOC 2010+ style, precision envelope)."""
    if num_ground_truth == 0:
        return float("nan")
    if len(is_true_positive) == 0:
        return 0.0
    tp = torch.cumsum(is_true_positive.double(), 0)
    zero, one = tp.new_zeros(1), tp.new_ones(1)
    precision = tp / torch.arange(1, len(tp) + 1, dtype=torch.float64, device=tp.device)
    recall = tp / num_ground_truth
    precision = torch.cat([zero, precision, zero])
    recall = torch.cat([zero, recall, one])
    precision = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
    changed = torch.nonzero(recall[1:] != recall[:-1]).flatten() + 1
    return float(((recall[changed] - recall[changed - 1]) * precision[changed]).sum())


def _frame_key(video_id: str, timestamp: float) -> Tuple[str, int]:
    return video_id, round(float(timestamp) * 1000)  # millisecond key: float timestamps from csv files compare equal


def ava_frame_map(
    ground_truth: Iterable[Tuple[str, float, Box, int]],
    detections: Iterable[Tuple[str, float, Box, int, float]],
    iou_threshold: float = 0.5,
) -> Tuple[float, Dict[int, float]]:
    """mAP and per-class AP. ground_truth rows: (video_id, timestamp, box, action_id);
    detections rows: (video_id, timestamp, box, action_id, score). Boxes are (x1, y1, x2, y2), any consistent unit."""
    gt_boxes: Dict[int, Dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
    for video_id, timestamp, box, action in ground_truth:
        gt_boxes[int(action)][_frame_key(video_id, timestamp)].append(box)
    if not gt_boxes:
        raise ValueError("ava_frame_map needs at least one ground-truth box")
    by_class: Dict[int, list] = defaultdict(list)
    for video_id, timestamp, box, action, score in detections:
        by_class[int(action)].append((float(score), _frame_key(video_id, timestamp), box))
    per_class = {}
    for action, frames in gt_boxes.items():
        ranked = sorted(by_class.get(action, []), key=lambda d: -d[0])  # stable: ties keep input order
        matched = {key: torch.zeros(len(boxes), dtype=torch.bool) for key, boxes in frames.items()}
        frame_tensors = {key: torch.tensor(boxes, dtype=torch.float64) for key, boxes in frames.items()}
        hits = torch.zeros(len(ranked), dtype=torch.bool)
        for i, (_, key, box) in enumerate(ranked):
            if key not in frame_tensors:
                continue
            overlaps = box_iou(torch.tensor([box], dtype=torch.float64), frame_tensors[key])[0]
            best = int(overlaps.argmax())
            if overlaps[best] >= iou_threshold and not matched[key][best]:
                matched[key][best] = True
                hits[i] = True
        per_class[action] = voc_average_precision(hits, sum(len(b) for b in frames.values()))
    return sum(per_class.values()) / len(per_class), dict(sorted(per_class.items()))
