"""A stand-in for decoded videos: tests of sampling, splitting and failure handling need no codec.

FakeVideo(duration, fps) returns frames whose pixel values are their frame numbers, so a test can
check exactly which frames a clip [start, end) holds.
"""
import math
from fractions import Fraction
from typing import Dict, Iterable, Optional

import torch


class FakeVideo:
    def __init__(self, name: str, duration: float, fps: int = 10, fail_after_sec: Optional[float] = None):
        self.name = name
        self.duration = Fraction(duration)
        self._fps = fps
        self._fail_after_sec = fail_after_sec
        self.closed = False

    def get_clip(self, start_sec, end_sec, frame_filter=None) -> Dict[str, object]:
        if self._fail_after_sec is not None and end_sec > self._fail_after_sec:
            raise RuntimeError(f"{self.name}: corrupt packet at {self._fail_after_sec}s")
        first = max(0, math.ceil(Fraction(start_sec) * self._fps))
        last = max(first, min(math.ceil(self.duration * self._fps), math.ceil(Fraction(end_sec) * self._fps)))
        indices = list(range(first, last))
        if frame_filter is not None:
            indices = frame_filter(indices)
        frames = torch.tensor(indices, dtype=torch.float32)
        video = frames.view(1, -1, 1, 1).expand(1, -1, 2, 2).clone() if indices else None
        return {"video": video, "audio": None, "frame_indices": indices}

    def close(self) -> None:
        self.closed = True


class FakeVideoPathHandler:
    """Opens FakeVideos by path from a {path: duration} table; paths in ``missing`` raise like absent files,
    paths in ``corrupt_after`` decode until that second and then raise."""

    def __init__(self, durations: Dict[str, float], missing: Iterable[str] = (), corrupt_after: Dict[str, float] = None):
        self.durations = dict(durations)
        self.missing = set(missing)
        self.corrupt_after = dict(corrupt_after or {})

    def video_from_path(self, path, decode_audio=False, decode_video=True, decoder="native", fps=30):
        if path in self.missing or path not in self.durations:
            raise FileNotFoundError(f"{path}: no such file")
        return FakeVideo(path, self.durations[path], fail_after_sec=self.corrupt_after.get(path))
