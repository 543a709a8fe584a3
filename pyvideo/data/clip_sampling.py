"""Clip samplers: decide which [start, end) windows of a video become training/eval clips.

A sampler is called as ``sampler(last_clip_end_time, video_duration, annotation)`` and returns a
``ClipInfo`` (or a ``ClipInfoList`` for multi-clip samplers). Times are ``Fraction`` seconds so that
clip boundaries land exactly on frame times (e.g. ``Fraction(64, 30)``). ``last_clip_end_time`` is
None for the first clip of a video. Stateful samplers (clip / augmentation counters) restart on
``reset()``, which they also call themselves after the last clip of a video.

Random samplers draw from ``torch``'s generator (the one passed in, else the global one). DataLoader
workers seed ``torch`` per worker, so a seeded run is reproducible.
"""
from abc import ABC, abstractmethod
from fractions import Fraction
from typing import Any, Dict, List, NamedTuple, Optional, Union

import torch

Seconds = Union[float, Fraction]


class ClipInfo(NamedTuple):
    """One sampled clip: [clip_start_sec, clip_end_sec) plus its position among the video's clips."""

    clip_start_sec: Seconds
    clip_end_sec: Seconds
    clip_index: int
    aug_index: int
    is_last_clip: bool


class ClipInfoList(NamedTuple):
    """Several clips sampled in one call; each field is a list with one entry per clip."""

    clip_start_sec: List[Seconds]
    clip_end_sec: List[Seconds]
    clip_index: List[int]
    aug_index: List[int]
    is_last_clip: List[bool]


