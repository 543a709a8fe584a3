"""Optical flow stored as frame folders of x/y component images (the denseflow/mmaction layout).

Frame i of a flow video is the pair ``x_{i}.jpg``/``y_{i}.jpg`` (prefixes configurable). Components
are quantised to 0..255 over [-bound, bound], so a pixel value p means a displacement of
p / 255 * 2 * bound - bound pixels. Clips are ``[2, T, H, W]`` float tensors (x then y), time
end-exclusive like video frames: frame i lies at i / fps seconds.
"""
import os
import re
from typing import Callable, Dict, List, Optional, Tuple

import torch

from .video import Video


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def flow_frame_paths(directory: str, x_prefix: str = "x_", y_prefix: str = "y_") -> Tuple[List[str], List[str]]:
    """Paired x/y frame paths of a flow folder, in natural order; every x frame must have its y frame."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory} not found or is not a directory")
    names = os.listdir(directory)
    x_suffixes = sorted((n[len(x_prefix):] for n in names if n.startswith(x_prefix)), key=_natural_key)
    y_suffixes = {n[len(y_prefix):] for n in names if n.startswith(y_prefix)}
    if not x_suffixes:
        raise ValueError(f"no flow frames named {x_prefix}* in {directory}")
    unpaired = sorted(set(x_suffixes) ^ y_suffixes)
    if unpaired:
        raise ValueError(f"{directory}: flow frames without their other component: {unpaired[:5]}")
    return ([os.path.join(directory, x_prefix + s) for s in x_suffixes],
            [os.path.join(directory, y_prefix + s) for s in x_suffixes])


def dequantize_flow(pixels: torch.Tensor, bound: float) -> torch.Tensor:
    """Pixel values 0..255 to displacements in [-bound, bound]."""
    return pixels / 255.0 * (2.0 * bound) - bound


class FlowVideo(Video):
    """A flow frame folder as a Video; ``get_clip`` returns ``{"video": flow [2, T, H, W], "audio": None,
    "frame_indices": [...]}`` so it drops into LabeledVideoDataset through ``FlowVideoPathHandler``."""

    def __init__(self, x_paths: List[str], y_paths: List[str], fps: float = 30.0, bound: float = 20.0) -> None:
        from .frame_video import FrameVideo

        if len(x_paths) != len(y_paths):
            raise ValueError(f"{len(x_paths)} x frames but {len(y_paths)} y frames")
        self._x = FrameVideo.from_frame_paths(x_paths, fps=fps)
        self._y = FrameVideo.from_frame_paths(y_paths, fps=fps)
        self._bound = bound
        self.name = os.path.basename(os.path.dirname(x_paths[0])) if x_paths else ""

    @classmethod
    def from_directory(cls, directory: str, fps: float = 30.0, bound: float = 20.0,
                       x_prefix: str = "x_", y_prefix: str = "y_") -> "FlowVideo":
        return cls(*flow_frame_paths(directory, x_prefix, y_prefix), fps=fps, bound=bound)

    @property
    def duration(self) -> float:
        return self._x.duration

    def get_clip(self, start_sec: float, end_sec: float,
                 frame_filter: Optional[Callable[[List[int]], List[int]]] = None) -> Dict[str, object]:
        x = self._x.get_clip(start_sec, end_sec, frame_filter)
        y = self._y.get_clip(start_sec, end_sec, frame_filter)
        if x is None or y is None or x["video"] is None or y["video"] is None:
            return {"video": None, "audio": None, "frame_indices": []}
        # grey JPEGs decode to three equal channels; keep one per component
        flow = torch.stack([x["video"].mean(0), y["video"].mean(0)])
        return {"video": dequantize_flow(flow, self._bound), "audio": None, "frame_indices": x["frame_indices"]}


class FlowVideoPathHandler:
    """Opens each dataset path (a flow folder) as a FlowVideo; set as ``dataset.video_path_handler``."""

    def __init__(self, fps: float = 30.0, bound: float = 20.0, x_prefix: str = "x_", y_prefix: str = "y_") -> None:
        self._options = dict(fps=fps, bound=bound, x_prefix=x_prefix, y_prefix=y_prefix)

    def video_from_path(self, filepath, decode_video: bool = True, decode_audio: bool = False,
                        decoder: str = "native", fps: Optional[float] = None) -> FlowVideo:
        return FlowVideo.from_directory(os.fspath(filepath), **self._options)
