"""Videos stored as a folder of frame images (JPEG/PNG), decoded by pyvideo's native image decoder (no OpenCV)."""
import logging
import math
import os
import re
from typing import Callable, Dict, List, Optional

import torch

from pyvideo import _native
from pyvideo.data.utils import thwc_to_cthw
from pyvideo.data.video import Video

logger = logging.getLogger(__name__)


def _natural_key(text: str):
    """Sort key that orders embedded numbers numerically: img_2 < img_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class FrameVideo(Video):
    """A video given as frame images at a fixed frame rate; frame i lies at time i / fps.

    Args:
        duration: length in seconds.
        fps: frames per second.
        video_frame_to_path_fn: maps a frame index to its image path (alternative to video_frame_paths).
        video_frame_paths: the image path of every frame, in order.
        multithreaded_io: decode the images of a clip on several threads.
    """

    def __init__(self, duration: float, fps: float, video_frame_to_path_fn: Optional[Callable[[int], str]] = None,
                 video_frame_paths: Optional[List[str]] = None, multithreaded_io: bool = False) -> None:
        if (video_frame_to_path_fn is None) == (video_frame_paths is None):
            raise ValueError("give exactly one of video_frame_to_path_fn and video_frame_paths")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._duration = duration
        self._fps = fps
        self._multithreaded_io = multithreaded_io
        self._video_frame_paths = video_frame_paths
        self._video_frame_to_path_fn = video_frame_to_path_fn
        self._name = os.path.dirname(video_frame_paths[0]) if video_frame_paths else "<frames>"

    @classmethod
    def from_directory(cls, path, fps: float = 30.0, multithreaded_io: bool = False,
                       path_order_cache: Optional[Dict[str, List[str]]] = None) -> "FrameVideo":
        """All files of directory ``path`` in natural order ("img_2" before "img_10") as the frames."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"frame directory not found: {path}")
        if path_order_cache is not None and path in path_order_cache:
            return cls.from_frame_paths(path_order_cache[path], fps, multithreaded_io)
        frame_paths = [os.path.join(path, name) for name in sorted(os.listdir(path), key=_natural_key)]
        if not frame_paths:
            raise ValueError(f"frame directory {path} is empty")
        if path_order_cache is not None:
            path_order_cache[path] = frame_paths
        return cls.from_frame_paths(frame_paths, fps, multithreaded_io)

    @classmethod
    def from_frame_paths(cls, video_frame_paths: List[str], fps: float = 30.0,
                         multithreaded_io: bool = False) -> "FrameVideo":
        if not video_frame_paths:
            raise ValueError("video_frame_paths is empty")
        return cls(len(video_frame_paths) / fps, fps, video_frame_paths=list(video_frame_paths),
                   multithreaded_io=multithreaded_io)

    @property
    def name(self) -> str:
        return self._name

    @property
    def duration(self) -> float:
        return self._duration

    def _frame_path(self, index: int) -> str:
        if self._video_frame_to_path_fn is not None:
            return self._video_frame_to_path_fn(index)
        return self._video_frame_paths[index]

    def get_clip(self, start_sec: float, end_sec: float,
                 frame_filter: Optional[Callable[[List[int]], List[int]]] = None) -> Optional[Dict]:
        """Frames with index in [ceil(fps * start), ceil(fps * end)) as ``{"video": float32 [C, T, H, W],
        "frame_indices": [...], "audio": None}``; None when start lies outside [0, duration].
        ``frame_filter`` may pick a subset of the frame indices before any image is read."""
        if end_sec < start_sec:
            raise ValueError(f"{self._name}: clip end {end_sec} s is before its start {start_sec} s")
        if start_sec < 0 or start_sec > self._duration:
            logger.warning("no frames in %s for start %s s (duration %s s)", self._name, start_sec, self._duration)
            return None
        end_sec = min(end_sec, self._duration)
        first = math.ceil(self._fps * start_sec)
        stop = math.ceil(self._fps * end_sec)
        if self._video_frame_paths is not None:
            stop = min(stop, len(self._video_frame_paths))
        frame_indices = list(range(first, stop))
        if frame_filter is not None:
            frame_indices = frame_filter(frame_indices)
        paths = [self._frame_path(i) for i in frame_indices]
        frames = load_images(paths, multithreaded=self._multithreaded_io)
        return {"video": thwc_to_cthw(frames).to(torch.float32, memory_format=torch.contiguous_format), "frame_indices": frame_indices, "audio": None}


def load_images(image_paths: List[str], multithreaded: bool = True, num_retries: int = 3) -> torch.Tensor:
    """Decode JPEG/PNG files into a [T, H, W, 3] uint8 RGB tensor. A failing read is retried ``num_retries`` times
    (network file systems fail transiently), then raised as VideoDecodeError naming the file."""
    from pyvideo.data.encoded_video_native import native_decode

    decode = native_decode()
    paths = [os.fspath(p) for p in image_paths]
    threads = 0 if multithreaded else 1
    for attempt in range(num_retries):
        try:
            return _native.from_dlpack(decode.decode_image_files(paths, num_threads=threads))
        except decode.VideoDecodeError as error:
            logger.debug("image read failed (attempt %d): %s", attempt + 1, error)
    return _native.from_dlpack(decode.decode_image_files(paths, num_threads=threads))
