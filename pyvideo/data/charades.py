"""Charades: action recognition on frame folders with per-frame multi-label annotations."""
from typing import Any, Callable, Dict, Optional

import torch

from .clip_sampling import ClipSampler
from .frame_lists import FrameListVideoDataset, read_frame_list
from .labeled_video_dataset import VideoSamplerArg


class Charades(FrameListVideoDataset):
    """Clips of Charades frame folders.

    Samples hold ``video`` (C,T,H,W), ``label`` (the label list of each frame in the clip),
    ``video_label`` (the union of all frame labels of the video), ``video_name``, ``video_index``,
    ``clip_index``, ``aug_index`` and ``frame_indices``.

    Args:
        data_path: the space-separated frame list (``original_vido_id video_id frame_id path labels``).
        frames_per_clip: when set, each clip keeps this many evenly spaced frames (those
            UniformTemporalSubsample would keep); only their images are read.
    """

    NUM_CLASSES = 157

    def __init__(
        self,
        data_path: str,
        clip_sampler: ClipSampler,
        video_sampler: VideoSamplerArg = torch.utils.data.RandomSampler,
        transform: Optional[Callable[[dict], Any]] = None,
        video_path_prefix: str = "",
        frames_per_clip: Optional[int] = None,
        fps: float = 30.0,
        max_consecutive_failures: Optional[int] = None,
    ) -> None:
        frame_paths, frame_labels = read_frame_list(data_path, prefix=video_path_prefix)
        self._frame_labels = list(frame_labels.values())
        labeled_videos = [
            (paths, {"video_label": sorted({label for labels in frame_labels[name] for label in labels}), "video_name": name})
            for name, paths in frame_paths.items()
        ]
        self._fps = fps
        super().__init__(
            labeled_videos, clip_sampler, video_sampler, transform, decode_audio=False,
            max_consecutive_failures=max_consecutive_failures, frames_per_clip=frames_per_clip,
        )

    def _make_sample(self, video, path, video_index, info, clip_info, loaded) -> Dict[str, Any]:
        sample = super()._make_sample(video, path, video_index, info, clip_info, loaded)
        sample["frame_indices"] = list(loaded["frame_indices"])
        sample["label"] = [self._frame_labels[video_index][i] for i in loaded["frame_indices"]]
        return sample
