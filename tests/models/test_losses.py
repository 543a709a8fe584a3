import math

import pytest
import torch

from pyvideo.losses import SoftTargetCrossEntropyLoss


def _log_softmax_row(row):
    m = max(row)
    log_sum = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - log_sum for v in row]


def test_hard_targets_equal_plain_cross_entropy_by_hand():
    logits = [[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]
    labels = [0, 2]
    expected = -(_log_softmax_row(logits[0])[0] + _log_softmax_row(logits[1])[2]) / 2
    loss = SoftTargetCrossEntropyLoss()(torch.tensor(logits), torch.tensor(labels))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_soft_targets_are_normalised_per_row():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    logp = _log_softmax_row([1.0, 2.0, 3.0])
    # unnormalised (2, 0, 2) -> (0.5, 0, 0.5)
    expected = -(0.5 * logp[0] + 0.5 * logp[2])
    loss = SoftTargetCrossEntropyLoss()(logits, torch.tensor([[2.0, 0.0, 2.0]]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    raw = SoftTargetCrossEntropyLoss(normalize_targets=False)(logits, torch.tensor([[2.0, 0.0, 2.0]]))
    assert raw.item() == pytest.approx(-(2 * logp[0] + 2 * logp[2]), rel=1e-5)


def test_ignore_index_in_class_range_drops_samples_soft_and_hard():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 1.0, 0.0]])
    keep_only_first = -_log_softmax_row([2.0, 0.0, -1.0])[0]
    loss_fn = SoftTargetCrossEntropyLoss(ignore_index=2)
    # hard: samples 1 and 2 target the ignored class -> mean over the single remaining sample
    assert loss_fn(logits, torch.tensor([0, 2, 2])).item() == pytest.approx(keep_only_first, rel=1e-6)
    soft = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.3, 0.7], [0.2, 0.0, 0.8]])
    assert loss_fn(logits, soft).item() == pytest.approx(keep_only_first, rel=1e-6)
    per_sample = SoftTargetCrossEntropyLoss(ignore_index=2, reduction="none")(logits, soft)
    assert per_sample[1].item() == 0 and per_sample[2].item() == 0


def test_default_ignore_index_minus_100_for_hard_targets():
    logits = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    loss = SoftTargetCrossEntropyLoss()(logits, torch.tensor([1, -100]))
    assert loss.item() == pytest.approx(-_log_softmax_row([2.0, 0.0])[1], rel=1e-6)
    all_ignored = SoftTargetCrossEntropyLoss()(logits, torch.tensor([-100, -100]))
    assert all_ignored.item() == 0


def test_gradient_matches_softmax_minus_target():
    logits = torch.tensor([[0.3, -0.2, 1.1]], requires_grad=True)
    SoftTargetCrossEntropyLoss()(logits, torch.tensor([1])).backward()
    expected = torch.softmax(logits.detach(), -1) - torch.tensor([[0.0, 1.0, 0.0]])
    torch.testing.assert_close(logits.grad, expected)


def test_bad_arguments():
    with pytest.raises(NotImplementedError):
        SoftTargetCrossEntropyLoss(reduction="sum")
    loss_fn = SoftTargetCrossEntropyLoss()
    with pytest.raises(ValueError, match="same batch size"):
        loss_fn(torch.zeros(2, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="class indices"):
        loss_fn(torch.zeros(2, 3), torch.tensor([0, 3]))
