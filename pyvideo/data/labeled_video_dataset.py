"""LabeledVideoDataset: an IterableDataset of clips from a list of labelled videos.

Work split: the video sampler gives the epoch's video order; ``MultiProcessSampler`` hands each
DataLoader worker a disjoint share of it (and drops a ``DistributedSampler``'s padding repeats), so
across workers and ranks every (video, clip) of the epoch is produced exactly once. A RandomSampler is
seeded identically in every worker of an epoch (from the DataLoader's base seed, else from torch's
global generator) and differently in each epoch, so seeded runs are reproducible.

Bad data: a video that cannot be opened or decoded is skipped with a ``BadVideoWarning`` that names
it; the skip is counted (``num_failed_videos``/``failed_video_paths``, aggregated over workers through
a shared-memory flag per video). ``max_consecutive_failures`` consecutive failures raise RuntimeError.
"""
import os
from fractions import Fraction
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.utils.data

from .bad_data import ConsecutiveFailureCounter, SharedFailureRecord
from .clip_sampling import ClipInfo, ClipInfoList, ClipSampler
from .frame_sampling import read_clip
from .labeled_video_paths import LabeledVideoPaths, label_info
from .utils import MultiProcessSampler

VideoSamplerArg = Union[Type[torch.utils.data.Sampler], Callable[..., torch.utils.data.Sampler], torch.utils.data.Sampler]


def build_video_sampler(
    video_sampler: VideoSamplerArg, labeled_videos: Sequence
) -> Tuple[torch.utils.data.Sampler, Optional[torch.Generator]]:
    """A sampler class is instantiated over the videos; a RandomSampler gets its own generator so
    every worker can draw the same order. A sampler instance is used as is."""
    if isinstance(video_sampler, torch.utils.data.Sampler):
        return video_sampler, None
    if video_sampler is torch.utils.data.RandomSampler:
        generator = torch.Generator()
        return torch.utils.data.RandomSampler(labeled_videos, generator=generator), generator
    return video_sampler(labeled_videos), None


def seed_for_epoch(epoch: int) -> int:
    """Seed shared by all DataLoader workers of one epoch: the loader's base seed, else torch's global RNG."""
    worker_info = torch.utils.data.get_worker_info()
    if worker_info is not None:
        base_seed = worker_info.seed - worker_info.id
    else:
        base_seed = int(torch.randint(0, 2**62, (), dtype=torch.int64).item())
    return (base_seed + epoch * 1_000_003) % 2**63


def default_video_path_handler():
    # imported on first use: sampling and path parsing work without the compiled decoder
    from .video import VideoPathHandler

    return VideoPathHandler()


def check_frames_per_clip(frames_per_clip: Optional[int]) -> Optional[int]:
    if frames_per_clip is not None and (isinstance(frames_per_clip, bool) or not isinstance(frames_per_clip, int)
                                        or frames_per_clip < 1):
        raise ValueError(f"frames_per_clip must be None or an integer >= 1, got {frames_per_clip!r}")
    return frames_per_clip


def reset_clip_sampler(clip_sampler) -> None:
    # plain callables may serve as clip samplers; only stateful ones define reset()
    reset = getattr(clip_sampler, "reset", None)
    if reset is not None:
        reset()


def clip_is_empty(clip: Optional[Dict[str, Any]], decode_video: bool) -> bool:
    if clip is None:
        return True
    key = "video" if decode_video else "audio"
    tensor = clip.get(key)
    return tensor is None or (isinstance(tensor, torch.Tensor) and tensor.numel() == 0)


def seconds(value: Union[Fraction, float, List]) -> Union[float, List[float]]:
    return [float(v) for v in value] if isinstance(value, list) else float(value)


