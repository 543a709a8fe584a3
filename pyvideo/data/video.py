"""The Video abstraction shared by encoded files and frame folders, and the handler that opens either."""
import os
from abc import ABC, abstractmethod
from typing import Dict, Optional

import torch


class Video(ABC):
    """A video that yields clips by time. Clips are end-exclusive: ``get_clip(start, end)`` holds the frames whose
    presentation time ``t`` satisfies ``start <= t < end``."""

    @property
    @abstractmethod
    def duration(self) -> float:
        """Duration of the video in seconds."""

    @abstractmethod
    def get_clip(self, start_sec: float, end_sec: float) -> Dict[str, Optional[torch.Tensor]]:
        """``{"video": float32 [C, T, H, W] or None, "audio": float32 [S] or None}`` for ``[start_sec, end_sec)``."""

    def close(self) -> None:
        """Release the decoder's resources (files, threads). Optional."""


class VideoPathHandler:
    """Opens a path as a Video: a file as an EncodedVideo, a directory of frame images as a FrameVideo.
    The sorted frame list of each directory is cached per handler."""

    def __init__(self) -> None:
        self.path_order_cache: Dict[str, list] = {}

    def video_from_path(self, filepath, decode_video: bool = True, decode_audio: bool = False, decoder: str = "pyav",
                        fps: int = 30) -> Video:
        path = os.fspath(filepath)
        if os.path.isfile(path):
            from pyvideo.data.encoded_video import EncodedVideo

            return EncodedVideo.from_path(path, decode_video=decode_video, decode_audio=decode_audio, decoder=decoder)
        if os.path.isdir(path):
            from pyvideo.data.frame_video import FrameVideo

            return FrameVideo.from_directory(path, fps=fps, path_order_cache=self.path_order_cache)
        raise FileNotFoundError(f"{path} not found.")
