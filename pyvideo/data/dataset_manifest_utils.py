"""Manifest dataclasses and loaders shared by manifest-driven datasets (Epic-Kitchens, DoMSEV).

A *video info* CSV gives each video's duration and fps; a *video data manifest* CSV says where its
data is: a frame folder (``VideoFrameInfo``: location, file stem, zero-padded length, frame number
range, extension) or an encoded file (``EncodedVideoInfo``).
"""
import datetime
import os
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Optional, Union

from .utils import DataclassFieldCaster, load_dataclass_dict_from_csv, save_dataclass_objs_to_headered_csv


@dataclass
class EncodedVideoInfo(DataclassFieldCaster):
    """Where an encoded video file is."""

    video_id: str
    file_path: str


@dataclass
class VideoFrameInfo(DataclassFieldCaster):
    """Where the frames of a video are: ``{location}/{frame_file_stem}{zero-padded number}.{file_extension}``,
    the stem plus number being ``frame_string_length`` characters long."""

    video_id: str
    location: str
    frame_file_stem: str
    frame_string_length: int
    min_frame_number: int
    max_frame_number: int
    file_extension: str


@dataclass
class VideoInfo(DataclassFieldCaster):
    """Video-level metadata."""

    video_id: str
    resolution: str
    duration: float
    fps: float


@dataclass
class VideoClipInfo(DataclassFieldCaster):
    video_id: str
    start_time: float
    stop_time: float


@dataclass
class ImageFrameInfo(DataclassFieldCaster):
    """One frame image of a video and its number."""

    video_id: str
    frame_id: str
    frame_number: int
    frame_file_path: str


class VideoDatasetType(Enum):
    Frame = 1
    EncodedVideo = 2


def frame_file_path(frame_info: VideoFrameInfo, frame_number: int) -> str:
    """Path of frame ``frame_number`` (a number in [min_frame_number, max_frame_number])."""
    number = str(frame_number)
    padding = "0" * (frame_info.frame_string_length - len(number) - len(frame_info.frame_file_stem))
    return f"{frame_info.location}/{frame_info.frame_file_stem}{padding}{number}.{frame_info.file_extension}"


class ImageDataset:
    @staticmethod
    def _load_images(
        frame_manifest_file_path: Optional[str], video_info_file_path: str, multithreaded_io: bool
    ) -> Dict[str, ImageFrameInfo]:
        """Every frame of every complete video, keyed by frame id (the file name without extension)."""
        video_infos: Dict[str, VideoInfo] = load_dataclass_dict_from_csv(video_info_file_path, VideoInfo, "video_id")
        video_frames: Dict[str, VideoFrameInfo] = load_dataclass_dict_from_csv(
            frame_manifest_file_path, VideoFrameInfo, "video_id"
        )
        VideoDataset._remove_video_info_missing_or_incomplete_videos(video_frames, video_infos)
        image_infos = {}
        for video_id in video_infos:
            frame_info = video_frames[video_id]
            paths = VideoDataset._frame_number_to_filepaths(video_id, video_frames, video_infos)
            for frame_number, path in zip(range(frame_info.min_frame_number, frame_info.max_frame_number + 1), paths):
                frame_id = os.path.splitext(os.path.basename(path))[0]
                image_infos[frame_id] = ImageFrameInfo(video_id, frame_id, frame_number, path)
        return image_infos


