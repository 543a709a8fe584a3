"""The training tasks on a CUDA GPU: self-supervised wrappers (MoCo's queue included), the shared ``fit`` loop with
mixed precision, checkpoints and precise BN, detection, multi-view evaluation, linear probing, metrics and losses.

Same conventions as tests/models/test_gpu.py (whose helpers and TF32 fixture this file uses): skipped without a
GPU, ``PYVIDEO_TEST_DEVICE=cpu`` runs the bodies on the CPU to check the tests themselves.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.models.test_gpu import (  # noqa: F401  (full_fp32_matmuls is an autouse fixture)
    DEVICE,
    assert_close_scaled,
    assert_on_device,
    check_eval_matches_cpu,
    full_fp32_matmuls,
    requires_device,
)
from tests.tasks.tiny import DictDataset, TinyVideoNet


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class _Backbone(nn.Module):
    """conv-BN-ReLU, global pool: B x 3 x T x H x W -> B x 8."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1, bias=False), nn.BatchNorm3d(8), nn.ReLU(),
                                 nn.AdaptiveAvgPool3d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x)


class _TwoViewDataset(torch.utils.data.Dataset):
    def __init__(self, size=8):
        self.views = _randn(size, 2, 3, 2, 8, 8, seed=1)

    def __len__(self):
        return len(self.views)

    def __getitem__(self, i):
        return {"video1": self.views[i, 0], "video2": self.views[i, 1]}


def _fit_options(**overrides):
    return {"epochs": 1, "batch_size": 4, "lr": 0.05, "precision": "fp32", "progress": False, "device": DEVICE,
            **overrides}


# ---------------------------------------------------------------- MoCo v2


@requires_device
def test_moco_loss_matches_cpu_in_eval_mode():
    from pyvideo.tasks.ssl import make_ssl_model

    torch.manual_seed(0)
    model = make_ssl_model("moco_v2", _Backbone(), 8, projection_dim=4, hidden_dim=16, queue_size=6)
    queue = model.queue.clone()
    check_eval_matches_cpu(model, (_randn(4, 3, 2, 8, 8, seed=2), _randn(4, 3, 2, 8, 8, seed=3)),
                           loss_of=lambda loss: loss)
    assert torch.equal(model.queue, queue)  # eval mode leaves the queue alone


@requires_device
def test_moco_queue_and_momentum_update_on_device():
    from pyvideo.tasks.moco import MoCoV2
    from pyvideo.tasks.ssl import projection_mlp

    torch.manual_seed(0)
    model = MoCoV2(_Backbone(), projection_mlp(8, 16, 4), 4, queue_size=6, mmt=0.5).to(DEVICE).train()
    queue = model.queue.clone()
    # two batches of 4 into a queue of 6: rows 0-3, then 4, 5 and (wrapping) 0, 1; the pointer ends at 2
    for step, (rows, pointer) in enumerate((([0, 1, 2, 3], 4), ([4, 5, 0, 1], 2))):
        x1, x2 = _randn(4, 3, 2, 8, 8, seed=10 + step).to(DEVICE), _randn(4, 3, 2, 8, 8, seed=20 + step).to(DEVICE)
        online = [p.detach().clone() for p in model.encoder.parameters()]
        momentum = [p.detach().clone() for p in model.encoder_mmt.parameters()]
        loss = model(x1, x2)
        assert_on_device(loss, "loss")
        loss.backward()
        for p, m, o in zip(model.encoder_mmt.parameters(), momentum, online):
            assert p.grad is None
            torch.testing.assert_close(p, 0.5 * m + 0.5 * o)
        with torch.no_grad():  # the keys again: same weights and batch (BN uses the batch's statistics)
            keys = F.normalize(model.encoder_mmt(x2), dim=1)
        queue[rows] = keys
        assert_on_device(model.queue, "queue")
        assert_on_device(model.queue_ptr, "queue pointer")
        assert int(model.queue_ptr) == pointer
        assert_close_scaled(model.queue, queue, rtol=1e-5, what=f"queue after step {step}")
        for name, p in model.encoder.named_parameters():
            assert_on_device(p.grad, f"gradient of {name}")
            assert torch.isfinite(p.grad).all()
        torch.optim.SGD(model.parameters(), lr=0.1).step()
        model.zero_grad()


