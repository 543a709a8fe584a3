"""HMDB51: videos in class folders, train/test membership in per-class split files.

Split files are named ``<action>_test_split<N>.txt``; each line is ``<video file> <0|1|2>`` with
1 = train, 2 = test, 0 = unused. The label of a video is its action name; its ``meta_tags`` are the
five tags encoded in its file name (``<name>_<tag1>_..._<tag5>_<id>.avi``).
"""
import os
import pathlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .clip_sampling import ClipSampler
from .labeled_video_dataset import LabeledVideoDataset, VideoSamplerArg
from .labeled_video_paths import LabeledVideoPaths


class Hmdb51LabeledVideoPaths(LabeledVideoPaths):
    """(``<action>/<video file>``, {"label": action, "meta_tags": [...]}) for one split and split type."""

    _allowed_splits = [1, 2, 3]
    _split_type_dict = {"train": 1, "test": 2, "unused": 0}

    @classmethod
    def from_dir(cls, data_path: str, split_id: int = 1, split_type: str = "train") -> "Hmdb51LabeledVideoPaths":
        """Read every ``*_test_split<split_id>.txt`` file of the folder ``data_path``."""
        folder = pathlib.Path(data_path)
        if not folder.is_dir():
            raise FileNotFoundError(f"{data_path} not found or is not a directory.")
        if int(split_id) not in cls._allowed_splits:
            raise ValueError(f"split_id {split_id} is not one of {cls._allowed_splits}.")
        suffix = f"_test_split{int(split_id)}"
        split_files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix == ".txt" and f.stem.endswith(suffix))
        if not split_files:
            raise FileNotFoundError(f"no *{suffix}.txt split files in {data_path}")
        return cls.from_csvs(split_files, split_type)

    @classmethod
    def from_csvs(
        cls, file_paths: Sequence[Union[pathlib.Path, str]], split_type: str = "train"
    ) -> "Hmdb51LabeledVideoPaths":
        if split_type not in cls._split_type_dict:
            raise ValueError(f"split_type {split_type!r} is not one of {sorted(cls._split_type_dict)}")
        wanted = cls._split_type_dict[split_type]
        paths_and_labels: List[Tuple[str, Dict[str, Any]]] = []
        for file_path in map(pathlib.Path, file_paths):
            if not file_path.is_file():
                raise FileNotFoundError(f"{file_path} not found.")
            if file_path.suffix != ".txt" or "_test_split" not in file_path.stem:
                raise ValueError(f"Invalid split file name: {file_path} (expected <action>_test_split<N>.txt)")
            action_name = "_".join(file_path.stem.split("_")[:-2])
            paths_and_labels += cls._read_split_file(file_path, action_name, wanted)
        if not paths_and_labels:
            raise ValueError(f"No {split_type} videos in {[str(p) for p in file_paths]}.")
        return cls(paths_and_labels)

    @staticmethod
    def _read_split_file(file_path: pathlib.Path, action_name: str, wanted: int) -> List[Tuple[str, Dict[str, Any]]]:
        entries = []
        for line_number, line in enumerate(file_path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{file_path}:{line_number}: expected '<video> <0|1|2>', got {line!r}")
            if int(parts[1]) == wanted:
                meta_tags = parts[0].split("_")[-6:-1]
                entries.append((os.path.join(action_name, parts[0]), {"label": action_name, "meta_tags": meta_tags}))
        return entries


def Hmdb51(
    data_path: Union[pathlib.Path, str],
    clip_sampler: ClipSampler,
    video_sampler: VideoSamplerArg = torch.utils.data.RandomSampler,
    transform: Optional[Callable[[dict], Any]] = None,
    video_path_prefix: str = "",
    split_id: int = 1,
    split_type: str = "train",
    decode_audio: bool = True,
    decoder: str = "native",
    max_consecutive_failures: Optional[int] = None,
) -> LabeledVideoDataset:
    """HMDB51 clips: ``data_path`` is the split-file folder, ``video_path_prefix`` the video folder."""
    labeled_video_paths = Hmdb51LabeledVideoPaths.from_dir(data_path, split_id=split_id, split_type=split_type)
    labeled_video_paths.path_prefix = video_path_prefix
    return LabeledVideoDataset(
        labeled_video_paths,
        clip_sampler,
        video_sampler,
        transform,
        decode_audio=decode_audio,
        decoder=decoder,
        max_consecutive_failures=max_consecutive_failures,
    )