class VideoDataset:
    @staticmethod
    def _load_videos(
        video_data_manifest_file_path: Optional[str],
        video_info_file_path: str,
        multithreaded_io: bool,
        dataset_type: VideoDatasetType,
    ) -> Dict[str, Any]:
        video_infos: Dict[str, VideoInfo] = load_dataclass_dict_from_csv(video_info_file_path, VideoInfo, "video_id")
        if dataset_type == VideoDatasetType.Frame:
            return VideoDataset._load_frame_videos(video_data_manifest_file_path, video_infos, multithreaded_io)
        if dataset_type == VideoDatasetType.EncodedVideo:
            return VideoDataset._load_encoded_videos(video_data_manifest_file_path, video_infos)
        raise ValueError(f"unknown dataset_type {dataset_type!r}")

    @staticmethod
    def _load_frame_videos(frame_manifest_file_path: str, video_infos: Dict[str, VideoInfo], multithreaded_io: bool):
        from .frame_video import FrameVideo

        video_frames: Dict[str, VideoFrameInfo] = load_dataclass_dict_from_csv(
            frame_manifest_file_path, VideoFrameInfo, "video_id"
        )
        VideoDataset._remove_video_info_missing_or_incomplete_videos(video_frames, video_infos)
        return {
            video_id: FrameVideo(
                video_frame_paths=VideoDataset._frame_number_to_filepaths(video_id, video_frames, video_infos),
                duration=video_infos[video_id].duration,
                fps=video_infos[video_id].fps,
                multithreaded_io=multithreaded_io,
            )
            for video_id in video_infos
        }

    @staticmethod
    def _load_encoded_videos(encoded_video_manifest_file_path: str, video_infos: Dict[str, VideoInfo]):
        from .encoded_video import EncodedVideo

        encoded_video_infos: Dict[str, EncodedVideoInfo] = load_dataclass_dict_from_csv(
            encoded_video_manifest_file_path, EncodedVideoInfo, "video_id"
        )
        VideoDataset._remove_video_info_missing_or_incomplete_videos(encoded_video_infos, video_infos)
        return {video_id: EncodedVideo.from_path(info.file_path) for video_id, info in encoded_video_infos.items()}

    @staticmethod
    def _frame_number_to_filepaths(
        video_id: str, video_frames: Dict[str, VideoFrameInfo], video_infos: Dict[str, VideoInfo]
    ) -> List[str]:
        frame_info = video_frames[video_infos[video_id].video_id]
        return [
            frame_file_path(frame_info, number)
            for number in range(frame_info.min_frame_number, frame_info.max_frame_number + 1)
        ]

    @staticmethod
    def _remove_video_info_missing_or_incomplete_videos(
        video_data_infos: Dict[str, Union[VideoFrameInfo, EncodedVideoInfo]], video_infos: Dict[str, VideoInfo]
    ) -> None:
        """Keep only videos present in both tables; drop frame videos whose frame count is off by more
        than one second's worth from duration * fps."""
        for video_id in list(video_infos):
            if video_id not in video_data_infos:
                del video_infos[video_id]
                continue
            data_info, info = video_data_infos[video_id], video_infos[video_id]
            if isinstance(data_info, VideoFrameInfo):
                num_frames = data_info.max_frame_number - data_info.min_frame_number
                if abs(num_frames - round(info.duration * info.fps)) > info.fps:
                    del video_data_infos[video_id]
                    del video_infos[video_id]
        for video_id in list(video_data_infos):
            if video_id not in video_infos:
                del video_data_infos[video_id]


def get_seconds_from_hms_time(time_str: str) -> float:
    """Seconds of an ``HH:MM:SS`` or ``HH:MM:SS.fff`` timestamp."""
    for fmt in ("%H:%M:%S.%f", "%H:%M:%S"):
        try:
            parsed = datetime.datetime.strptime(time_str, fmt)
        except ValueError:
            continue
        return float((parsed - datetime.datetime.strptime("", "")).total_seconds())
    raise ValueError(f"No valid data format found for provided string {time_str}.")


def save_encoded_video_manifest(encoded_video_infos: Dict[str, EncodedVideoInfo], file_name: str = None) -> str:
    """Write the manifest CSV (default ./encoded_video_manifest.csv) and return its path."""
    file_name = file_name or os.path.join(os.getcwd(), "encoded_video_manifest.csv")
    save_dataclass_objs_to_headered_csv(list(encoded_video_infos.values()), file_name)
    return file_name


def save_video_frame_info(video_frames: Dict[str, VideoFrameInfo], file_name: str = None) -> str:
    """Write the frame manifest CSV (default ./video_frame_metadata.csv) and return its path."""
    file_name = file_name or os.path.join(os.getcwd(), "video_frame_metadata.csv")
    save_dataclass_objs_to_headered_csv(list(video_frames.values()), file_name)
    return file_name
