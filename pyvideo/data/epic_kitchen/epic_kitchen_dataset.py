"""EpicKitchenDataset: a map-style dataset of clips chosen up front by a clip-structure function."""
import ast
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch

from ..dataset_manifest_utils import (
    EncodedVideoInfo,
    VideoDataset,
    VideoDatasetType,
    VideoFrameInfo,
    get_seconds_from_hms_time,
)
from ..utils import DataclassFieldCaster, load_dataclass_dict_from_csv

__all__ = [
    "ActionData", "EncodedVideoInfo", "EpicKitchenClip", "EpicKitchenDataset", "EpicKitchenDatasetType",
    "VideoFrameInfo", "VideoInfo",
]

EpicKitchenDatasetType = VideoDatasetType


@dataclass
class EpicKitchenClip(DataclassFieldCaster):
    video_id: str
    start_time: float
    stop_time: float


@dataclass
class VideoInfo(DataclassFieldCaster):
    """Epic-Kitchens video metadata (its CSV names the id column ``video``)."""

    video: str
    resolution: str
    duration: float
    fps: float

    @property
    def participant_id(self) -> str:
        return self.video[:3]

    @property
    def video_id(self) -> str:
        return self.video


@dataclass
class ActionData(DataclassFieldCaster):
    """One annotated action; ``all_nouns``/``all_noun_classes`` are Python-literal lists in the CSV."""

    participant_id: str
    video_id: str
    narration: str
    start_timestamp: str
    stop_timestamp: str
    start_frame: int
    stop_frame: int
    verb: str
    verb_class: int
    noun: str
    noun_class: int
    all_nouns: list = DataclassFieldCaster.complex_initialized_dataclass_field(ast.literal_eval)
    all_noun_classes: list = DataclassFieldCaster.complex_initialized_dataclass_field(ast.literal_eval)

    @property
    def start_time(self) -> float:
        return get_seconds_from_hms_time(self.start_timestamp)

    @property
    def stop_time(self) -> float:
        return get_seconds_from_hms_time(self.stop_timestamp)


class EpicKitchenDataset(torch.utils.data.Dataset):
    """Clips given by ``clip_sampler(videos, actions) -> List[EpicKitchenClip]``; item i is the dict
    ``{video_id, video, audio, actions, start_time, stop_time}`` (then ``transform``)."""

    def __init__(
        self,
        video_info_file_path: str,
        actions_file_path: str,
        clip_sampler: Callable[[Dict[str, Any], Dict[str, List[ActionData]]], List[EpicKitchenClip]],
        video_data_manifest_file_path: str,
        dataset_type: VideoDatasetType = VideoDatasetType.Frame,
        transform: Optional[Callable[[Dict[str, Any]], Any]] = None,
        frame_filter: Optional[Callable[[List[int]], List[int]]] = None,
        multithreaded_io: bool = True,
    ) -> None:
        for name, value in (
            ("video_info_file_path", video_info_file_path),
            ("actions_file_path", actions_file_path),
            ("video_data_manifest_file_path", video_data_manifest_file_path),
            ("clip_sampler", clip_sampler),
        ):
            if not value:
                raise ValueError(f"EpicKitchenDataset needs {name}")
        self._videos = EpicKitchenDataset._load_videos(
            video_data_manifest_file_path, video_info_file_path, multithreaded_io, dataset_type
        )
        self._actions: Dict[str, List[ActionData]] = load_dataclass_dict_from_csv(
            actions_file_path, ActionData, "video_id", list_per_key=True
        )
        self._clips: List[EpicKitchenClip] = clip_sampler(self._videos, self._actions)
        self._transform = transform
        self._frame_filter = frame_filter

    @staticmethod
    def _load_videos(video_data_manifest_file_path, video_info_file_path, multithreaded_io, dataset_type):
        video_infos = load_dataclass_dict_from_csv(video_info_file_path, VideoInfo, "video_id")
        if dataset_type == VideoDatasetType.Frame:
            return VideoDataset._load_frame_videos(video_data_manifest_file_path, video_infos, multithreaded_io)
        if dataset_type == VideoDatasetType.EncodedVideo:
            return VideoDataset._load_encoded_videos(video_data_manifest_file_path, video_infos)
        raise ValueError(f"unknown dataset_type {dataset_type!r}")

    def __getitem__(self, index: int) -> Dict[str, Any]:
        clip = self._clips[index]
        video = self._videos[clip.video_id]
        decoded = (
            video.get_clip(clip.start_time, clip.stop_time, self._frame_filter)
            if self._frame_filter is not None
            else video.get_clip(clip.start_time, clip.stop_time)
        )
        clip_data = {
            "video_id": clip.video_id,
            **decoded,
            "actions": self._actions.get(clip.video_id, []),
            "start_time": clip.start_time,
            "stop_time": clip.stop_time,
        }
        return self._transform(clip_data) if self._transform else clip_data

    def __len__(self) -> int:
        return len(self._clips)
