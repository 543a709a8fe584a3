"""Build Epic-Kitchens data manifests by listing frame / video folders."""
import os
from typing import Callable, Dict, List, Tuple

from ..dataset_manifest_utils import (  # noqa: F401  (save_* re-exported as upstream did)
    EncodedVideoInfo,
    VideoFrameInfo,
    save_encoded_video_manifest,
    save_video_frame_info,
)
from ..utils import optional_threaded_foreach


def _split_frame_file(file_name: str) -> Tuple[str, str, str]:
    """``<stem>_<number>.<ext>`` -> (stem including trailing "_", number, ext)."""
    name, _, extension = file_name.rpartition(".")
    stem, _, number = name.rpartition("_")
    if not name or not stem or not number.isdigit():
        raise ValueError(f"frame file {file_name!r} is not named <stem>_<number>.<ext>")
    return stem + "_", number, extension


def _frame_infos_from_files(video_id_of: Callable[[str], str], folder: str, file_names: List[str]) -> Dict[str, VideoFrameInfo]:
    """Group a folder's frame files by video and check each video's frames are consecutive and uniform."""
    infos: Dict[str, VideoFrameInfo] = {}
    for file_name in sorted(file_names):
        stem, number, extension = _split_frame_file(file_name)
        video_id = video_id_of(stem[:-1])
        frame_name_length = len(file_name) - len(extension) - 1
        info = infos.get(video_id)
        if info is None:
            infos[video_id] = VideoFrameInfo(video_id, folder, stem, frame_name_length, int(number), int(number), extension)
            continue
        if (frame_name_length, extension) != (info.frame_string_length, info.file_extension):
            raise ValueError(f"{folder}/{file_name}: frame name length or extension differs from earlier frames of {video_id}")
        if int(number) != info.max_frame_number + 1:
            raise ValueError(f"{folder}/{file_name}: frame {int(number)} follows {info.max_frame_number}; frames must be consecutive")
        info.max_frame_number = int(number)
    return infos


def build_frame_manifest_from_flat_directory(data_directory_path: str, multithreaded: bool) -> Dict[str, VideoFrameInfo]:
    """``{data_directory_path}/{video_id}/frame_{number}.{ext}`` -> VideoFrameInfo per video id (folder name)."""
    video_frames: Dict[str, VideoFrameInfo] = {}

    def add_video(video_id: str, folder: str) -> None:
        infos = _frame_infos_from_files(lambda stem: video_id, folder, os.listdir(folder))
        video_frames.update(infos)

    folders = [(v, f"{data_directory_path}/{v}") for v in sorted(os.listdir(data_directory_path))]
    optional_threaded_foreach(add_video, folders, multithreaded)
    return video_frames


def build_frame_manifest_from_nested_directory(data_directory_path: str, multithreaded: bool) -> Dict[str, VideoFrameInfo]:
    """``{root}/{participant}/{participant}_{video}_{number}.{ext}`` -> VideoFrameInfo per ``participant_video``."""
    video_frames: Dict[str, VideoFrameInfo] = {}

    def add_participant(participant_id: str, folder: str) -> None:
        def video_id_of(stem: str) -> str:
            if not stem.startswith(participant_id + "_"):
                raise ValueError(f"{folder}: frame stem {stem!r} does not start with participant {participant_id!r}")
            return stem

        video_frames.update(_frame_infos_from_files(video_id_of, folder, os.listdir(folder)))

    folders = [(p, f"{data_directory_path}/{p}") for p in sorted(os.listdir(data_directory_path))]
    optional_threaded_foreach(add_participant, folders, multithreaded)
    return video_frames


def build_encoded_manifest_from_nested_directory(data_directory_path: str) -> Dict[str, EncodedVideoInfo]:
    """``{root}/{participant}/{video file}`` -> EncodedVideoInfo keyed by the file name's first 6 characters
    (Epic-Kitchens ids such as ``P01_01``)."""
    encoded = {}
    for participant_id in sorted(os.listdir(data_directory_path)):
        folder = f"{data_directory_path}/{participant_id}"
        for file_name in sorted(os.listdir(folder)):
            encoded[file_name[:6]] = EncodedVideoInfo(file_name[:6], f"{folder}/{file_name}")
    return encoded