# ---------------------------------------------------------------- the fit loop


@requires_device
@pytest.mark.parametrize("method", ["simclr", "byol", "moco_v2"])
def test_ssl_pretraining_on_device(method):
    from pyvideo.tasks.ssl import pretrain_ssl

    backbone = _Backbone()
    results = {}
    for device in ("cpu", DEVICE):
        torch.manual_seed(0)  # the same projection heads (and MoCo queue) on both devices
        results[str(device)] = pretrain_ssl(copy.deepcopy(backbone), _TwoViewDataset(), method=method, feature_dim=8,
                                            projection_dim=4, hidden_dim=16, queue_size=8,
                                            **_fit_options(device=device))
    result = results[str(DEVICE)]
    assert result.steps == 2 and all(torch.isfinite(torch.tensor(row["loss"])) for row in result.history)
    for name, tensor in list(result.model.named_parameters()) + list(result.model.named_buffers()):
        assert_on_device(tensor, name)
    # the first loss is computed before any update: the same weights and batch give the same value
    first, first_cpu = result.history[0]["loss"], results["cpu"].history[0]["loss"]
    assert abs(first - first_cpu) <= 1e-4 * abs(first_cpu), (first, first_cpu)


def _classification_data(n=8, seed=0):
    return DictDataset(_randn(n, 3, 4, 12, 12, seed=seed), torch.arange(n) % 3)


@requires_device
@pytest.mark.parametrize("precision", ["auto", "bf16"])
def test_train_classifier_mixed_precision_on_device(precision):
    # "auto" is fp16 autocast with a GradScaler on CUDA (fp32 on the CPU)
    from pyvideo.tasks.classification import train_classifier

    torch.manual_seed(0)
    model = TinyVideoNet(num_classes=3)
    result = train_classifier(model, _classification_data(), val_dataset=_classification_data(seed=1),
                              eval_batch_size=4, **_fit_options(precision=precision, epochs=2))
    losses = [row["loss"] for row in result.history if "loss" in row]
    assert len(losses) == 4 and all(loss == loss and abs(loss) < 1e3 for loss in losses)
    accuracies = [row["val_top1"] for row in result.history if "val_top1" in row]
    assert len(accuracies) == 2 and all(0.0 <= a <= 1.0 for a in accuracies)
    for name, p in model.named_parameters():
        assert_on_device(p, name)
        assert p.dtype == torch.float32  # autocast never changes the stored weights


@requires_device
def test_checkpoint_resume_on_device(tmp_path):
    from pyvideo.tasks.classification import train_classifier

    torch.manual_seed(0)
    initial = TinyVideoNet(num_classes=3, dropout=0.0)
    # SGD, not Adam: its update is linear in the gradient, so the run-to-run noise of cuDNN's backward stays tiny
    options = _fit_options(epochs=2, lr=0.05, checkpoint_dir=str(tmp_path))
    straight = train_classifier(copy.deepcopy(initial), _classification_data(), **{**options, "checkpoint_dir": None})
    resumed_model = copy.deepcopy(initial)
    first = train_classifier(resumed_model, _classification_data(), **options, max_steps=3)
    assert first.steps == 3 and first.checkpoint.endswith("checkpoint_00000003.pt")
    fresh = copy.deepcopy(initial)
    rest = train_classifier(fresh, _classification_data(), **options, resume=True)
    assert rest.steps == 4
    # the last step needs the restored momentum buffers on the parameters' device, and matches the straight run
    for name, p in fresh.named_parameters():
        assert_on_device(p, name)
    for (name, p), q in zip(fresh.named_parameters(), straight.model.parameters()):
        assert_close_scaled(p, q, rtol=1e-4, what=f"resumed {name}")