class LabeledVideoDataset(torch.utils.data.IterableDataset):
    """Clips from labelled videos (encoded files or frame folders), sampled by ``clip_sampler``.

    Each sample is a dict with ``video`` (C,T,H,W float), ``video_name``, ``video_index``,
    ``clip_index``, ``aug_index``, ``clip_start_sec``/``clip_end_sec`` (float seconds), the video's
    info dict (e.g. ``label``) and ``audio`` when decoded. A ``transform`` returning None drops the sample.

    ``frames_per_clip`` (pyvideo extension): keep only that many frames per clip, the ones
    ``UniformTemporalSubsample(frames_per_clip)`` would keep, decoding no others (same tensors, less work).
    """

    _MAX_CONSECUTIVE_FAILURES = 10

    def __init__(
        self,
        labeled_video_paths: Sequence[Tuple[Any, Optional[Any]]],
        clip_sampler: ClipSampler,
        video_sampler: VideoSamplerArg = torch.utils.data.RandomSampler,
        transform: Optional[Callable[[dict], Any]] = None,
        decode_audio: bool = True,
        decode_video: bool = True,
        decoder: str = "native",
        max_consecutive_failures: Optional[int] = None,
        frames_per_clip: Optional[int] = None,
    ) -> None:
        if not callable(clip_sampler):
            raise TypeError(f"clip_sampler must be callable, got {type(clip_sampler).__name__}")
        self._labeled_videos = labeled_video_paths
        self._clip_sampler = clip_sampler
        self._transform = transform
        self._decode_audio = decode_audio
        self._decode_video = decode_video
        self._decoder = decoder
        self._max_consecutive_failures = max_consecutive_failures or self._MAX_CONSECUTIVE_FAILURES
        self._frames_per_clip = check_frames_per_clip(frames_per_clip)
        self._video_sampler, self._video_random_generator = build_video_sampler(video_sampler, labeled_video_paths)
        self._epoch = 0
        self._failures = SharedFailureRecord(len(labeled_video_paths))
        self._compat_iterator: Optional[Iterator[dict]] = None
        self.video_path_handler = None

    @property
    def video_sampler(self) -> torch.utils.data.Sampler:
        """The sampler of video order; call ``set_epoch`` on it when it is a DistributedSampler."""
        return self._video_sampler

    @property
    def num_videos(self) -> int:
        return len(self.video_sampler)

    @property
    def num_failed_videos(self) -> int:
        """Distinct videos skipped as unreadable so far, summed over all DataLoader workers."""
        return self._failures.count

    @property
    def failed_video_paths(self) -> List[str]:
        """Paths of the videos skipped as unreadable so far (over all DataLoader workers)."""
        return [self._video_path(i) for i in self._failures.video_indices]

    @property
    def failures(self) -> List[Tuple[str, str]]:
        """(path, error) of every failure seen by this process (workers keep their own lists)."""
        return list(self._failures.events)

    def _video_path(self, video_index: int) -> str:
        return str(self._labeled_videos[video_index][0])

    def __iter__(self) -> Iterator[dict]:
        if self._video_random_generator is not None:
            self._video_random_generator.manual_seed(seed_for_epoch(self._epoch))
        self._epoch += 1
        return self._iterate_epoch(iter(MultiProcessSampler(self._video_sampler)))

    def __next__(self) -> dict:
        # kept for code written against upstream, which called next() on the dataset itself
        if self._compat_iterator is None:
            self._compat_iterator = iter(self)
        return next(self._compat_iterator)

    def _iterate_epoch(self, video_indices: Iterator[int]) -> Iterator[dict]:
        failures = ConsecutiveFailureCounter(self._max_consecutive_failures)
        for video_index in video_indices:
            yield from self._clips_of_video(video_index, failures)

    def _clips_of_video(self, video_index: int, failures: ConsecutiveFailureCounter) -> Iterator[dict]:
        path, info = self._labeled_videos[video_index]
        info = label_info(info)
        self._ensure_video_path_handler()
        try:
            video = self._open_video(path)
        except ImportError:  # a missing decoder is an installation problem, not bad data
            raise
        except Exception as error:  # any reader error: skip the video, never kill the worker
            self._fail(video_index, f"cannot open: {error}", failures)
            return
        try:
            yield from self._sample_clips(video, video_index, path, info, failures)
        finally:
            video.close()

    def _sample_clips(self, video, video_index, path, info, failures) -> Iterator[dict]:
        reset_clip_sampler(self._clip_sampler)
        last_clip_end = None
        loaded = None
        while True:
            clip_info = self._clip_sampler(last_clip_end, video.duration, info)
            first_aug = clip_info.aug_index[0] if isinstance(clip_info, ClipInfoList) else clip_info.aug_index
            if first_aug == 0 or loaded is None:
                try:
                    loaded = self._decode(video, clip_info)
                except Exception as error:
                    loaded, reason = None, f"cannot decode clip: {error}"
                else:
                    reason = clip_failure_reason(clip_info)
                if loaded is None:
                    self._fail(video_index, reason, failures)
                    return
            failures.success()
            sample = self._make_sample(video, path, video_index, info, clip_info, loaded)
            if self._transform is not None:
                sample = self._transform(sample)
            if sample is not None:
                yield sample
            is_last = clip_info.is_last_clip
            if (is_last[-1] if isinstance(is_last, list) else is_last):
                return
            last_clip_end = clip_info.clip_end_sec

    def _fail(self, video_index: int, reason: str, failures: ConsecutiveFailureCounter) -> None:
        path = self._video_path(video_index)
        self._failures.record(video_index, path, reason)
        failures.failure(f"{path}: {reason}")

    def _ensure_video_path_handler(self) -> None:
        if self.video_path_handler is None:
            self.video_path_handler = default_video_path_handler()

    def _open_video(self, path: Any):
        return self.video_path_handler.video_from_path(
            path, decode_audio=self._decode_audio, decode_video=self._decode_video, decoder=self._decoder
        )

    def _decode(self, video, clip_info: Union[ClipInfo, ClipInfoList]) -> Optional[Dict[str, Any]]:
        return decode_clip(video, clip_info, self._decode_video, self._get_clip)

    def _get_clip(self, video, start_sec, end_sec) -> Optional[Dict[str, Any]]:
        return read_clip(video, start_sec, end_sec, self._frames_per_clip, self._decode_audio)

    def _make_sample(self, video, path, video_index, info, clip_info, loaded) -> Dict[str, Any]:
        return make_sample(video, path, video_index, info, clip_info, loaded)


