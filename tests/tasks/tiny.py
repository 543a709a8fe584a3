"""Small stand-ins shared by the task tests: a tiny 3D CNN and tiny synthetic motion datasets."""
import numpy as np
import torch
from torch import nn

from pyvideo.synth import MOTIONS, render_action_video, synthesize_action_dataset
from pyvideo.tasks.clip_dataset import ClipDataset
from pyvideo.tasks.residual_frames import subtract_temporal_mean


class TinyVideoNet(nn.Module):
    """conv-BN-ReLU x2 (the second strided in space), global pool, dropout, linear."""

    def __init__(self, num_classes: int = 2, width: int = 8, dropout: float = 0.2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, width, 3, padding=1, bias=False), nn.BatchNorm3d(width), nn.ReLU(),
            nn.Conv3d(width, width, 3, stride=(1, 2, 2), padding=1, bias=False), nn.BatchNorm3d(width), nn.ReLU(),
            nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.proj(self.dropout(self.features(x)))


def motion_tensors(num_classes=2, per_class=16, frames=8, size=24, seed=0, residual=True):
    """Rendered (not encoded) motion clips: float N,3,T,H,W normalised (residual frames by default), labels N."""
    videos, labels = [], []
    for label in range(num_classes):
        for i in range(per_class):
            clip, _ = render_action_video(MOTIONS[label], np.random.default_rng([seed, label, i]), frames, size, size)
            videos.append(torch.from_numpy(clip).permute(3, 0, 1, 2).float() / 127.5 - 1)
            labels.append(label)
    videos = torch.stack(videos)
    return subtract_temporal_mean(videos) if residual else videos, torch.tensor(labels)


class DictDataset(torch.utils.data.Dataset):
    def __init__(self, videos, labels):
        self.videos, self.labels = videos, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"video": self.videos[i], "label": self.labels[i], "video_index": i}


def random_crop_transform(size):
    """Dict transform: random spatial crop (torch RNG) and scaling to [-1, 1]."""
    def transform(sample):
        video = sample["video"]
        y = int(torch.randint(0, video.shape[2] - size + 1, (1,)))
        x = int(torch.randint(0, video.shape[3] - size + 1, (1,)))
        return {**sample, "video": subtract_temporal_mean(video[:, :, y : y + size, x : x + size] / 127.5 - 1)}
    return transform


def synth_clip_dataset(root, num_classes=2, videos_per_class=6, size=32, crop=28, frames=8):
    files = synthesize_action_dataset(root, num_classes=num_classes, videos_per_class=videos_per_class,
                                      num_frames=frames, height=size, width=size, seed=3)
    return ClipDataset(files["train"], video_path_prefix=str(root), transform=random_crop_transform(crop))
