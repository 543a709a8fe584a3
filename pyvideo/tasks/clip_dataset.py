"""A map-style dataset of labelled videos for the training tasks.

Each item is ``{"video": uint8 C,T,H,W (before the transform), "label": int, "video_index": int}``, the
input ``pyvideo.transforms.create_video_transform(..., video_key="video")`` expects. Videos are
decoded once (in parallel) and kept as uint8 in memory when ``cache=True``, which is what small datasets such
as the synthetic one want: the decoder then costs nothing after the first epoch.

Random augmentations are made reproducible per (seed, epoch, index): the transform runs under a forked torch RNG
seeded with those three numbers, so the result does not depend on DataLoader workers or on a resume point.
"""
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset


def read_labeled_csv(csv_path: str, video_path_prefix: str = "") -> List[Tuple[str, int]]:
    """Kinetics-style "path label" lines; the label is after the last whitespace so paths may contain spaces."""
    entries = []
    with open(csv_path) as f:
        for line_number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            path, _, label = line.rpartition(" ")
            if not path or not label.lstrip("-").isdigit():
                raise ValueError(f"{csv_path}:{line_number}: expected 'path label', got {line!r}")
            entries.append((str(Path(video_path_prefix) / path) if video_path_prefix else path, int(label)))
    if not entries:
        raise ValueError(f"{csv_path} lists no videos")
    return entries


def _decode_with_ffmpeg_cli(path: str) -> torch.Tensor:
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", path], capture_output=True, text=True)
    if probe.returncode != 0:
        raise RuntimeError(f"cannot read video {path}: {probe.stderr.strip()}")
    width, height = (int(v) for v in probe.stdout.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    return torch.from_numpy(frames.copy()).permute(3, 0, 1, 2)


def decode_video(path: str) -> torch.Tensor:
    """All frames of a video file as uint8 C,T,H,W (RGB)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        from pyvideo.data.encoded_video import EncodedVideo
    except ImportError:  # the native decoder is not built: fall back to the ffmpeg tool
        if shutil.which("ffmpeg") is None:
            raise RuntimeError("neither pyvideo's native decoder nor the ffmpeg tool is available to decode videos")
        return _decode_with_ffmpeg_cli(path)
    video = EncodedVideo.from_path(path, decode_audio=False)
    try:
        frames = video.get_clip(0, video.duration)["video"]
    finally:
        video.close()
    return frames.round().clamp(0, 255).to(torch.uint8) if frames.is_floating_point() else frames


class ClipDataset(Dataset):
    """Videos listed in a "path label" csv; ``transform`` maps the sample dict to the sample dict (like the
    dict transforms of PyTorchVideo's datasets, e.g. ``ApplyTransformToKey("video", ...)``)."""

    def __init__(self, csv_path: str, *, video_path_prefix: str = "", transform: Optional[Callable] = None,
                 cache: bool = True, seed: int = 0, decode_workers: int = 4):
        self.entries = read_labeled_csv(csv_path, video_path_prefix)
        self.transform, self.seed, self.epoch = transform, seed, 0
        self._cache: Optional[List[torch.Tensor]] = None
        if cache:
            with ThreadPoolExecutor(max_workers=decode_workers) as pool:
                self._cache = list(pool.map(decode_video, [p for p, _ in self.entries]))

    @property
    def labels(self) -> List[int]:
        return [label for _, label in self.entries]

    def raw_samples(self):
        """(whole video, label) pairs, the input of ``evaluate_multiview``."""
        return ((self.raw_video(i), label) for i, (_, label) in enumerate(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def raw_video(self, index: int) -> torch.Tensor:
        """The whole decoded video, uint8 C,T,H,W."""
        return self._cache[index] if self._cache is not None else decode_video(self.entries[index][0])

    def __getitem__(self, index: int) -> dict:
        sample = {"video": self.raw_video(index), "label": self.entries[index][1], "video_index": index}
        if self.transform is None:
            return sample
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_033 + index)
            return self.transform(sample)