def _first(value):
    return value[0] if isinstance(value, list) else value


def decode_clip(video, clip_info: Union[ClipInfo, ClipInfoList], decode_video: bool, get_clip=None) -> Optional[Dict[str, Any]]:
    """The clip's decoded dict (lists per key for a ClipInfoList); None when a clip has no frames."""
    get_clip = get_clip or (lambda v, start, end: v.get_clip(start, end))
    if not isinstance(clip_info, ClipInfoList):
        clip = get_clip(video, clip_info.clip_start_sec, clip_info.clip_end_sec)
        return None if clip_is_empty(clip, decode_video) else clip
    clips = [get_clip(video, s, e) for s, e in zip(clip_info.clip_start_sec, clip_info.clip_end_sec)]
    if any(clip_is_empty(clip, decode_video) for clip in clips):
        return None
    return {key: [clip.get(key) for clip in clips] for key in clips[0]}


def make_sample(video, path, video_index: int, info: Dict[str, Any], clip_info, loaded: Dict[str, Any]) -> Dict[str, Any]:
    """The sample dict of one clip (see LabeledVideoDataset)."""
    audio = loaded.get("audio")
    if isinstance(audio, list) and all(a is None for a in audio):
        audio = None
    return {
        "video": loaded.get("video"),
        "video_name": getattr(video, "name", None) or os.path.basename(str(path)),
        "video_index": video_index,
        "clip_index": clip_info.clip_index,
        "aug_index": clip_info.aug_index,
        **info,
        # after the info dict: an annotation's own clip_start_sec (a segment bound) is not the clip's
        "clip_start_sec": seconds(clip_info.clip_start_sec),
        "clip_end_sec": seconds(clip_info.clip_end_sec),
        **({"audio": audio} if audio is not None else {}),
    }


def clip_failure_reason(clip_info) -> str:
    return f"no frames in clip [{float(_first(clip_info.clip_start_sec))}, {float(_first(clip_info.clip_end_sec))}) s"


def labeled_video_dataset(
    data_path: str,
    clip_sampler: ClipSampler,
    video_sampler: VideoSamplerArg = torch.utils.data.RandomSampler,
    transform: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
    video_path_prefix: str = "",
    decode_audio: bool = True,
    decoder: str = "native",
    decode_video: bool = True,
    max_consecutive_failures: Optional[int] = None,
    frames_per_clip: Optional[int] = None,
) -> LabeledVideoDataset:
    """A LabeledVideoDataset over ``LabeledVideoPaths.from_path(data_path)`` (a csv file or class folders)."""
    labeled_video_paths = LabeledVideoPaths.from_path(data_path)
    labeled_video_paths.path_prefix = video_path_prefix
    return LabeledVideoDataset(
        labeled_video_paths,
        clip_sampler,
        video_sampler,
        transform,
        decode_audio=decode_audio,
        decode_video=decode_video,
        decoder=decoder,
        max_consecutive_failures=max_consecutive_failures,
        frames_per_clip=frames_per_clip,
    )