def _positive_fraction(value: Seconds, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    # a float is read as the decimal the user wrote (0.4 -> 2/5, 64/30 -> 32/15), not its binary
    # approximation, which lies a hair above or below and moves clip ends across frame times
    value = Fraction(value).limit_denominator(1_000_000) if isinstance(value, float) else Fraction(value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0 seconds, got {float(value)}")
    return value


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _truncated(video_duration: Seconds, truncation_duration: Optional[Seconds]) -> Seconds:
    if truncation_duration is None:
        return video_duration
    return min(truncation_duration, video_duration)


class ClipSampler(ABC):
    """Base class: holds the clip duration and the per-video clip/augmentation counters."""

    def __init__(self, clip_duration: Seconds) -> None:
        self._clip_duration = _positive_fraction(clip_duration, "clip_duration")
        self._current_clip_index = 0
        self._current_aug_index = 0

    @abstractmethod
    def __call__(
        self,
        last_clip_end_time: Optional[Seconds],
        video_duration: Seconds,
        annotation: Dict[str, Any],
    ) -> Union[ClipInfo, ClipInfoList]:
        ...

    def reset(self) -> None:
        """Forget per-video state before sampling from the next video."""


class UniformClipSampler(ClipSampler):
    """Consecutive clips of ``clip_duration`` every ``stride`` seconds (stride defaults to the duration).

    A clip is the last one when the next clip would end more than ``eps`` past the video end. With
    ``backpad_last`` a clip that would run past the end is shifted back so it ends at the video end,
    and sampling stops once that shifted clip repeats.
    """

    def __init__(
        self,
        clip_duration: Seconds,
        stride: Optional[Seconds] = None,
        backpad_last: bool = False,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(clip_duration)
        self._stride = self._clip_duration if stride is None else _positive_fraction(stride, "stride")
        self._backpad_last = backpad_last
        self._eps = eps

    def _clip_start_end(self, last_clip_end_time: Optional[Seconds], video_duration: Seconds):
        # the next clip starts one stride after the previous clip's start
        if last_clip_end_time is None:
            clip_start = Fraction(0)
        else:
            clip_start = Fraction(last_clip_end_time) - self._clip_duration + self._stride
        clip_end = clip_start + self._clip_duration
        if self._backpad_last:
            overshoot = max(Fraction(0), clip_end - Fraction(video_duration))
            clip_start = max(Fraction(0), clip_start - overshoot)
            clip_end = clip_start + self._clip_duration
        return clip_start, clip_end

    def __call__(self, last_clip_end_time, video_duration, annotation) -> ClipInfo:
        clip_start, clip_end = self._clip_start_end(last_clip_end_time, video_duration)
        _, next_clip_end = self._clip_start_end(clip_end, video_duration)
        if self._backpad_last:
            is_last_clip = abs(next_clip_end - clip_end) < self._eps
        else:
            is_last_clip = (next_clip_end - Fraction(video_duration)) > self._eps
        clip_index = self._current_clip_index
        self._current_clip_index += 1
        if is_last_clip:
            self.reset()
        return ClipInfo(clip_start, clip_end, clip_index, 0, is_last_clip)

    def reset(self) -> None:
        self._current_clip_index = 0


class UniformClipSamplerTruncateFromStart(UniformClipSampler):
    """``UniformClipSampler`` over only the first ``truncation_duration`` seconds of each video."""

    def __init__(
        self,
        clip_duration: Seconds,
        stride: Optional[Seconds] = None,
        backpad_last: bool = False,
        eps: float = 1e-6,
        truncation_duration: Optional[Seconds] = None,
    ) -> None:
        super().__init__(clip_duration, stride, backpad_last, eps)
        self.truncation_duration = truncation_duration

    def __call__(self, last_clip_end_time, video_duration, annotation) -> ClipInfo:
        duration = _truncated(video_duration, self.truncation_duration)
        return super().__call__(last_clip_end_time, duration, annotation)


class RandomClipSampler(ClipSampler):
    """One clip per video with its start uniform in [0, max(duration - clip_duration, 0)]."""

    def __init__(self, clip_duration: Seconds, generator: Optional[torch.Generator] = None) -> None:
        super().__init__(clip_duration)
        self._generator = generator

    def _random_clip(self, video_duration: Seconds) -> ClipInfo:
        max_start = max(Fraction(video_duration) - self._clip_duration, Fraction(0))
        draw = torch.rand((), dtype=torch.float64, generator=self._generator).item()
        clip_start = Fraction(draw) * max_start
        return ClipInfo(clip_start, clip_start + self._clip_duration, 0, 0, True)

    def __call__(self, last_clip_end_time, video_duration, annotation) -> ClipInfo:
        return self._random_clip(video_duration)


class RandomMultiClipSampler(RandomClipSampler):
    """``num_clips`` independent random clips per video, returned together as a ``ClipInfoList``."""

    def __init__(
        self, clip_duration: Seconds, num_clips: int, generator: Optional[torch.Generator] = None
    ) -> None:
        super().__init__(clip_duration, generator)
        self._num_clips = _positive_int(num_clips, "num_clips")

    def __call__(self, last_clip_end_time, video_duration, annotation) -> ClipInfoList:
        clips = [self._random_clip(video_duration) for _ in range(self._num_clips)]
        return ClipInfoList(*(list(field) for field in zip(*clips)))


class RandomMultiClipSamplerTruncateFromStart(RandomMultiClipSampler):
    """``RandomMultiClipSampler`` over only the first ``truncation_duration`` seconds of each video."""

    def __init__(
        self,
        clip_duration: Seconds,
        num_clips: int,
        truncation_duration: Optional[Seconds] = None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(clip_duration, num_clips, generator)
        self.truncation_duration = truncation_duration

    def __call__(self, last_clip_end_time, video_duration, annotation) -> ClipInfoList:
        duration = _truncated(video_duration, self.truncation_duration)
        return super().__call__(last_clip_end_time, duration, annotation)


class ConstantClipsPerVideoSampler(ClipSampler):
    """``clips_per_video`` evenly spaced clips, the i-th starting at i * (D - d) / max(n - 1, 1).

    Each clip is returned ``augs_per_clip`` times with aug_index 0..k-1; datasets decode the clip
    only for aug_index 0 and hand the same frames to the other augmentations.
    """

    def __init__(self, clip_duration: Seconds, clips_per_video: int, augs_per_clip: int = 1) -> None:
        super().__init__(clip_duration)
        self._clips_per_video = _positive_int(clips_per_video, "clips_per_video")
        self._augs_per_clip = _positive_int(augs_per_clip, "augs_per_clip")

    def __call__(self, last_clip_end_time, video_duration, annotation) -> ClipInfo:
        max_start = max(Fraction(video_duration) - self._clip_duration, Fraction(0))
        spacing = max_start / max(self._clips_per_video - 1, 1)
        clip_start = spacing * self._current_clip_index
        clip_index, aug_index = self._current_clip_index, self._current_aug_index

        self._current_aug_index += 1
        if self._current_aug_index >= self._augs_per_clip:
            self._current_aug_index = 0
            self._current_clip_index += 1
        is_last_clip = (
            self._current_clip_index >= self._clips_per_video
            or spacing * self._current_clip_index > max_start
        )
        if is_last_clip:
            self.reset()
        return ClipInfo(clip_start, clip_start + self._clip_duration, clip_index, aug_index, is_last_clip)

    def reset(self) -> None:
        self._current_clip_index = 0
        self._current_aug_index = 0


_SAMPLER_TYPES = {
    "uniform": UniformClipSampler,
    "uniform_truncate_from_start": UniformClipSamplerTruncateFromStart,
    "random": RandomClipSampler,
    "random_multi": RandomMultiClipSampler,
    "random_multi_truncate_from_start": RandomMultiClipSamplerTruncateFromStart,
    "constant_clips_per_video": ConstantClipsPerVideoSampler,
}


def make_clip_sampler(sampling_type: str, *args) -> ClipSampler:
    """Build a sampler by name: "uniform", "random", "constant_clips_per_video", "random_multi",
    "uniform_truncate_from_start" or "random_multi_truncate_from_start"; ``args`` go to its constructor."""
    if sampling_type not in _SAMPLER_TYPES:
        raise NotImplementedError(
            f"clip sampler type {sampling_type!r} not supported; choose one of {sorted(_SAMPLER_TYPES)}"
        )
    return _SAMPLER_TYPES[sampling_type](*args)
