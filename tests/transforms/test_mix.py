"""MixUp, CutMix and MixVideo: mixed pixels and mixed labels agree on the same lambda."""
import pytest
import torch

from pyvideo.transforms import CutMix, MixUp, MixVideo


def _zeros_and_ones(shape=(3, 2, 8, 10)):
    """Batch of two: sample 0 all zeros, sample 1 all ones, so a pixel's value says where it came from."""
    return torch.stack([torch.zeros(shape), torch.ones(shape)])


def test_mixup_pixels_and_labels_use_the_beta_draw():
    torch.manual_seed(0)
    expected_lam = torch.distributions.Beta(1.0, 1.0).sample().item()
    video = _zeros_and_ones()
    torch.manual_seed(0)
    mixed, labels = MixUp(alpha=1.0, num_classes=3)(video, torch.tensor([0, 1]))
    assert torch.allclose(mixed[0], torch.full_like(mixed[0], 1 - expected_lam))
    assert torch.allclose(mixed[1], torch.full_like(mixed[1], expected_lam))
    lam = expected_lam
    assert torch.allclose(labels, torch.tensor([[lam, 1 - lam, 0.0], [1 - lam, lam, 0.0]]))
    assert torch.equal(video, _zeros_and_ones())  # input untouched


def test_mixup_label_smoothing_rows_sum_to_one():
    torch.manual_seed(1)
    _, labels = MixUp(alpha=0.5, label_smoothing=0.3, num_classes=3)(torch.rand(4, 3, 2, 4, 4),
                                                                       torch.tensor([0, 1, 2, 0]))
    assert torch.allclose(labels.sum(dim=1), torch.ones(4))
    assert labels.min() >= 0.1 - 1e-6  # every class keeps at least the smoothing share 0.3 / 3


def test_mixup_with_audio_uses_the_same_lambda():
    torch.manual_seed(2)
    video, audio = _zeros_and_ones(), _zeros_and_ones((1, 20, 8))
    mixed_video, mixed_audio, labels = MixUp(num_classes=2)(video, torch.tensor([0, 1]), x_audio=audio)
    lam = mixed_video[1, 0, 0, 0, 0].item()
    assert torch.allclose(mixed_audio[1], torch.full_like(mixed_audio[1], lam))
    assert torch.allclose(labels[0], torch.tensor([lam, 1 - lam]))


def test_cutmix_pastes_one_box_and_labels_by_area():
    for seed in range(10):
        torch.manual_seed(seed)
        video = _zeros_and_ones()
        mixed, labels = CutMix(num_classes=2)(video, torch.tensor([0, 1]))
        pasted = mixed[0] == 1  # ones in sample 0 came from sample 1
        frame_mask = pasted[0, 0]
        assert all(torch.equal(pasted[c, t], frame_mask) for c in range(3) for t in range(2))
        rows, cols = frame_mask.any(dim=1).nonzero().flatten(), frame_mask.any(dim=0).nonzero().flatten()
        if rows.numel():
            box = frame_mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert box.all()  # the pasted region is one rectangle
        kept = 1 - frame_mask.float().mean().item()
        assert torch.allclose(labels, torch.tensor([[kept, 1 - kept], [1 - kept, kept]]))
        assert torch.equal(mixed[1] == 0, pasted)  # the same box from sample 0 into sample 1


def test_cutmix_with_audio_and_one_hot_labels():
    torch.manual_seed(3)
    one_hot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    video, audio = _zeros_and_ones(), _zeros_and_ones((1, 20, 8))
    mixed_video, mixed_audio, labels = CutMix(num_classes=2, one_hot=True)(video, one_hot, x_audio=audio)
    assert mixed_audio.shape == audio.shape
    assert torch.allclose(labels.sum(dim=1), torch.ones(2))


@pytest.mark.parametrize("cutmix_prob", [0.0, 1.0])
def test_mix_video_with_audio_returns_video_audio_labels(cutmix_prob):
    torch.manual_seed(4)
    video, audio = _zeros_and_ones(), _zeros_and_ones((1, 20, 8))
    out = MixVideo(cutmix_prob=cutmix_prob, num_classes=2)(video, torch.tensor([0, 1]), x_audio=audio)
    assert len(out) == 3
    mixed_video, mixed_audio, labels = out
    assert mixed_video.shape == video.shape and mixed_audio.shape == audio.shape and labels.shape == (2, 2)
    kept = 1 - mixed_video[0].mean().item()  # sample 0 is zeros: its mean is the share taken from sample 1
    assert torch.allclose(labels[0], torch.tensor([kept, 1 - kept]), atol=1e-6)
    if cutmix_prob == 0.0:  # MixUp: audio mixed with the same lambda
        assert torch.allclose(mixed_audio[0], torch.full_like(mixed_audio[0], 1 - kept))


def test_mix_video_without_audio_and_one_hot_passes_through_to_cutmix():
    torch.manual_seed(5)
    video, labels = MixVideo(cutmix_prob=1.0, num_classes=2, one_hot=True)(
        _zeros_and_ones(), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert video.shape == (2, 3, 2, 8, 10) and labels.shape == (2, 2)


def test_mix_rejects_bad_batches():
    with pytest.raises(ValueError):
        MixUp()(torch.rand(1, 3, 2, 4, 4), torch.tensor([0]))
    with pytest.raises(TypeError):
        CutMix()(torch.zeros(2, 3, 2, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        MixVideo(cutmix_prob=1.5)
