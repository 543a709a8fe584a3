#!/usr/bin/env python
"""Benchmark: video decoding for training, pyvideo's native decoder vs PyAV (as PyTorchVideo uses it), decord
and torchcodec (where installed; benchmark-only dependencies). Printed as one table with ratios to PyAV.

Tasks, on the real videos in ../shared/data and a synthesised 1280x720 30 s H.264 video (x264 defaults:
B-frames, 250-frame GOP):
  (a) decode all frames in order                                   -> frames/s
  (b) open the file, take 8 frames spread uniformly over a random 2 s window (a training loader's clip)
                                                                    -> clips/s
  (c) as (b), resized to short side 256 and centre-cropped to 224   -> clips/s
PyAV follows PyTorchVideo's EncodedVideoPyAV: seek to start - 1024 pts, decode the window, frame.to_rgb() for
every frame, then pick 8 (UniformTemporalSubsample), resizing with torch (ShortSideScale). The native decoder
asks for the 8 frame times directly (get_frames_at_times), resizing inside the colour conversion.
Each cell runs for --seconds of wall time; decoder threads are set by --threads (PyAV keeps its default).

    .venv/bin/python bench/decode.py [--seconds 3] [--threads 1] [--skip-720p]
"""
import argparse
import io
import math
import os
import random
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyvideo.data.encoded_video_native import EncodedVideoNative  # noqa: E402
from pyvideo.benchmarks import machine

SHARED_VIDEOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                             "videos")
NUM_FRAMES, WINDOW, SHORT_SIDE, CROP = 8, 2.0, 256, 224


def synthesise_720p(directory: str) -> str:
    path = os.path.join(directory, "synth_1280x720_30s.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=30",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", path], check=True)
    return path


def window_times(duration: float, rng: random.Random):
    start = rng.uniform(0, max(duration - WINDOW, 0))
    return start, [start + WINDOW * (k + 0.5) / NUM_FRAMES for k in range(NUM_FRAMES)]


def resize_crop(clip: torch.Tensor) -> torch.Tensor:
    """[C, T, H, W] float -> short side 256 (bilinear, as ShortSideScale) -> centre crop 224."""
    c, t, h, w = clip.shape
    size = (SHORT_SIDE, math.floor(w * SHORT_SIDE / h)) if h <= w else (math.floor(h * SHORT_SIDE / w), SHORT_SIDE)
    clip = torch.nn.functional.interpolate(clip, size=size, mode="bilinear", align_corners=False)
    return centre_crop(clip)


def centre_crop(clip: torch.Tensor) -> torch.Tensor:
    h, w = clip.shape[-2:]
    top, left = (h - CROP) // 2, (w - CROP) // 2
    return clip[..., top:top + CROP, left:left + CROP]


# ---- backends: each gives (decode_all(path, budget) -> frames, clip(path, rng, resize) -> tensor) ------------------

class Native:
    name = "pyvideo native"

    def __init__(self, threads):
        self.threads = threads

    def decode_all(self, path, deadline):
        video = EncodedVideoNative(path, decode_audio=False, num_threads=self.threads)
        frames, start = 0, 0.0
        while start < video.duration and time.perf_counter() < deadline:
            clip = video.get_frames_at(range(frames, min(frames + 30, video.num_frames)), dtype=torch.uint8)
            frames += clip["video"].shape[1]
            start += 1
            if frames >= video.num_frames:
                break
        return frames

    def clip(self, path, rng, resize):
        video = EncodedVideoNative(path, decode_audio=False, num_threads=self.threads,
                                   short_side=SHORT_SIDE if resize else None)
        _, times = window_times(video.duration, rng)
        times = [min(t, video.frame_seconds[-1]) for t in times]
        clip = video.get_frames_at_times(times)["video"]
        return centre_crop(clip) if resize else clip


class PyAV:
    name = "PyAV (PyTorchVideo way)"

    def __init__(self, threads):
        import av

        self.av = av

    def decode_all(self, path, deadline):
        frames = 0
        with self.av.open(path) as container:
            for frame in container.decode(video=0):
                frame.to_rgb().to_ndarray()
                frames += 1
                if time.perf_counter() > deadline:
                    break
        return frames

    def clip(self, path, rng, resize):
        with open(path, "rb") as f:
            container = self.av.open(io.BytesIO(f.read()))
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base)
        start, _ = window_times(duration, rng)
        origin = stream.start_time or 0
        start_pts = origin + math.ceil(start / stream.time_base)
        end_pts = origin + math.ceil((start + WINDOW) / stream.time_base)
        container.seek(int(max(start_pts - 1024, origin)), backward=True, stream=stream)
        frames = []
        for frame in container.decode(stream):
            if frame.pts >= end_pts:
                break
            if frame.pts >= start_pts:
                frames.append(torch.from_numpy(frame.to_rgb().to_ndarray()))
        container.close()
        clip = torch.stack(frames).permute(3, 0, 1, 2).float()
        picks = torch.linspace(0, clip.shape[1] - 1, NUM_FRAMES).long()  # UniformTemporalSubsample
        clip = clip[:, picks]
        return resize_crop(clip) if resize else clip


