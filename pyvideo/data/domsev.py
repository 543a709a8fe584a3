"""DoMSEV: egocentric videos with per-segment environment / activity / attention labels."""
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from .dataset_manifest_utils import ImageDataset, ImageFrameInfo, VideoClipInfo, VideoDataset, VideoDatasetType
from .utils import DataclassFieldCaster, load_dataclass_dict_from_csv

USER_ENVIRONMENT_MAP = {0: "none", 1: "indoor", 2: "nature", 3: "crowded_environment", 4: "urban"}

USER_ACTIVITY_MAP = {
    0: "none", 1: "walking", 2: "running", 3: "standing", 4: "biking", 5: "driving", 6: "playing",
    7: "cooking", 8: "eating", 9: "observing", 10: "in_conversation", 11: "browsing", 12: "shopping",
}

USER_ATTENTION_MAP = {0: "none", 1: "paying_attention", 2: "interacting"}


class LabelType(Enum):
    Environment = 1
    Activity = 2
    UserAttention = 3


LABEL_TYPE_2_MAP = {
    LabelType.Environment: USER_ENVIRONMENT_MAP,
    LabelType.Activity: USER_ACTIVITY_MAP,
    LabelType.UserAttention: USER_ATTENTION_MAP,
}


@dataclass
class LabelData(DataclassFieldCaster):
    """A label holding over [start_time, stop_time] seconds / [start_frame, stop_frame] (inclusive)."""

    video_id: str
    start_time: float
    stop_time: float
    start_frame: int
    stop_frame: int
    label_id: int
    label_name: str


def _seconds_to_frame_index(time_in_seconds: float, fps: int, zero_indexed: Optional[bool] = True) -> int:
    """The frame shown at ``time_in_seconds`` (rounding down); 1-based when not ``zero_indexed``."""
    frame_index = math.floor(time_in_seconds * fps)
    return frame_index if zero_indexed else frame_index + 1


def _get_overlap_for_time_range_pair(
    t1_start: float, t1_stop: float, t2_start: float, t2_stop: float
) -> Optional[Tuple[float, float]]:
    """The common part of two closed time ranges, or None when they do not meet."""
    if t1_start <= t2_stop and t2_start <= t1_stop:
        return max(t1_start, t2_start), min(t1_stop, t2_stop)
    return None


def _load_image_from_path(path: str) -> torch.Tensor:
    """One image as a C,H,W float tensor (0-255), decoded by pyvideo's image reader."""
    from .frame_video import load_images

    return load_images([path], multithreaded=False)[0].permute(2, 0, 1).to(torch.float32)


def _none_to_empty_tensor(item: Dict[str, Any]) -> Dict[str, Any]:
    return {key: torch.tensor([]) if value is None else value for key, value in item.items()}


class DomsevFrameDataset(torch.utils.data.Dataset):
    """Single frames with the label of the segment containing them: ``{frame_id, image, label}``.

    ``image`` is a C,H,W float tensor. Frames are in a fixed (frame id) order; shuffle with the DataLoader.
    """

    def __init__(
        self,
        video_data_manifest_file_path: str,
        video_info_file_path: str,
        labels_file_path: str,
        transform: Optional[Callable[[Dict[str, Any]], Any]] = None,
        multithreaded_io: bool = False,
    ) -> None:
        frames = ImageDataset._load_images(video_data_manifest_file_path, video_info_file_path, multithreaded_io)
        video_labels = load_dataclass_dict_from_csv(labels_file_path, LabelData, "video_id", list_per_key=True)
        self._labels_per_frame = DomsevFrameDataset._assign_labels_to_frames(frames, video_labels)
        self._frames: List[ImageFrameInfo] = [frames[k] for k in sorted(frames) if k in self._labels_per_frame]
        self._user_transform = transform

    @staticmethod
    def _assign_labels_to_frames(
        frames_dict: Dict[str, ImageFrameInfo], video_labels: Dict[str, List[LabelData]]
    ) -> Dict[str, int]:
        """Frame id -> label id of the (last listed) segment whose frame range contains the frame."""
        labels_per_frame = {}
        for frame_id, image_info in frames_dict.items():
            for label in video_labels.get(image_info.video_id, []):
                if label.start_frame <= image_info.frame_number <= label.stop_frame:
                    labels_per_frame[frame_id] = label.label_id
        return labels_per_frame

    def __getitem__(self, index: int) -> Dict[str, Any]:
        frame = self._frames[index]
        item = _none_to_empty_tensor(
            {"frame_id": frame.frame_id, "image": _load_image_from_path(frame.frame_file_path),
             "label": self._labels_per_frame[frame.frame_id]}
        )
        return self._user_transform(item) if self._user_transform else item

    def __len__(self) -> int:
        return len(self._frames)


class DomsevVideoDataset(torch.utils.data.Dataset):
    """Clips given by ``clip_sampler(videos, labels) -> List[VideoClipInfo]``; item i holds ``video_id``,
    the decoded clip (``video``, ``audio``), ``labels`` (one label id per frame at
    ``frames_per_second``), ``start_time`` and ``stop_time``."""

    def __init__(
        self,
        video_data_manifest_file_path: str,
        video_info_file_path: str,
        labels_file_path: str,
        clip_sampler: Callable[[Dict[str, Any], Dict[str, List[LabelData]]], List[VideoClipInfo]],
        dataset_type: VideoDatasetType = VideoDatasetType.Frame,
        frames_per_second: int = 1,
        transform: Optional[Callable[[Dict[str, Any]], Any]] = None,
        frame_filter: Optional[Callable[[List[int]], List[int]]] = None,
        multithreaded_io: bool = False,
    ) -> None:
        self._videos = VideoDataset._load_videos(
            video_data_manifest_file_path, video_info_file_path, multithreaded_io, dataset_type
        )
        self._labels_per_video = load_dataclass_dict_from_csv(labels_file_path, LabelData, "video_id", list_per_key=True)
        self._clips: List[VideoClipInfo] = clip_sampler(self._videos, self._labels_per_video)
        self._frames_per_second = frames_per_second
        self._user_transform = transform
        self._frame_filter = frame_filter

    def _labels_in_clip(self, clip: VideoClipInfo) -> torch.Tensor:
        """One label id per frame of the clip: each overlapping label repeated over its overlap's frames."""
        label_ids = []
        for label in self._labels_per_video.get(clip.video_id, []):
            overlap = _get_overlap_for_time_range_pair(clip.start_time, clip.stop_time, label.start_time, label.stop_time)
            if overlap is not None:
                first = _seconds_to_frame_index(overlap[0], self._frames_per_second)
                last = _seconds_to_frame_index(overlap[1], self._frames_per_second)
                label_ids += [label.label_id] * (last - first)
        return torch.tensor(label_ids, dtype=torch.int64)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        clip = self._clips[index]
        video = self._videos[clip.video_id]
        decoded = (
            video.get_clip(clip.start_time, clip.stop_time, self._frame_filter)
            if self._frame_filter is not None
            else video.get_clip(clip.start_time, clip.stop_time)
        )
        item = _none_to_empty_tensor(
            {"video_id": clip.video_id, **decoded, "labels": self._labels_in_clip(clip),
             "start_time": clip.start_time, "stop_time": clip.stop_time}
        )
        return self._user_transform(item) if self._user_transform else item

    def __len__(self) -> int:
        return len(self._clips)
