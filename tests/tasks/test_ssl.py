"""SSL pre-training learns features a linear probe separates better than the same backbone at random init."""
import pytest
import torch

from pyvideo.tasks.moco import MoCoV2
from pyvideo.tasks.ssl import SSL_METHODS, TwoViews, linear_probe, make_ssl_model, pretrain_ssl

from .tiny import DictDataset, TinyVideoNet, motion_tensors

CROP = 16


def view_transform(video):
    """Random crop, random per-channel gain and channel order: appearance changes, motion stays."""
    y, x = (int(v) for v in torch.randint(0, video.shape[-1] - CROP + 1, (2,)))
    gain = torch.empty(3, 1, 1, 1).uniform_(0.6, 1.4)
    return (video[:, :, y : y + CROP, x : x + CROP] * gain)[torch.randperm(3)]


class UnlabeledViews(torch.utils.data.Dataset):
    def __init__(self, videos):
        self.videos, self.views = videos, TwoViews(view_transform)

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return self.views({"video": self.videos[i]})


def centre(videos):
    offset = (videos.shape[-1] - CROP) // 2
    return videos[..., offset : offset + CROP, offset : offset + CROP]


def backbone():
    torch.manual_seed(0)
    return TinyVideoNet(width=16).features


@pytest.mark.parametrize("method", SSL_METHODS)
def test_pretraining_beats_random_init_backbone(method):
    videos, labels = motion_tensors(num_classes=2, per_class=40, frames=6, size=20)
    train, val = DictDataset(centre(videos[::2]), labels[::2]), DictDataset(centre(videos[1::2]), labels[1::2])
    random_init = linear_probe(backbone(), train, val, num_classes=2)
    net = backbone()
    result = pretrain_ssl(net, UnlabeledViews(videos[::2]), method=method, feature_dim=16, projection_dim=16,
                          hidden_dim=32, queue_size=64, epochs=6, batch_size=8, optimizer="adamw", lr=1e-3,
                          weight_decay=0.0, progress=False, mmt=0.9)
    losses = [row["loss"] for row in result.history]
    if method != "moco_v2":  # MoCo's loss rises while the queue fills with ever harder negatives
        assert sum(losses[-5:]) < sum(losses[:5])
    probe = linear_probe(net, train, val, num_classes=2)
    assert probe["val_top1"] > random_init["val_top1"] and probe["val_top1"] >= 0.75, (probe, random_init)


def test_moco_queue_holds_the_latest_keys():
    torch.manual_seed(0)
    moco = MoCoV2(torch.nn.Flatten(), torch.nn.Linear(12, 4), feature_dim=4, queue_size=5, mmt=0.5)
    x = torch.randn(3, 12)
    moco(x, x)
    moco(x, x)
    assert int(moco.queue_ptr) == 6 % 5
    keys = torch.nn.functional.normalize(moco.encoder_mmt(x), dim=1)
    assert torch.allclose(moco.queue[[3, 4, 0]], keys, atol=1e-6)  # the second batch wrapped around


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="method must be one of"):
        make_ssl_model("swav", torch.nn.Identity(), 4)