@requires_device
def test_precise_bn_on_device():
    from pyvideo.tasks.precise_bn import update_bn_stats

    bn = nn.BatchNorm3d(3).to(DEVICE)
    batches = [_randn(2, 3, 2, 4, 4, seed=s) * (s + 1) + s for s in range(3)]
    used = update_bn_stats(bn, (b.to(DEVICE) for b in batches), num_batches=3)
    assert used == 3
    means = torch.stack([b.mean(dim=(0, 2, 3, 4)) for b in batches])
    variances = torch.stack([b.transpose(0, 1).reshape(3, -1).var(dim=1) for b in batches])  # unbiased, as BN
    assert_on_device(bn.running_mean, "running_mean")
    assert_close_scaled(bn.running_mean, means.mean(0), rtol=1e-5)
    assert_close_scaled(bn.running_var, variances.mean(0), rtol=1e-5)


# ---------------------------------------------------------------- detection


class _BoxDataset(torch.utils.data.Dataset):
    """In-memory AVA-style key frames: 2-frame 32x32 clips with one or two actor boxes, 3 actions."""

    def __init__(self, size=4):
        self.videos = _randn(size, 3, 2, 32, 32, seed=5)
        self.boxes = [torch.tensor([[2.0, 2.0, 20.0, 30.0]]),
                      torch.tensor([[4.0, 0.0, 31.0, 16.0], [0.0, 8.0, 16.0, 24.0]])]

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        boxes = self.boxes[i % 2]
        labels = torch.zeros(len(boxes), 3)
        labels[torch.arange(len(boxes)), torch.arange(len(boxes)) + i % 2] = 1.0
        return {"video": self.videos[i], "boxes": boxes, "labels": labels, "video_id": f"v{i}", "timestamp": 1.0}


@requires_device
def test_detector_training_and_evaluation_on_device():
    from pyvideo.models.hub import slow_r50_detection
    from pyvideo.tasks.detection import evaluate_detector, train_detector

    torch.manual_seed(0)
    model = slow_r50_detection(model_num_class=3, stem_dim_out=8, head_pool_kernel_size=(2, 1, 1))
    result = train_detector(model, _BoxDataset(), **_fit_options(batch_size=2, precise_bn_batches=1))
    assert result.steps == 2 and all(row["loss"] == row["loss"] for row in result.history if "loss" in row)
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        assert_on_device(tensor, name)
    metrics = evaluate_detector(model, _BoxDataset(), batch_size=2, device=DEVICE)
    assert 0.0 <= metrics["mAP"] <= 1.0 and sorted(metrics["per_class_AP"]) == [1, 2, 3]


# ---------------------------------------------------------------- evaluation


def test_multiview_normalisation_follows_the_clips_device():
    # the meta device rejects CPU operands as CUDA does, so this runs anywhere
    from pyvideo.tasks.evaluation import _normalise

    clips = torch.full((2, 3, 1, 2, 2), 127.5)
    expected = (0.5 - torch.tensor([0.4, 0.5, 0.6])) / torch.tensor([0.2, 0.25, 0.5])
    assert torch.allclose(_normalise(clips, (0.4, 0.5, 0.6), (0.2, 0.25, 0.5))[0, :, 0, 0, 0], expected)
    on_meta = _normalise(clips.to("meta"), (0.4, 0.5, 0.6), (0.2, 0.25, 0.5))
    assert on_meta.is_meta and on_meta.shape == clips.shape


