"""Bookkeeping for unreadable videos in datasets: warnings, shared counts, the consecutive-failure limit."""
import warnings
from typing import List, Tuple

import torch


class BadVideoWarning(UserWarning):
    """A video in a dataset could not be opened or decoded and was skipped."""


class ConsecutiveFailureCounter:
    """Counts failures since the last success and raises once ``limit`` is reached."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_consecutive_failures must be >= 1, got {limit}")
        self._limit = limit
        self._recent: List[str] = []

    def success(self) -> None:
        self._recent.clear()

    def failure(self, description: str) -> None:
        self._recent.append(description)
        if len(self._recent) >= self._limit:
            raise RuntimeError(
                f"Failed to load {len(self._recent)} videos in a row (max_consecutive_failures="
                f"{self._limit}); the data is probably unreadable. Failures:\n  " + "\n  ".join(self._recent)
            )


class SharedFailureRecord:
    """Which videos failed, in shared memory so that the main process sees the workers' failures."""

    def __init__(self, num_videos: int) -> None:
        self._flags = torch.zeros(num_videos, dtype=torch.uint8).share_memory_()
        self.events: List[Tuple[str, str]] = []  # (path, error) seen in this process

    def record(self, video_index: int, path: str, reason: str) -> None:
        self._flags[video_index] = 1
        self.events.append((path, reason))
        warnings.warn(f"pyvideo: skipping video {path!r}: {reason}", BadVideoWarning, stacklevel=3)

    @property
    def count(self) -> int:
        return int(self._flags.sum().item())

    @property
    def video_indices(self) -> List[int]:
        return torch.nonzero(self._flags).flatten().tolist()
