"""EncodedVideo on pyvideo's native FFmpeg decoder (csrc/decode).

Frame ``i`` is the i-th frame in presentation order and its time is ``(pts_i - stream start) * time_base``.
A clip ``[start, end)`` holds exactly the frames whose time lies in it. Frames are located through a packet index
built at open, so any request costs one seek to the nearest keyframe plus decoding forward from there; a batch of
requests is served in sorted order without decoding any frame twice. See docs/notes/decode.md.
"""
import math
import operator
import threading
from typing import Any, Dict, List, Optional, Sequence

import torch

from pyvideo import _native
from pyvideo.data.encoded_video import EncodedVideo, read_file_like
from pyvideo.data.utils import thwc_to_cthw


def native_decode():
    """``pyvideo._C.decode``, or an ImportError saying why it is missing."""
    module = getattr(_native.native(), "decode", None)
    if module is None:
        raise ImportError("pyvideo was built without FFmpeg, so its native video decoder is unavailable; install "
                          "the FFmpeg development packages (see the Makefile) and rebuild")
    return module


def _size_option(value: Optional[int], name: str) -> int:
    """None or a negative value (decord's -1) mean 'keep the size'."""
    if value is None or value < 0:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


class EncodedVideoNative(EncodedVideo):
    """A video file (path, bytes or binary file object) decoded by pyvideo's C++ FFmpeg decoder.

    Args:
        file: path, bytes, or a binary file object (as PyTorchVideo passes a BytesIO).
        video_name: name used in messages; defaults to the path.
        decode_video, decode_audio: which streams ``get_clip`` returns.
        num_threads: FFmpeg decoding threads (0: min(4, CPU count)).
        width, height: resize frames to exactly this size; or short_side: scale the shorter side to it.
            Resizing is fused with the colour conversion (one swscale pass). None or -1: no resize.
        interpolation: "bilinear" (default), "bicubic", "area" or "nearest", used when resizing.
        sample_rate: resample audio to this rate (None: the stream's rate).
        mono: mix audio channels to one (PyTorchVideo's behaviour); False returns [channels, samples].
        perform_seek, fault_tol: accepted for compatibility with the PyAV / decord backends; no effect.
    """

    def __init__(self, file, video_name: Optional[str] = None, decode_video: bool = True, decode_audio: bool = True,
                 num_threads: int = 0, width: Optional[int] = None, height: Optional[int] = None,
                 short_side: Optional[int] = None, interpolation: str = "bilinear", sample_rate: Optional[int] = None,
                 mono: bool = True, perform_seek: bool = True, fault_tol: int = -1) -> None:
        self._init_args = dict(video_name=video_name, decode_video=decode_video, decode_audio=decode_audio,
                               num_threads=num_threads, width=width, height=height, short_side=short_side,
                               interpolation=interpolation, sample_rate=sample_rate, mono=mono)
        self._source = read_file_like(file)
        self._name = video_name or (self._source if isinstance(self._source, str) else "<bytes>")
        self._decode_video = decode_video
        self._decode_audio = decode_audio
        self._audio_options = dict(sample_rate=sample_rate or 0, mono=mono)
        self._lock = threading.Lock()
        decode = native_decode()
        self._video = decode.VideoDecoder(
            self._source, num_threads=num_threads, width=_size_option(width, "width"),
            height=_size_option(height, "height"), short_side=_size_option(short_side, "short_side"),
            interpolation=interpolation, name=self._name)
        self._info = self._video.info()
        self._audio = None
        if decode_video and self._info["video"] is not None and self._info["video"]["num_frames"] == 0:
            raise native_decode().VideoDecodeError(f"{self._name}: the video stream holds no frames")
        self._has_audio = decode_audio and self._info["audio"] is not None
        durations = [self._info["video"]["duration"]] if self._info["video"] else []
        if self._has_audio:
            durations.append(self._info["audio"]["duration"])
        if not durations:
            raise native_decode().VideoDecodeError(f"{self._name} has neither a video nor an audio stream")
        self._duration = max(durations)

    # ---- properties (PyAV backend compatible) --------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def duration(self) -> float:
        return self._duration

    @property
    def metadata(self) -> Dict[str, Any]:
        """Container, streams, and the video and audio stream properties (see ``pyvideo info VIDEO``)."""
        return self._info

    @property
    def rate(self) -> Optional[float]:
        """Frames per second of the video stream."""
        return self._info["video"]["fps"] if self._info["video"] else None

    @property
    def bit_rate(self) -> Optional[int]:
        return self._info["video"]["bit_rate"] if self._info["video"] else None

    @property
    def pix_fmt(self) -> Optional[str]:
        return self._info["video"]["pixel_format"] if self._info["video"] else None

    @property
    def num_frames(self) -> int:
        return self._info["video"]["num_frames"] if self._info["video"] else 0

    @property
    def frame_seconds(self) -> List[float]:
        """Presentation time of every frame, from the packet index (no decoding)."""
        return self._decoder().frame_seconds()

    # ---- clips ---------------------------------------------------------------------------------------------------

    def get_clip(self, start_sec: float, end_sec: float) -> Dict[str, Optional[torch.Tensor]]:
        """Frames and audio samples whose time lies in ``[start_sec, end_sec)``. ``video`` is float32 [C, T, H, W]
        (0-255), or None when no frame falls in the range; ``audio`` is float32 [S] (mono) or [channels, S]."""
        start, end = self._check_range(start_sec, end_sec)
        video = None
        if self._decode_video and self._info["video"] is not None:
            frames = self._run(lambda decoder: decoder.frames_in_range(start, end))[0]
            # one copy that converts to float and lays C,T,H,W out contiguously (transforms index T fastest this way)
            video = (
                frames.permute(3, 0, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
                if frames.shape[0] > 0
                else None
            )
        audio = self.get_audio(start, end) if self._has_audio else None
        if audio is not None and audio.shape[-1] == 0:
            audio = None
        return {"video": video, "audio": audio}

    def get_frames_at(self, indices: Sequence[int], dtype: torch.dtype = torch.float32) -> Dict[str, Any]:
        """Frames by index (any order, repeats allowed) as ``{"video": [C, T, H, W], "frame_indices",
        "frame_seconds"}``; one sorted pass over the file decodes them all."""
        indices = [self._check_index(i) for i in indices]
        return self._frames_dict(self._run(lambda decoder: decoder.frames_at(indices)), dtype)

    def get_frames_at_times(self, seconds: Sequence[float], dtype: torch.dtype = torch.float32) -> Dict[str, Any]:
        """The frame on screen at each time (the last frame starting at or before it), same layout as
        :meth:`get_frames_at`. Times must lie in ``[0, duration of the video stream)``."""
        times = [self._check_time(t) for t in seconds]
        return self._frames_dict(self._run(lambda decoder: decoder.frames_at_times(times)), dtype)

    def get_audio(self, start_sec: float, end_sec: float) -> torch.Tensor:
        """Audio samples in ``[start_sec, end_sec)``: float32 [S] when mono, else [channels, S]."""
        start, end = self._check_range(start_sec, end_sec)
        if self._info["audio"] is None:
            raise native_decode().VideoDecodeError(f"{self._name} has no audio stream")
        with self._lock:
            self._require_open()
            if self._audio is None:
                self._audio = native_decode().AudioDecoder(self._source, name=self._name, **self._audio_options)
            capsule, _ = self._audio.samples_in_range(start, end)
        samples = _native.from_dlpack(capsule)
        return samples[0] if self._audio_options["mono"] else samples

    def close(self) -> None:
        with self._lock:
            self._video = None
            self._audio = None

    # ---- pickling: a DataLoader with the spawn start method sends datasets (and open videos) to workers --------

    def __getstate__(self) -> Dict[str, Any]:
        return {"source": self._source, "init_args": self._init_args}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["source"], **state["init_args"])

    # ---- helpers -------------------------------------------------------------------------------------------------

    def _decoder(self):
        self._require_open()
        if self._info["video"] is None:
            raise native_decode().VideoDecodeError(f"{self._name} has no video stream")
        return self._video

    def _require_open(self) -> None:
        if self._video is None:
            raise RuntimeError(f"{self._name} is closed")

    def _run(self, call):
        """Run a native frame request and adopt the frames as a [T, H, W, 3] uint8 tensor."""
        capsule, indices, seconds = call(self._decoder())
        return _native.from_dlpack(capsule), indices, seconds

    @staticmethod
    def _frames_dict(result, dtype: torch.dtype) -> Dict[str, Any]:
        frames, indices, seconds = result
        return {"video": thwc_to_cthw(frames).to(dtype), "frame_indices": torch.tensor(indices, dtype=torch.long),
                "frame_seconds": torch.tensor(seconds, dtype=torch.float64)}

    def _check_range(self, start_sec: float, end_sec: float):
        start, end = float(start_sec), float(end_sec)
        if math.isnan(start) or math.isnan(end):
            raise ValueError(f"{self._name}: clip bounds must be numbers, got [{start_sec}, {end_sec})")
        if start < 0:
            raise ValueError(f"{self._name}: clip start {start_sec} s is negative")
        if end < start:
            raise ValueError(f"{self._name}: clip end {end_sec} s is before its start {start_sec} s")
        return start, min(end, 1e15)

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not hasattr(index, "__index__"):  # ints, numpy ints, integer 0-d tensors
            raise TypeError(f"frame indices must be ints, not {type(index).__name__}")
        index = operator.index(index)
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame index {index} is out of range: {self._name} has {self.num_frames} frames")
        return index

    def _check_time(self, seconds: float) -> float:
        t = float(seconds)
        video_duration = self._info["video"]["duration"] if self._info["video"] else 0.0
        if not 0 <= t < video_duration:
            raise IndexError(f"time {seconds} s is outside [0, {video_duration}) s, the video of {self._name}")
        return t
