"""Synthesise small test videos with the ffmpeg command-line tool (installed by the Makefile).

Frames are generated with numpy, piped to ffmpeg as raw RGB, and encoded with the codec asked for.
The returned array holds exactly the frames that were fed in, so tests can compare decoded content
(lossy codecs: approximately) and frame counts/timestamps (exactly).
"""
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

CODEC_ARGS = {
    "h264": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"],
    "h264_bframes": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "3", "-g", "250", "-preset", "medium"],
    "mpeg4": ["-c:v", "mpeg4", "-q:v", "3"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"],
    "hevc": ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-x265-params", "log-level=error"],
    "mjpeg": ["-c:v", "mjpeg", "-q:v", "2"],
    "ffv1": ["-c:v", "ffv1"],  # lossless: decoded frames equal the input up to the rgb->yuv->rgb round trip
}


def require_ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        import pytest

        pytest.skip("ffmpeg command-line tool not installed (make test installs it)")
    return exe


def moving_square_frames(num_frames: int, height: int = 64, width: int = 80, seed: int = 0) -> np.ndarray:
    """T,H,W,3 uint8 frames: a coloured square moving right on a gradient, with a frame counter encoded in brightness."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 64)], -1)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    colour = rng.integers(64, 256, size=3)
    side = max(4, min(height, width) // 4)
    for t in range(num_frames):
        f = base.copy()
        x0 = (t * 3) % max(width - side, 1)
        y0 = (height - side) // 2
        f[y0 : y0 + side, x0 : x0 + side] = colour
        f[:4, :4] = (t * 7) % 256  # corner block: per-frame identity
        frames[t] = f
    return frames


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float = 25,
    codec: str = "h264",
    extra_args: Sequence[str] = (),
    audio_hz: Optional[int] = None,
    audio_tone: float = 440.0,
) -> Path:
    """Encode ``frames`` (T,H,W,3 uint8) to ``path``; optionally add a sine audio track of the same duration."""
    exe = require_ffmpeg()
    t, h, w, _ = frames.shape
    cmd = [exe, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    if audio_hz:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={audio_tone}:sample_rate={audio_hz}:duration={t / fps}"]
        cmd += ["-c:a", "aac" if str(path).endswith((".mp4", ".mov", ".mkv")) else "pcm_s16le"]
    cmd += CODEC_ARGS[codec] + list(extra_args) + [str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), check=True)
    return Path(path)
