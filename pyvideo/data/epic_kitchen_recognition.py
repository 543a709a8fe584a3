"""Epic-Kitchens action recognition: consecutive fixed-length clips with the actions they overlap."""
from enum import Enum
from typing import Any, Callable, Dict, List, Optional

import torch

from .dataset_manifest_utils import VideoClipInfo, VideoDatasetType
from .epic_kitchen import ActionData, EpicKitchenDataset


class ClipSampling(Enum):
    RandomOffsetUniform = 1


def none_to_empty_tensor(clip: Dict[str, Any]) -> Dict[str, Any]:
    # default_collate cannot batch None (e.g. "audio" of frame videos)
    return {key: torch.tensor([]) if value is None else value for key, value in clip.items()}


class EpicKitchenRecognition(EpicKitchenDataset):
    """Each video is cut into ``seconds_per_clip`` clips after a random offset in [0, seconds_per_clip);
    a clip's ``actions`` are those overlapping it."""

    def __init__(
        self,
        video_info_file_path: str,
        actions_file_path: str,
        video_data_manifest_file_path: str,
        clip_sampling: ClipSampling = ClipSampling.RandomOffsetUniform,
        dataset_type: VideoDatasetType = VideoDatasetType.Frame,
        seconds_per_clip: float = 2.0,
        frames_per_clip: Optional[int] = None,
        transform: Callable[[Dict[str, Any]], Any] = None,
        multithreaded_io: bool = True,
    ):
        super().__init__(
            video_info_file_path=video_info_file_path,
            actions_file_path=actions_file_path,
            clip_sampler=EpicKitchenRecognition._define_clip_structure_generator(seconds_per_clip, clip_sampling),
            video_data_manifest_file_path=video_data_manifest_file_path,
            dataset_type=dataset_type,
            transform=EpicKitchenRecognition._transform_generator(transform),
            frame_filter=(
                EpicKitchenRecognition._frame_filter_generator(frames_per_clip) if frames_per_clip is not None else None
            ),
            multithreaded_io=multithreaded_io,
        )

    @staticmethod
    def _transform_generator(transform: Optional[Callable]) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
        def transform_clip(clip: Dict[str, Any]) -> Dict[str, Any]:
            clip["actions"] = [
                a for a in clip["actions"] if a.start_time <= clip["stop_time"] and a.stop_time >= clip["start_time"]
            ]
            clip = none_to_empty_tensor(clip)
            return transform(clip) if transform else clip

        return transform_clip

    @staticmethod
    def _frame_filter_generator(frames_per_clip: int) -> Callable[[List[int]], List[int]]:
        """Every k-th frame, k = len // frames_per_clip (at least 1)."""

        def frame_filter(frame_indices: List[int]) -> List[int]:
            step = max(1, len(frame_indices) // frames_per_clip)
            return frame_indices[::step]

        return frame_filter

    @staticmethod
    def _define_clip_structure_generator(
        seconds_per_clip: float, clip_sampling: ClipSampling
    ) -> Callable[[Dict[str, Any], Dict[str, List[ActionData]]], List[VideoClipInfo]]:
        if clip_sampling != ClipSampling.RandomOffsetUniform:
            raise NotImplementedError(f"Only {ClipSampling.RandomOffsetUniform} is implemented, not {clip_sampling}.")

        def define_clip_structure(videos: Dict[str, Any], actions: Dict[str, List[ActionData]]) -> List[VideoClipInfo]:
            clips = []
            for video_id, video in videos.items():
                offset = torch.rand(()).item() * seconds_per_clip
                num_clips = int((float(video.duration) - offset) // seconds_per_clip)
                for i in range(num_clips):
                    start_time = i * seconds_per_clip + offset
                    clips.append(VideoClipInfo(video_id, start_time, start_time + seconds_per_clip))
            return clips

        return define_clip_structure