@requires_device
@pytest.mark.parametrize("videos_on_device", [False, True])
def test_evaluate_multiview_on_device(videos_on_device):
    from pyvideo.tasks.evaluation import evaluate_multiview

    torch.manual_seed(0)
    model = TinyVideoNet(num_classes=3).eval()
    videos = [(_randn(3, 6, 12, 16, seed=s).abs() * 80, s % 3) for s in range(3)]
    options = dict(num_frames=4, crop_size=8, num_temporal_clips=2, num_spatial_crops=3, views_per_batch=4)
    expected = evaluate_multiview(copy.deepcopy(model), videos, **options)
    samples = [(v.to(DEVICE) if videos_on_device else v, t) for v, t in videos]
    result = evaluate_multiview(model, samples, device=DEVICE, **options)
    assert_close_scaled(result.scores, expected.scores, rtol=1e-4, what="multiview scores")
    assert torch.equal(result.confusion, expected.confusion)


@requires_device
def test_linear_probe_on_device():
    from pyvideo.tasks.ssl import extract_features, linear_probe

    torch.manual_seed(0)
    backbone = _Backbone()
    train, val = _classification_data(12, seed=0), _classification_data(6, seed=1)
    expected, labels = extract_features(copy.deepcopy(backbone), train, batch_size=4)
    features, device_labels = extract_features(copy.deepcopy(backbone), train, batch_size=4, device=DEVICE)
    assert not features.is_cuda and torch.equal(device_labels, labels)  # returned on the CPU for the probe
    assert_close_scaled(features, expected, rtol=1e-4, what="features")
    metrics = linear_probe(backbone, train, val, num_classes=3, epochs=20, device=DEVICE)
    assert 0.0 <= metrics["val_top1"] <= 1.0 and metrics["train_top1"] > 1 / 3  # 12 samples in 8-d: separable


# ---------------------------------------------------------------- metrics and losses on device tensors


@requires_device
def test_metrics_accept_device_tensors():
    from pyvideo.tasks.ava_map import voc_average_precision
    from pyvideo.tasks.metrics import average_precision, confusion_matrix, mean_average_precision, topk_accuracy

    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    labels = torch.tensor([0, 2, 2, 1])
    multi_hot = F.one_hot(labels, 3)
    on = lambda t: t.to(DEVICE)  # noqa: E731
    assert topk_accuracy(on(scores), on(labels), ks=(1, 2)) == topk_accuracy(scores, labels, ks=(1, 2))
    assert torch.equal(confusion_matrix(on(scores.argmax(1)), on(labels), 3).cpu(),
                       confusion_matrix(scores.argmax(1), labels, 3))
    # class 2 by hand: scores 0.0, 0.3, 0.4, 0.1 with positives at rows 1 and 2 rank them first: AP = 1
    assert average_precision(on(scores[:, 2]), on(multi_hot[:, 2])) == 1.0
    assert mean_average_precision(on(scores), on(multi_hot)) == pytest.approx(mean_average_precision(scores, multi_hot))
    # hits T, F, T of 2 ground-truth boxes: precision envelope 1 then 2/3 -> AP = 0.5 * 1 + 0.5 * 2/3
    hits = torch.tensor([True, False, True])
    assert voc_average_precision(on(hits), 2) == pytest.approx(0.5 + 1 / 3)


@requires_device
def test_soft_target_cross_entropy_on_device():
    from pyvideo.losses import SoftTargetCrossEntropyLoss

    logits = _randn(4, 5, seed=7)
    for target in (torch.tensor([0, 4, 1, 2]), torch.softmax(_randn(4, 5, seed=8), dim=1)):
        for loss_fn in (SoftTargetCrossEntropyLoss(), SoftTargetCrossEntropyLoss(ignore_index=1, reduction="none")):
            expected_input = logits.clone().requires_grad_()  # fresh leaves each time (.to() may return logits)
            expected = loss_fn(expected_input, target)
            device_input = logits.to(DEVICE, copy=True).requires_grad_()
            actual = loss_fn(device_input, target.to(DEVICE))
            assert_on_device(actual, "loss")
            assert_close_scaled(actual, expected, rtol=1e-5)
            actual.sum().backward()
            expected.sum().backward()
            assert_on_device(device_input.grad, "input gradient")
            assert_close_scaled(device_input.grad, expected_input.grad, rtol=1e-5, what="input gradient")
