"""LabeledVideoClipDataset: a map-style dataset with one item per (video, clip), length known up front.

The clip index is built once: each video's duration is read (or given) and the clip sampler is run
to completion on it, so ``len()`` is exact and item i is always the same clip. Use it with a standard
``DistributedSampler``/``RandomSampler``: batch counts are ceil(len / batch_size) per epoch regardless
of the number of DataLoader workers (unlike any IterableDataset, whose workers each end with a
partial batch).

Random clip samplers ("random", "random_multi") contribute one item per video whose window is drawn
when the item is read: from ``torch``'s generator (seeded per DataLoader worker), or, when ``seed`` is
given, from a generator seeded by (seed, epoch, index) so the clip does not depend on the worker layout;
call ``set_epoch`` to draw new windows each epoch.
"""
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.data

from .clip_sampling import ClipInfo, ClipInfoList, ClipSampler, RandomClipSampler
from .bad_data import BadVideoWarning, ConsecutiveFailureCounter, SharedFailureRecord
from .frame_sampling import read_clip
from .labeled_video_dataset import (
    LabeledVideoDataset,
    check_frames_per_clip,
    clip_failure_reason,
    decode_clip,
    default_video_path_handler,
    make_sample,
    reset_clip_sampler,
)
from .labeled_video_paths import label_info

_MAX_CLIPS_PER_VIDEO = 1_000_000
_PROBE_THREADS = 8

__all__ = ["LabeledVideoClipDataset", "BadVideoWarning"]


