"""AVA actions: person boxes with action labels on key frames (one per second) of frame folders."""
import os
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import torch

from .clip_sampling import ClipInfo, ClipSampler
from .labeled_video_dataset import LabeledVideoDataset, VideoSamplerArg


class AvaLabeledVideoFramePaths:
    """Parses AVA's frame list, per-key-frame box/label CSV and optional label map into
    ``(frame folder, {"labels", "boxes", "extra_info", "video_index", "clip_index"})`` entries,
    one per annotated key frame. ``clip_index`` is the key frame's second from the video start
    (the annotated seconds 902..1798 count from 900 s)."""

    AVA_VALID_FRAMES = list(range(902, 1799))
    FPS = 30
    AVA_VIDEO_START_SEC = 900

    @classmethod
    def _aggregate_bboxes_labels(cls, inp: Dict[str, list]) -> Dict[str, list]:
        """Merge rows with the same box (to 2 decimals) into one box with a list of labels."""
        boxes: List[List[float]] = []
        labels: List[List[int]] = []
        extra_info: List[List[float]] = []
        box_position: Dict[str, int] = {}
        for box, label, extra in zip(inp["boxes"], inp["labels"], inp["extra_info"]):
            key = ",".join(f"{v:.2f}" for v in box)
            if key not in box_position:
                box_position[key] = len(boxes)
                boxes.append(box)
                labels.append([])
                extra_info.append([])
            labels[box_position[key]].append(label)
            extra_info[box_position[key]].append(extra)
        return {"labels": labels, "boxes": boxes, "extra_info": extra_info}

    @classmethod
    def from_csv(
        cls,
        frame_paths_file: str,
        frame_labels_file: str,
        video_path_prefix: str,
        label_map_file: Optional[str] = None,
    ) -> List[Tuple[str, Dict[str, Any]]]:
        allowed_class_ids = cls.read_label_map(label_map_file)[1] if label_map_file is not None else None
        image_paths, _, video_name_to_idx = cls.load_image_lists(frame_paths_file, video_path_prefix)
        video_frame_labels = cls.load_and_parse_labels_csv(frame_labels_file, video_name_to_idx, allowed_class_ids)
        labeled_video_paths = []
        for video_index, seconds in video_frame_labels.items():
            for frame_sec, rows in seconds.items():
                if rows["labels"]:
                    labels = cls._aggregate_bboxes_labels(rows)
                    labels["video_index"] = video_index
                    labels["clip_index"] = frame_sec
                    labeled_video_paths.append((os.path.dirname(image_paths[video_index][0]), labels))
        return labeled_video_paths

    @staticmethod
    def load_and_parse_labels_csv(
        frame_labels_file: str, video_name_to_idx: Dict[str, int], allowed_class_ids: Optional[Set[int]] = None
    ) -> Dict[int, Dict[float, Dict[str, list]]]:
        """Rows ``video,second,x1,y1,x2,y2,action,iou_or_person_id`` grouped by video index and key-frame second."""
        valid = AvaLabeledVideoFramePaths.AVA_VALID_FRAMES
        labels: Dict[int, Dict[float, Dict[str, list]]] = {}
        with open(frame_labels_file) as lines:
            for line_number, line in enumerate(lines, start=1):
                row = line.strip().split(",")
                if row == [""]:
                    continue
                if len(row) < 8:
                    raise ValueError(f"{frame_labels_file}:{line_number}: expected 8 columns, got {len(row)}")
                if row[0] not in video_name_to_idx:
                    raise ValueError(f"{frame_labels_file}:{line_number}: video {row[0]!r} is not in the frame list")
                frame_sec = float(row[1])
                if not valid[0] <= frame_sec <= valid[-1]:
                    continue
                label = -1 if row[6] == "" else int(row[6])
                if allowed_class_ids is not None and label not in allowed_class_ids:
                    continue
                per_second = labels.setdefault(video_name_to_idx[row[0]], {})
                rows = per_second.setdefault(frame_sec - AvaLabeledVideoFramePaths.AVA_VIDEO_START_SEC, defaultdict(list))
                rows["boxes"].append([float(v) for v in row[2:6]])
                rows["labels"].append(label)
                rows["extra_info"].append(float(row[7]))
        return labels

    @staticmethod
    def load_image_lists(frame_paths_file: str, video_path_prefix: str) -> Tuple[List[List[str]], List[str], Dict[str, int]]:
        """Frame paths of each video sorted by frame id, plus the index <-> name maps (first-seen order)."""
        frames: List[Dict[int, str]] = []
        video_idx_to_name: List[str] = []
        video_name_to_idx: Dict[str, int] = {}
        with open(frame_paths_file) as lines:
            next(lines, None)  # header
            for line_number, line in enumerate(lines, start=2):
                row = line.split()
                if not row:
                    continue
                if len(row) != 5:
                    raise ValueError(f"{frame_paths_file}:{line_number}: expected 5 columns, got {len(row)}")
                if row[0] not in video_name_to_idx:
                    video_name_to_idx[row[0]] = len(video_idx_to_name)
                    video_idx_to_name.append(row[0])
                    frames.append({})
                frames[video_name_to_idx[row[0]]][int(row[2])] = os.path.join(video_path_prefix, row[3])
        image_paths = [[paths[k] for k in sorted(paths)] for paths in frames]
        return image_paths, video_idx_to_name, video_name_to_idx

    @staticmethod
    def read_label_map(label_map_file: str) -> Tuple[Dict[int, str], Set[int]]:
        """Class id -> name from a .pbtxt label map (``name: "..."`` then ``id:``/``label_id:`` lines)."""
        label_map: Dict[int, str] = {}
        name = ""
        with open(label_map_file) as lines:
            for line in lines:
                if line.startswith("  name:"):
                    name = line.split('"')[1]
                elif line.startswith("  id:") or line.startswith("  label_id:"):
                    label_map[int(line.strip().split(" ")[-1])] = name
        return label_map, set(label_map)


class TimeStampClipSampler:
    """One clip per key frame, centred on its second (``annotation["clip_index"]``), lasting
    the wrapped sampler's clip duration."""

    def __init__(self, clip_sampler: ClipSampler) -> None:
        self.clip_sampler = clip_sampler

    def __call__(self, last_clip_time, video_duration, annotation: Dict[str, Any]) -> ClipInfo:
        duration = self.clip_sampler._clip_duration
        clip_start_sec = annotation["clip_index"] - duration / 2
        return ClipInfo(clip_start_sec, clip_start_sec + duration, 0, 0, True)

    def reset(self) -> None:
        """Stateless."""


def Ava(
    frame_paths_file: str,
    frame_labels_file: str,
    video_path_prefix: str = "",
    label_map_file: Optional[str] = None,
    clip_sampler: ClipSampler = None,
    video_sampler: VideoSamplerArg = torch.utils.data.RandomSampler,
    transform: Optional[Callable[[dict], Any]] = None,
) -> LabeledVideoDataset:
    """A LabeledVideoDataset of AVA key-frame clips; ``clip_sampler`` sets the clip duration."""
    if clip_sampler is None or not hasattr(clip_sampler, "_clip_duration"):
        raise TypeError("Ava needs a clip sampler instance, e.g. make_clip_sampler('random', 2.0), for its clip duration")
    labeled_video_paths = AvaLabeledVideoFramePaths.from_csv(
        frame_paths_file, frame_labels_file, video_path_prefix, label_map_file
    )
    return LabeledVideoDataset(
        labeled_video_paths,
        TimeStampClipSampler(clip_sampler),
        video_sampler,
        transform,
        decode_audio=False,
    )
