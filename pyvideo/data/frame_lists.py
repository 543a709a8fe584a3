"""Reader for the frame-list files of frame-folder datasets (Charades, SSv2, AVA).

Space-separated, with the header ``original_vido_id video_id frame_id path labels`` (the "vido"
typo is the real column name); one line per frame; ``labels`` is a comma-separated id list, possibly
quoted or empty.
"""
import csv
import os
from collections import OrderedDict
from typing import Dict, List, Tuple

from .labeled_video_dataset import LabeledVideoDataset

FRAME_LIST_COLUMNS = ["original_vido_id", "video_id", "frame_id", "path", "labels"]


def read_frame_list(file_path: str, prefix: str = "") -> Tuple[Dict[str, List[str]], Dict[str, List[List[int]]]]:
    """Frame paths and per-frame label lists of each video, in file order, keyed by original video id."""
    frame_paths: Dict[str, List[str]] = OrderedDict()
    frame_labels: Dict[str, List[List[int]]] = OrderedDict()
    with open(file_path, newline="") as lines:
        reader = csv.DictReader(lines, delimiter=" ")
        if reader.fieldnames is None or any(c not in reader.fieldnames for c in FRAME_LIST_COLUMNS):
            raise ValueError(f"{file_path}: header must hold {FRAME_LIST_COLUMNS}, got {reader.fieldnames}")
        for line_number, row in enumerate(reader, start=2):
            if None in row or any(row[c] is None for c in FRAME_LIST_COLUMNS):
                raise ValueError(f"{file_path}:{line_number}: expected {len(FRAME_LIST_COLUMNS)} columns")
            name = row["original_vido_id"]
            frame_paths.setdefault(name, []).append(os.path.join(prefix, row["path"]))
            text = row["labels"].replace('"', "").strip()
            frame_labels.setdefault(name, []).append([int(x) for x in text.split(",") if x.strip()])
    if not frame_paths:
        raise ValueError(f"{file_path} lists no frames")
    return frame_paths, frame_labels


class FrameListVideoDataset(LabeledVideoDataset):
    """A LabeledVideoDataset whose videos are lists of frame paths, opened as FrameVideos at ``self._fps``."""

    _fps = 30.0

    def _video_path(self, video_index: int) -> str:
        return os.path.dirname(self._labeled_videos[video_index][0][0])

    def _ensure_video_path_handler(self) -> None:
        """Frame lists are opened directly with FrameVideo; no path handler needed."""

    def _open_video(self, frame_paths: List[str]):
        from .frame_video import FrameVideo

        return FrameVideo.from_frame_paths(frame_paths, fps=self._fps)
