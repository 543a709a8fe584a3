"""Training and evaluation tasks in plain PyTorch (PyTorchVideo has no counterpart; see docs/notes/tasks.md).

    fit                      the shared training loop (optimizer, schedule, AMP, accumulation, DDP, resume, precise BN)
    train_classifier         supervised classification on top of ``fit``
    evaluate_multiview       N temporal clips x K spatial crops, top-1/top-5 or mAP, confusion matrix PNG
    pretrain_ssl / linear_probe    SimCLR, BYOL, MoCo v2 pre-training and its evaluation
    train_detector / evaluate_detector    AVA-style actor detection with frame-level mAP at IoU 0.5
    ClipDataset              labelled videos from a "path label" csv, decoded once
"""
from .ava_map import ava_frame_map
from .classification import train_classifier
from .clip_dataset import ClipDataset
from .detection import AvaBoxDataset, evaluate_detector, train_detector
from .evaluation import evaluate_multiview
from .metrics import confusion_matrix, mean_average_precision, topk_accuracy
from .ssl import linear_probe, pretrain_ssl
from .trainer import TrainResult, fit

__all__ = [
    "AvaBoxDataset", "ClipDataset", "TrainResult", "ava_frame_map", "confusion_matrix", "evaluate_detector",
    "evaluate_multiview", "fit", "linear_probe", "mean_average_precision", "pretrain_ssl", "topk_accuracy",
    "train_classifier", "train_detector",
]