class LabeledVideoClipDataset(torch.utils.data.Dataset):
    """Map-style counterpart of LabeledVideoDataset; items are the same sample dicts.

    Args:
        labeled_video_paths: (path, label or info dict) pairs, e.g. a ``LabeledVideoPaths``.
        clip_sampler: any pyvideo clip sampler (deterministic ones are enumerated up front).
        video_durations: durations in seconds per video; when None each video is opened once to read it.
        seed: makes random clip windows a function of (seed, epoch, index).
        max_consecutive_failures: unreadable items in a row tolerated before RuntimeError.
        video_path_handler: opens videos (default: ``pyvideo.data.video.VideoPathHandler()``).
        frames_per_clip: decode only the frames ``UniformTemporalSubsample(frames_per_clip)`` would keep.
    """

    _MAX_CONSECUTIVE_FAILURES = LabeledVideoDataset._MAX_CONSECUTIVE_FAILURES

    def __init__(
        self,
        labeled_video_paths: Sequence[Tuple[Any, Optional[Any]]],
        clip_sampler: ClipSampler,
        transform: Optional[Callable[[dict], Any]] = None,
        decode_audio: bool = True,
        decode_video: bool = True,
        decoder: str = "native",
        video_durations: Optional[Sequence[float]] = None,
        seed: Optional[int] = None,
        max_consecutive_failures: Optional[int] = None,
        multithreaded_io: bool = False,
        video_path_handler=None,
        frames_per_clip: Optional[int] = None,
    ) -> None:
        if video_durations is not None and len(video_durations) != len(labeled_video_paths):
            raise ValueError(
                f"video_durations has {len(video_durations)} entries for {len(labeled_video_paths)} videos"
            )
        self._labeled_videos = labeled_video_paths
        self._clip_sampler = clip_sampler
        self._transform = transform
        self._decode_audio = decode_audio
        self._decode_video = decode_video
        self._decoder = decoder
        self._seed = seed
        self._epoch = 0
        self._max_consecutive_failures = max_consecutive_failures or self._MAX_CONSECUTIVE_FAILURES
        self._frames_per_clip = check_frames_per_clip(frames_per_clip)
        self._failures = SharedFailureRecord(len(labeled_video_paths))
        self.video_path_handler = video_path_handler or default_video_path_handler()
        durations = list(video_durations) if video_durations is not None else self._probe_durations(multithreaded_io)
        self._durations = durations
        self._clips: List[Tuple[int, Optional[Union[ClipInfo, ClipInfoList]]]] = [
            entry
            for video_index, duration in enumerate(durations)
            if duration is not None
            for entry in self._enumerate_clips(video_index, duration)
        ]

    def __len__(self) -> int:
        return len(self._clips)

    def set_epoch(self, epoch: int) -> None:
        """Random clip windows drawn with ``seed`` change with the epoch."""
        self._epoch = epoch

    @property
    def clip_index(self) -> List[Tuple[int, Optional[Union[ClipInfo, ClipInfoList]]]]:
        """(video_index, ClipInfo) per item; the ClipInfo is None where it is drawn at read time."""
        return list(self._clips)

    @property
    def num_failed_videos(self) -> int:
        return self._failures.count

    @property
    def failed_video_paths(self) -> List[str]:
        return [str(self._labeled_videos[i][0]) for i in self._failures.video_indices]

    def _video(self, path):
        return self.video_path_handler.video_from_path(
            path, decode_audio=self._decode_audio, decode_video=self._decode_video, decoder=self._decoder
        )

    def _probe_durations(self, multithreaded: bool) -> List[Optional[float]]:
        def probe(video_index: int) -> Optional[float]:
            path = self._labeled_videos[video_index][0]
            try:
                video = self._video(path)
                try:
                    return video.duration
                finally:
                    video.close()
            except ImportError:  # a missing decoder is an installation problem, not bad data
                raise
            except Exception as error:  # unreadable videos are left out of the index
                self._failures.record(video_index, str(path), f"cannot open: {error}")
                return None

        indices = range(len(self._labeled_videos))
        if not multithreaded:
            return [probe(i) for i in indices]
        with ThreadPoolExecutor(_PROBE_THREADS) as pool:
            return list(pool.map(probe, indices))

    def _enumerate_clips(self, video_index: int, duration: float):
        if isinstance(self._clip_sampler, RandomClipSampler):
            return [(video_index, None)]
        info = label_info(self._labeled_videos[video_index][1])
        reset_clip_sampler(self._clip_sampler)
        clips, last_clip_end = [], None
        while True:
            clip_info = self._clip_sampler(last_clip_end, duration, info)
            clips.append((video_index, clip_info))
            is_last = clip_info.is_last_clip
            if is_last[-1] if isinstance(is_last, list) else is_last:
                return clips
            if len(clips) >= _MAX_CLIPS_PER_VIDEO:
                raise ValueError(f"clip sampler never reported a last clip for video {video_index}")
            last_clip_end = clip_info.clip_end_sec

    def _get_clip(self, video, start_sec, end_sec) -> Optional[Dict[str, Any]]:
        return read_clip(video, start_sec, end_sec, self._frames_per_clip, self._decode_audio)

    def _random_clip(self, index: int, video_index: int, info: Dict[str, Any]):
        duration = self._durations[video_index]
        if self._seed is None:
            return self._clip_sampler(None, duration, info)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self._seed, self._epoch, index)) % 2**63)
            return self._clip_sampler(None, duration, info)

    def _load(self, index: int) -> Dict[str, Any]:
        """The sample of item ``index``; raises on unreadable data."""
        video_index, clip_info = self._clips[index]
        path, info = self._labeled_videos[video_index]
        info = label_info(info)
        if clip_info is None:
            clip_info = self._random_clip(index, video_index, info)
        video = self._video(path)
        try:
            loaded = decode_clip(video, clip_info, self._decode_video, self._get_clip)
            if loaded is None:
                raise RuntimeError(clip_failure_reason(clip_info))
            return make_sample(video, path, video_index, info, clip_info, loaded)
        finally:
            video.close()

    def __getitem__(self, index: int) -> Any:
        """Item ``index``; an unreadable item is skipped (warned, counted) in favour of the next one."""
        if not 0 <= index < len(self._clips):
            raise IndexError(f"clip index {index} out of range for {len(self._clips)} clips")
        failures = ConsecutiveFailureCounter(self._max_consecutive_failures)
        while True:
            try:
                sample = self._load(index)
            except ImportError:
                raise
            except Exception as error:
                video_index = self._clips[index][0]
                path = self._labeled_videos[video_index][0]
                self._failures.record(video_index, str(path), str(error))
                failures.failure(f"{path}: {error}")
                index = (index + 1) % len(self._clips)
                continue
            return self._transform(sample) if self._transform is not None else sample