class Decord:
    name = "decord"

    def __init__(self, threads):
        import decord

        self.decord = decord
        self.threads = threads

    def decode_all(self, path, deadline):
        reader = self.decord.VideoReader(path, num_threads=self.threads)
        frames = 0
        for start in range(0, len(reader), 30):
            reader.get_batch(list(range(start, min(start + 30, len(reader))))).asnumpy()
            frames += min(30, len(reader) - start)
            if time.perf_counter() > deadline:
                break
        return frames

    def clip(self, path, rng, resize):
        kwargs = {}
        if resize:
            probe = self.decord.VideoReader(path, num_threads=1)
            h, w = probe[0].shape[:2]
            kwargs = dict(height=SHORT_SIDE, width=math.floor(w * SHORT_SIDE / h)) if h <= w else dict(
                width=SHORT_SIDE, height=math.floor(h * SHORT_SIDE / w))
        reader = self.decord.VideoReader(path, num_threads=self.threads, **kwargs)
        fps = reader.get_avg_fps()
        _, times = window_times(len(reader) / fps, rng)
        indices = [min(int(t * fps), len(reader) - 1) for t in times]
        clip = torch.from_numpy(reader.get_batch(indices).asnumpy()).permute(3, 0, 1, 2).float()
        return centre_crop(clip) if resize else clip


class TorchCodec:
    name = "torchcodec"

    def __init__(self, threads):
        from torchcodec.decoders import VideoDecoder

        self.decoder_cls = VideoDecoder
        self.threads = threads

    def decode_all(self, path, deadline):
        decoder = self.decoder_cls(path, num_ffmpeg_threads=self.threads)
        frames = 0
        for start in range(0, len(decoder), 30):
            decoder.get_frames_in_range(start, min(start + 30, len(decoder)))
            frames += min(30, len(decoder) - start)
            if time.perf_counter() > deadline:
                break
        return frames

    def clip(self, path, rng, resize):
        decoder = self.decoder_cls(path, num_ffmpeg_threads=self.threads, seek_mode="exact")
        duration = decoder.metadata.duration_seconds
        _, times = window_times(duration, rng)
        clip = decoder.get_frames_played_at([min(t, duration - 1e-3) for t in times]).data.permute(1, 0, 2, 3).float()
        return resize_crop(clip) if resize else clip


def available_backends(threads):
    backends = [Native(threads)]
    for cls in (PyAV, Decord, TorchCodec):
        try:
            backends.append(cls(threads))
        except (ImportError, OSError, RuntimeError) as error:
            print(f"# {cls.name}: not available ({type(error).__name__}: {str(error).splitlines()[0][:80]})")
    return backends


def rate(task, seconds):
    """Runs `task` (returning units done) repeatedly for `seconds`; units per second."""
    task(time.perf_counter() + 0.2)  # warm-up: page cache, codec init
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += task(start + seconds)
    return done / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per cell")
    parser.add_argument("--threads", type=int, default=1, help="decoder threads (native, decord, torchcodec)")
    parser.add_argument("--skip-720p", action="store_true")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    torch.set_num_threads(1)
    backends = available_backends(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        videos = sorted(os.path.join(SHARED_VIDEOS, f) for f in os.listdir(SHARED_VIDEOS)
                        if f.endswith((".mp4", ".avi"))) if os.path.isdir(SHARED_VIDEOS) else []
        if not args.skip_720p:
            videos.append(synthesise_720p(tmp))
        header = f"{'video':32} {'task':22} " + " ".join(f"{b.name:>24}" for b in backends)
        print(header + "\n" + "-" * len(header))
        for path in videos:
            tasks = {
                "(a) all frames, fr/s": lambda b, p=path: rate(lambda deadline: b.decode_all(p, deadline), args.seconds),
                "(b) 8 of 2 s, clips/s": lambda b, p=path: rate(
                    lambda _, r=random.Random(0): (b.clip(p, r, False), 1)[1], args.seconds),
                "(c) + resize/crop, c/s": lambda b, p=path: rate(
                    lambda _, r=random.Random(0): (b.clip(p, r, True), 1)[1], args.seconds),
            }
            for task_name, task in tasks.items():
                rates = {b.name: task(b) for b in backends}
                baseline = rates.get(PyAV.name)
                cells = []
                for b in backends:
                    ratio = f" ({rates[b.name] / baseline:4.1f}x)" if baseline else ""
                    cells.append(f"{rates[b.name]:>16.1f}{ratio:>8}")
                print(f"{os.path.basename(path)[:32]:32} {task_name:22} " + " ".join(cells), flush=True)
    print(f"\nthreads={args.threads} (PyAV: its defaults); ratios are relative to PyAV")


if __name__ == "__main__":
    main()
