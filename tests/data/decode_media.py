"""Media for the decoder tests: videos synthesised once per session, and FFmpeg's own decode of them.

FFmpeg's command-line tool is the independent reference: `ffmpeg -i V -f rawvideo -pix_fmt rgb24` gives every
frame in presentation order (`-fps_mode passthrough`: no frames dropped or duplicated, `-noautorotate`: frames as
stored), and ffprobe gives each frame's timestamp.
"""
import json
import subprocess
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from tests.helpers.synth import moving_square_frames, require_ffmpeg, write_video

# name -> (codec key in tests.helpers.synth, file extension, extra ffmpeg output arguments, frames, fps)
SYNTH_VIDEOS = {
    "h264_bframes_long_gop": ("h264_bframes", "mp4", [], 90, 30),
    "mpeg4_avi": ("mpeg4", "avi", ["-bf", "2"], 40, 25),
    "vp9_webm": ("vp9", "webm", [], 40, 25),
    "hevc_mkv": ("hevc", "mkv", [], 40, 25),
    "h264_10bit": ("h264", "mp4", ["-pix_fmt", "yuv420p10le"], 30, 25),
    "mjpeg_full_range": ("mjpeg", "avi", ["-pix_fmt", "yuvj422p"], 20, 25),
    "h264_bt709_yuv444": ("h264", "mkv", ["-pix_fmt", "yuv444p", "-colorspace", "bt709", "-color_range", "tv"], 20, 24),
    "h264_vfr": ("h264", "mkv", ["-vf", "setpts='(N+if(gt(N,20),N-20,0)*2)/25/TB'", "-fps_mode", "vfr"], 40, 25),
    "h264_rotated": ("h264", "mp4", [], 20, 25),  # display matrix added by with_display_rotation
}
ROTATED = {"h264_rotated": 90}


def synthesise(directory: Path) -> Dict[str, Path]:
    paths = {}
    for name, (codec, ext, extra, num_frames, fps) in SYNTH_VIDEOS.items():
        frames = moving_square_frames(num_frames, height=64, width=96, seed=len(name))
        paths[name] = write_video(directory / f"{name}.{ext}", frames, fps=fps, codec=codec, extra_args=extra)
        if name in ROTATED:
            paths[name] = with_display_rotation(paths[name], ROTATED[name])
    return paths


def with_display_rotation(path: Path, degrees: int) -> Path:
    """A copy of ``path`` whose stream carries a display matrix (FFmpeg 5 writes it only when remuxing)."""
    out = path.with_name(f"rotated_{path.name}")
    subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-i", str(path), "-c", "copy", "-metadata:s:v:0",
                    f"rotate={degrees}", str(out)], check=True)
    return out


def ffmpeg_rgb_autorotated(path: Path) -> np.ndarray:
    """Frames as the ffmpeg tool displays them (it applies the display matrix)."""
    raw = subprocess.run([require_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    info = ffprobe_streams(path, "v")[0]
    return np.frombuffer(raw, np.uint8).reshape(-1, info["width"], info["height"], 3)


def ffmpeg_rgb(path: Path, video_filter: Sequence[str] = ()) -> np.ndarray:
    """All frames as FFmpeg's CLI decodes them: [T, H, W, 3] uint8."""
    exe = require_ffmpeg()
    cmd = [exe, "-v", "error", "-noautorotate", "-i", str(path), *video_filter, "-an", "-fps_mode", "passthrough",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    size = ffprobe_streams(path, "v")[0]
    width, height = size["width"], size["height"]
    if video_filter:  # scaled: the size is in the filter
        width, height = (int(v) for v in video_filter[-1].split("=")[1].split(":")[:2])
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def ffprobe_streams(path: Path, selector: str) -> List[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", selector, "-show_streams", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["streams"]


def ffprobe_frame_times(path: Path) -> np.ndarray:
    """Presentation time of each video frame in presentation order, relative to the stream start. Streams whose
    packets carry no pts (AVI) are timed by their decode timestamps, frame i at i / fps, as pyvideo documents."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time,dts_time:stream=start_time", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    start = float(data["streams"][0].get("start_time", 0) or 0)
    packets = data["packets"]
    key = "pts_time" if all("pts_time" in p for p in packets) else "dts_time"
    return np.sort(np.array([float(p[key]) for p in packets])) - start


def ffmpeg_audio(path: Path, sample_rate: int = 0, mono: bool = True) -> np.ndarray:
    """The audio stream as float32 [channels, samples], by FFmpeg's CLI."""
    exe = require_ffmpeg()
    cmd = [exe, "-v", "error", "-i", str(path), "-vn"]
    if mono:
        cmd += ["-ac", "1"]
    if sample_rate:
        cmd += ["-ar", str(sample_rate)]
    cmd += ["-f", "f32le", "-"]
    raw = np.frombuffer(subprocess.run(cmd, check=True, capture_output=True).stdout, np.float32)
    channels = 1 if mono else ffprobe_streams(path, "a")[0]["channels"]
    return raw.reshape(-1, channels).T
