"""Something-Something v2: one label per video, a fixed number of frames spread over the whole video."""
import json
from typing import Any, Callable, List, Optional, Tuple

import torch

from .clip_sampling import ClipSampler
from .frame_lists import FrameListVideoDataset, read_frame_list
from .labeled_video_dataset import VideoSamplerArg


def segment_frames(frame_indices: List[int], frames_per_clip: int, rand_sample: bool, generator=None) -> List[int]:
    """Split the video into ``frames_per_clip`` equal segments and take one frame from each:
    the segment's middle, or a uniformly random frame of it when ``rand_sample``."""
    segment = (len(frame_indices) - 1) / frames_per_clip
    chosen = []
    for i in range(frames_per_clip):
        start, end = int(round(segment * i)), int(round(segment * (i + 1)))
        if rand_sample:
            chosen.append(int(torch.randint(start, end + 1, (), generator=generator)))
        else:
            chosen.append((start + end) // 2)
    return [frame_indices[i] for i in chosen]


def read_ssv2_annotations(
    label_name_file: str, video_label_file: str, video_path_label_file: str, prefix: str = ""
) -> List[Tuple[List[str], dict]]:
    """(frame paths, {"label": id, "video_name": id}) for each annotated video that has frames.

    The label id is looked up by the video's template text with its brackets removed.
    """
    frame_paths, _ = read_frame_list(video_path_label_file, prefix)
    with open(label_name_file) as f:
        label_ids = json.load(f)
    with open(video_label_file) as f:
        videos = json.load(f)
    labeled = []
    for video in videos:
        if video["id"] not in frame_paths:
            continue
        template = video["template"].replace("[", "").replace("]", "")
        if template not in label_ids:
            raise ValueError(f"{video_label_file}: template {template!r} of video {video['id']} not in {label_name_file}")
        labeled.append((frame_paths[video["id"]], {"label": int(label_ids[template]), "video_name": video["id"]}))
    return labeled


class SSv2(FrameListVideoDataset):
    """SSv2 frame folders; every clip is the whole video reduced to ``frames_per_clip`` frames."""

    def __init__(
        self,
        label_name_file: str,
        video_label_file: str,
        video_path_label_file: str,
        clip_sampler: ClipSampler,
        video_sampler: VideoSamplerArg = torch.utils.data.RandomSampler,
        transform: Optional[Callable[[dict], Any]] = None,
        video_path_prefix: str = "",
        frames_per_clip: Optional[int] = None,
        rand_sample_frames: bool = False,
        fps: float = 30.0,
        max_consecutive_failures: Optional[int] = None,
    ) -> None:
        labeled = read_ssv2_annotations(label_name_file, video_label_file, video_path_label_file, video_path_prefix)
        self._frames_per_segment_sampling = frames_per_clip
        self._rand_sample_frames = rand_sample_frames
        self._fps = fps
        super().__init__(
            labeled, clip_sampler, video_sampler, transform, decode_audio=False,
            max_consecutive_failures=max_consecutive_failures,
        )

    def _frame_filter(self, frame_indices: List[int]) -> List[int]:
        if self._frames_per_segment_sampling is None:
            return frame_indices
        return segment_frames(frame_indices, self._frames_per_segment_sampling, self._rand_sample_frames)

    def _get_clip(self, video, start_sec, end_sec):
        # SSv2 clips always cover the whole video; the sampler only sets clip/aug indices
        return video.get_clip(0, video.duration, self._frame_filter)
