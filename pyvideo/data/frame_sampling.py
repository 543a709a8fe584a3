"""Decode only the frames a clip keeps: ``frames_per_clip`` frames spread uniformly over [start, end).

The frames picked are those ``UniformTemporalSubsample(frames_per_clip)`` would keep from the full clip
(positions ``linspace(0, T - 1, n)`` truncated, T = frames in the clip), so a pipeline gives the same
tensors with less work: encoded videos decode only up to the frames needed (``get_frames_at``), frame
folders read only the chosen images (``frame_filter``).
"""
import bisect
import inspect
from typing import Any, Dict, List, Optional

import torch


def uniform_positions(num_frames: int, num_samples: int) -> List[int]:
    """The positions UniformTemporalSubsample keeps among ``num_frames`` frames."""
    return torch.linspace(0, num_frames - 1, num_samples).clamp(0, num_frames - 1).long().tolist()


def pick_uniform(frame_indices: List[int], num_samples: int) -> List[int]:
    """The ``num_samples`` entries of ``frame_indices`` at ``uniform_positions``."""
    return [frame_indices[p] for p in uniform_positions(len(frame_indices), num_samples)] if frame_indices else []


def read_clip(video, start_sec, end_sec, frames_per_clip: Optional[int], decode_audio: bool) -> Optional[Dict[str, Any]]:
    """``video.get_clip(start, end)``, its video reduced to ``frames_per_clip`` uniformly spaced frames if given."""
    if frames_per_clip is None:
        return video.get_clip(start_sec, end_sec)
    if hasattr(video, "frame_seconds") and hasattr(video, "get_frames_at") and not decode_audio:
        # the decoder compares frame times with float bounds; do the same so the frame set matches get_clip's
        times = video.frame_seconds
        in_clip = list(range(bisect.bisect_left(times, float(start_sec)), bisect.bisect_left(times, float(end_sec))))
        if not in_clip:
            return {"video": None, "audio": None}
        picked = pick_uniform(in_clip, frames_per_clip)
        return {"video": video.get_frames_at(picked)["video"], "audio": None, "frame_indices": picked}
    if "frame_filter" in inspect.signature(video.get_clip).parameters:  # frame folders: read the chosen images
        return video.get_clip(start_sec, end_sec, frame_filter=lambda indices: pick_uniform(indices, frames_per_clip))
    clip = video.get_clip(start_sec, end_sec)  # any other Video (or audio wanted): decode all, keep the chosen
    if clip is None or clip.get("video") is None:
        return clip
    positions = torch.tensor(uniform_positions(clip["video"].shape[1], frames_per_clip))
    return {**clip, "video": clip["video"].index_select(1, positions)}
