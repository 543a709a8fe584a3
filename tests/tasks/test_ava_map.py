import math

import pytest
import torch

from pyvideo.tasks.ava_map import ava_frame_map, box_iou, voc_average_precision

FULL = (0.0, 0.0, 1.0, 1.0)
LEFT = (0.0, 0.0, 0.5, 1.0)
RIGHT = (0.5, 0.0, 1.0, 1.0)


def test_box_iou_hand_computed():
    iou = box_iou(torch.tensor([FULL, LEFT]), torch.tensor([LEFT, (0.25, 0.0, 0.75, 1.0)]))
    assert torch.allclose(iou, torch.tensor([[0.5, 0.5], [1.0, 1 / 3]]))


def test_voc_ap_uses_the_precision_envelope():
    # TP, FP, TP over 2 ground truths: precision 1, 1/2, 2/3 -> envelope 1, 2/3, 2/3; recall steps 1/2 at 1 and 3
    assert voc_average_precision(torch.tensor([True, False, True]), 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert voc_average_precision(torch.tensor([False, True]), 1) == pytest.approx(0.5)
    assert voc_average_precision(torch.tensor([], dtype=torch.bool), 3) == 0.0
    assert math.isnan(voc_average_precision(torch.tensor([True]), 0))


def test_frame_level_map_hand_computed_case():
    ground_truth = [("v1", 1.0, LEFT, 1), ("v2", 2.0, RIGHT, 1), ("v1", 1.0, RIGHT, 2)]
    detections = [
        ("v1", 1.0, LEFT, 1, 0.9),  # TP
        ("v1", 1.0, (0.3, 0.0, 0.8, 1.0), 1, 0.8),  # IoU with LEFT 0.25 -> FP
        ("v2", 2.0, RIGHT, 1, 0.7),  # TP
        ("v3", 0.0, LEFT, 2, 0.95),  # frame without ground truth -> FP for class 2
        ("v1", 1.0, RIGHT, 2, 0.5),  # TP for class 2
        ("v1", 1.0, LEFT, 3, 0.99),  # class 3 has no ground truth: ignored
    ]
    mean_ap, per_class = ava_frame_map(ground_truth, detections)
    assert per_class[1] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert per_class[2] == pytest.approx(0.5)  # FP then TP
    assert set(per_class) == {1, 2}
    assert mean_ap == pytest.approx((per_class[1] + per_class[2]) / 2)


def test_matching_rules_duplicates_threshold_and_argmax():
    # IoU exactly 0.5 matches; a second detection of an already matched box is a false positive
    gt = [("v", 0.0, FULL, 1)]
    _, ap = ava_frame_map(gt, [("v", 0.0, LEFT, 1, 0.9), ("v", 0.0, FULL, 1, 0.8)])
    assert ap[1] == pytest.approx(1.0)
    _, ap = ava_frame_map(gt, [("v", 0.0, (0.0, 0.0, 0.49, 1.0), 1, 0.9)])
    assert ap[1] == 0.0
    # AVA takes the highest-IoU ground truth only: once it is matched, the detection is a FP even though a
    # second ground truth would overlap enough
    gt2 = [("v", 0.0, (0.0, 0.0, 0.6, 1.0), 1), ("v", 0.0, (0.0, 0.0, 0.5, 1.0), 1)]
    dets = [("v", 0.0, (0.0, 0.0, 0.6, 1.0), 1, 0.9), ("v", 0.0, (0.0, 0.0, 0.58, 1.0), 1, 0.8)]
    _, ap = ava_frame_map(gt2, dets)
    assert ap[1] == pytest.approx(0.5)  # TP, FP -> recall 1/2 at precision 1
    # timestamps read back from csv text match their float keys
    _, ap = ava_frame_map([("v", 0.125, FULL, 1)], [("v", float("0.125"), FULL, 1, 1.0)])
    assert ap[1] == 1.0


def test_class_without_detections_scores_zero_and_empty_gt_is_an_error():
    mean_ap, per_class = ava_frame_map([("v", 0.0, FULL, 1), ("v", 0.0, FULL, 2)], [("v", 0.0, FULL, 1, 0.3)])
    assert per_class == {1: 1.0, 2: 0.0} and mean_ap == 0.5
    with pytest.raises(ValueError, match="ground-truth"):
        ava_frame_map([], [])
