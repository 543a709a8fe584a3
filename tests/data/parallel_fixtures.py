"""Datasets over FakeVideos whose complete (video, clip) set is known, for worker/rank split tests."""
import math

import torch

from pyvideo.data import make_clip_sampler
from pyvideo.data.clip_dataset import LabeledVideoClipDataset
from pyvideo.data.labeled_video_dataset import LabeledVideoDataset

from .fake_video import FakeVideoPathHandler

DURATIONS = [3, 5, 1, 4, 2.5, 6, 2]  # 1 s uniform clips: floor(duration) clips each, 23 in all
PATHS = [f"/videos/clip {i}.mp4" for i in range(len(DURATIONS))]  # paths with spaces
EXPECTED_CLIPS = sorted((v, k) for v, d in enumerate(DURATIONS) for k in range(max(1, math.floor(d))))


def handler():
    return FakeVideoPathHandler(dict(zip(PATHS, DURATIONS)))


def iterable_dataset(video_sampler=torch.utils.data.RandomSampler, sampler_type="uniform"):
    dataset = LabeledVideoDataset(
        [(p, i) for i, p in enumerate(PATHS)], make_clip_sampler(sampler_type, 1), video_sampler, decode_audio=False
    )
    dataset.video_path_handler = handler()
    return dataset


def map_dataset():
    dataset = LabeledVideoClipDataset(
        [(p, i) for i, p in enumerate(PATHS)], make_clip_sampler("uniform", 1), decode_audio=False,
        video_durations=DURATIONS, video_path_handler=handler(),
    )
    return dataset


def produced_clips(loader):
    """(video_index, clip_index) of every sample delivered by ``loader``, in delivery order."""
    clips = []
    for batch in loader:
        clips += list(zip(batch["video_index"].tolist(), batch["clip_index"].tolist()))
    return clips
