#!/usr/bin/env python
"""Benchmark: training-clip throughput of a DataLoader (batch 8, 2 workers) over a Kinetics-layout folder of
synthesised 340x256, 10 s, 30 fps H.264 videos, with create_video_transform("train"). The same dataset,
clip sampler and transform run twice: decoding with pyvideo's native decoder, and with PyAV the way
PyTorchVideo's EncodedVideoPyAV does it (file read into BytesIO, seek to start - 1024 pts, decode,
frame.to_rgb().to_ndarray(), keep start <= pts < end). A third row adds frames_per_clip=8, which yields the
same tensors while decoding only the 8 frames the transform keeps. Pipelines alternate; best round kept.

    .venv/bin/python bench/data.py [--videos 24] [--epochs 2] [--rounds 2] [--clip-duration 2.0]

PyAV is a benchmark-only dependency (pip install av); without it only the native row is printed.
"""
import argparse
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyvideo.benchmarks import machine  # noqa: E402
from pyvideo.data import Kinetics, make_clip_sampler  # noqa: E402
from pyvideo.transforms import create_video_transform  # noqa: E402


def synthesise_kinetics(root: str, num_videos: int, seconds: int = 10) -> None:
    """``root/<class>/<n>.mp4``: 340x256 30 fps H.264 (x264 defaults: B-frames, 250-frame GOP), like Kinetics."""
    for n in range(num_videos):
        folder = os.path.join(root, f"class_{n % 4}")
        os.makedirs(folder, exist_ok=True)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=340x256:rate=30:duration={seconds}",
             "-vf", f"hue=h={n * 37 % 360}", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
             os.path.join(folder, f"{n:03d}.mp4")],
            check=True,
        )


class PyAVVideo:
    """Decodes like PyTorchVideo's EncodedVideoPyAV (benchmark reference, not part of pyvideo)."""

    def __init__(self, path: str) -> None:
        import av

        with open(path, "rb") as f:
            self._container = av.open(io.BytesIO(f.read()))
        self._stream = self._container.streams.video[0]
        self.name = os.path.basename(path)
        base = self._stream.time_base
        self._time_base = float(base)
        self._start_pts = self._stream.start_time or 0
        self.duration = float(self._stream.duration * base)

    def get_clip(self, start_sec: float, end_sec: float):
        start_pts = math.ceil(float(start_sec) / self._time_base) + self._start_pts
        end_pts = math.ceil(float(end_sec) / self._time_base) + self._start_pts
        self._container.seek(max(start_pts - 1024, 0), any_frame=False, backward=True, stream=self._stream)
        frames = {}
        for frame in self._container.decode(self._stream):
            frames[frame.pts] = frame
            if frame.pts >= end_pts:
                break
        kept = [frames[pts].to_rgb().to_ndarray() for pts in sorted(frames) if start_pts <= pts < end_pts]
        if not kept:
            return {"video": None, "audio": None}
        video = torch.stack([torch.from_numpy(f) for f in kept]).permute(3, 0, 1, 2).to(torch.float32)
        return {"video": video, "audio": None}

    def close(self) -> None:
        self._container.close()


class PyAVPathHandler:
    def video_from_path(self, filepath, decode_video=True, decode_audio=False, decoder="pyav", fps=30):
        return PyAVVideo(os.fspath(filepath))


def train_transform():
    # decoded clips are float 0-255, so normalise with the mean/std scaled by 255 instead of converting uint8
    return create_video_transform(
        "train", video_key="video", num_samples=8, convert_to_float=False,
        video_mean=(0.45 * 255,) * 3, video_std=(0.225 * 255,) * 3,
    )


def clips_per_second(root: str, path_handler, epochs: int, clip_duration: float, frames_per_clip=None) -> tuple:
    torch.manual_seed(0)
    dataset = Kinetics(data_path=root, clip_sampler=make_clip_sampler("random", clip_duration),
                       transform=train_transform(), decode_audio=False, frames_per_clip=frames_per_clip)
    if path_handler is not None:
        dataset.video_path_handler = path_handler
    loader = DataLoader(dataset, batch_size=8, num_workers=2, persistent_workers=True)
    clips = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            assert batch["video"].shape[1:] == (3, 8, 224, 224)
            clips += batch["video"].shape[0]
    return clips, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clip-duration", type=float, default=2.0)
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    try:
        import av  # noqa: F401

        pipelines = {"PyAV (PyTorchVideo)": (PyAVPathHandler(), None)}
    except ImportError:
        print("PyAV not installed (pip install av): benchmarking the native decoder only")
        pipelines = {}
    pipelines["pyvideo native"] = (None, None)
    # same output tensors (tested): only the 8 frames UniformTemporalSubsample(8) keeps are decoded
    pipelines["native frames_per_clip=8"] = (None, 8)

    root = tempfile.mkdtemp(prefix="pyvideo-bench-kinetics-")
    try:
        synthesise_kinetics(root, args.videos)
        best = {name: None for name in pipelines}
        for _ in range(args.rounds):
            for name, (handler, frames_per_clip) in pipelines.items():
                clips, seconds = clips_per_second(root, handler, args.epochs, args.clip_duration, frames_per_clip)
                if best[name] is None or seconds < best[name][1]:
                    best[name] = (clips, seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"DataLoader batch 8, 2 workers, {args.videos} videos 340x256 10 s 30 fps H.264, random {args.clip_duration} s "
          f"clips, create_video_transform('train'), {args.epochs} epochs, best of {args.rounds} rounds, "
          f"torch threads {torch.get_num_threads()}")
    reference = best.get("PyAV (PyTorchVideo)")
    print(f"{'pipeline':<26}{'clips':>7}{'seconds':>10}{'clips/s':>10}{'vs PyAV':>10}")
    for name, (clips, seconds) in best.items():
        ratio = f"{(clips / seconds) / (reference[0] / reference[1]):.2f}x" if reference else "-"
        print(f"{name:<26}{clips:>7}{seconds:>10.2f}{clips / seconds:>10.1f}{ratio:>10}")


if __name__ == "__main__":
    main()
