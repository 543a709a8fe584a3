"""A synthetic action-recognition dataset whose classes differ only by motion.

Every video shows one textured object on a random static background. Colour, shape, size, position,
background and clutter are drawn independently of the class, so no single frame tells the classes apart:
a model has to look at how the object moves (direction, rotation sense, speed, growth, periodic versus
one-shot). Videos are rendered with numpy and encoded to real MP4 files, laid out like Kinetics:

    OUT/<class_name>/<class_name>_<i>.mp4
    OUT/train.csv, OUT/val.csv      "relative/path.mp4 label" per line (pass video_path_prefix=OUT)
    OUT/classnames.json             {"class_name": label, ...} (as the tutorials' kinetics_classnames.json)
    OUT/ava_boxes.csv               (boxes=True) video_id,timestamp,x1,y1,x2,y2,action_id,person_id

The same seed gives the same dataset: each video draws from its own generator seeded with
(seed, class, index), so videos can be rendered in any order or in parallel.
"""
import csv
import json
import math
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Where the object is at one instant: centre (pixels), rotation (radians), scale factor."""

    x: float
    y: float
    angle: float
    scale: float


# A motion maps (progress u in [0,1], per-video random parameters) to a Pose. The frame is a torus (an object leaving
# one side re-enters on the other) and start positions are uniform on it, so the object's position in any frame has
# the same distribution for every class; rotation angles are uniform likewise. Sizes are log-uniform over a range
# wider than any growth, so the size in one frame says little about grow versus shrink.
@dataclass(frozen=True)
class Motion:
    name: str
    draw_parameters: Callable[[np.random.Generator, int, int], dict]
    pose: Callable[[float, dict], Pose]


def _anywhere(rng: np.random.Generator, height: int, width: int) -> dict:
    return dict(x0=rng.uniform(0, width), y0=rng.uniform(0, height), angle=rng.uniform(0, 2 * math.pi))


def _translation(dx: float, dy: float, distance: Tuple[float, float]) -> Motion:
    def draw(rng, height, width):
        return dict(_anywhere(rng, height, width), dist=rng.uniform(*distance) * min(height, width))

    return Motion("", draw, lambda u, p: Pose(p["x0"] + dx * u * p["dist"], p["y0"] + dy * u * p["dist"], p["angle"], 1.0))


def _rotation(sense: float) -> Motion:
    def draw(rng, height, width):
        return dict(_anywhere(rng, height, width), turn=rng.uniform(0.9, 1.3) * math.pi)

    return Motion("", draw, lambda u, p: Pose(p["x0"], p["y0"], p["angle"] + sense * u * p["turn"], 1.0))


def _growth(sign: float) -> Motion:
    """Scale exp(sign * g * (u - 1/2)): the growth is centred on the middle frame."""
    def draw(rng, height, width):
        return dict(_anywhere(rng, height, width), log_growth=rng.uniform(0.8, 1.1))

    return Motion("", draw, lambda u, p: Pose(p["x0"], p["y0"], p["angle"], math.exp(sign * p["log_growth"] * (u - 0.5))))


def _oscillation() -> Motion:
    def draw(rng, height, width):
        return dict(_anywhere(rng, height, width), amp=rng.uniform(0.15, 0.22) * min(height, width),
                    phase=rng.choice([0.0, math.pi]))

    return Motion(
        "", draw, lambda u, p: Pose(p["x0"] + p["amp"] * math.sin(4 * math.pi * u + p["phase"]), p["y0"], p["angle"], 1.0)
    )


def _named(name: str, motion: Motion) -> Motion:
    return Motion(name, motion.draw_parameters, motion.pose)


# Ordered so that the first K classes are the easiest K-way problem (demo uses few classes).
MOTIONS: List[Motion] = [
    _named("move_right", _translation(1, 0, (0.3, 0.45))),
    _named("move_left", _translation(-1, 0, (0.3, 0.45))),
    _named("move_up", _translation(0, -1, (0.3, 0.45))),
    _named("move_down", _translation(0, 1, (0.3, 0.45))),
    _named("rotate_clockwise", _rotation(+1.0)),
    _named("rotate_counterclockwise", _rotation(-1.0)),
    _named("grow", _growth(+1.0)),
    _named("shrink", _growth(-1.0)),
    _named("oscillate_horizontally", _oscillation()),
    _named("move_right_fast", _translation(1, 0, (0.65, 0.8))),
]
CLASS_NAMES: List[str] = [m.name for m in MOTIONS]
SHAPES = ("square", "disc", "triangle", "diamond")


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """Inside-test in the object's own (rotated, scaled) coordinates."""
    if shape == "square":
        return (np.abs(u) < radius * 0.8) & (np.abs(v) < radius * 0.8)
    if shape == "disc":
        return u * u + v * v < radius * radius
    if shape == "diamond":
        return np.abs(u) + np.abs(v) < radius
    # triangle pointing along +u
    return (u > -radius * 0.6) & (np.abs(v) < (radius - u) * 0.7)


def _random_colour(rng: np.random.Generator, avoid: np.ndarray, min_distance: float = 120.0) -> np.ndarray:
    for _ in range(100):
        colour = rng.integers(0, 256, size=3).astype(np.float32)
        if np.linalg.norm(colour - avoid) >= min_distance:
            return colour
    return 255.0 - avoid  # the complement is always far enough


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random two-colour gradient with static noise and a few static clutter blobs: H,W,3 float32."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(theta) * xx / width + np.sin(theta) * yy / height + 1.0) / 2.0
    c0, c1 = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    image = c0 + (c1 - c0) * ramp[..., None]
    image += rng.normal(0, rng.uniform(2, 12), size=(height, width, 1)).astype(np.float32)
    for _ in range(rng.integers(0, 3)):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.12) * min(height, width)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(0, 256, size=3)
    return image


def render_action_video(
    motion: Motion, rng: np.random.Generator, num_frames: int, height: int, width: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Render one video. Returns frames (T,H,W,3) uint8 and the object's boxes (T,4) as normalised x1,y1,x2,y2."""
    background = _background(rng, height, width)
    radius = math.exp(rng.uniform(math.log(0.09), math.log(0.2))) * min(height, width)
    colour = _random_colour(rng, background.mean(axis=(0, 1)))
    stripe = _random_colour(rng, colour)  # a contrasting stripe makes rotation visible on symmetric shapes
    shape = SHAPES[rng.integers(len(SHAPES))]
    params = motion.draw_parameters(rng, height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    boxes = np.zeros((num_frames, 4), np.float32)
    for t in range(num_frames):
        pose = motion.pose(t / max(num_frames - 1, 1), params)
        cx, cy = pose.x % width, pose.y % height
        # offsets to the nearest copy of the centre on the torus
        ox = (xx - cx + width / 2) % width - width / 2
        oy = (yy - cy + height / 2) % height - height / 2
        c, s = math.cos(pose.angle), math.sin(pose.angle)
        u, v = (c * ox + s * oy) / pose.scale, (-s * ox + c * oy) / pose.scale
        body = _shape_mask(shape, u, v, radius)
        frame = background.copy()
        frame[body] = colour
        frame[body & (u > 0) & (np.abs(v) < radius * 0.22)] = stripe
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
        boxes[t] = _visible_box(ox[0], oy[:, 0], body, cx, cy, width, height)
    return frames, boxes


def _visible_box(offset_x: np.ndarray, offset_y: np.ndarray, body: np.ndarray, cx: float, cy: float, width: int,
                 height: int) -> np.ndarray:
    """Normalised box of the object's extent around its centre, clipped to the frame: when the object wraps
    around a border, the part on the centre's side is boxed (an actor leaving the frame)."""
    cols, rows = np.nonzero(body.any(axis=0))[0], np.nonzero(body.any(axis=1))[0]
    if not len(cols):
        return np.zeros(4, np.float32)
    dx, dy = offset_x[cols], offset_y[rows]
    x1, x2 = max(0.0, cx + dx.min()), min(float(width), cx + dx.max() + 1)
    y1, y2 = max(0.0, cy + dy.min()), min(float(height), cy + dy.max() + 1)
    return np.array([x1 / width, y1 / height, x2 / width, y2 / height], np.float32)


def class_tone_hz(label: int) -> float:
    """The audio tone of a class: a semitone ladder from 220 Hz, so audio alone also predicts the class."""
    return 220.0 * 2 ** (label / 2.0)


def _encode_with_ffmpeg(path: Path, frames: np.ndarray, fps: float, tone_hz: Optional[float], audio_rate: int) -> None:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("pyvideo.synth needs the ffmpeg command-line tool to encode MP4 files (apt install ffmpeg)")
    t, h, w, _ = frames.shape
    cmd = [exe, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    if tone_hz is not None:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={tone_hz:.3f}:sample_rate={audio_rate}:duration={t / fps}"]
        cmd += ["-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-threads", "1", str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), check=True)


def _encode_native(path: Path, frames: np.ndarray, fps: float) -> None:
    """Encode with pyvideo's own FFmpeg binding (``pyvideo.data.utils.export_video_array``)."""
    import torch

    from pyvideo.data.utils import export_video_array

    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)  # C,T,H,W uint8
    export_video_array(video, str(path), fps, video_codec="libx264", pix_fmt="yuv420p",
                       options={"crf": "18", "preset": "veryfast", "threads": "1"})


ENCODERS = ("ffmpeg", "native")


def _encode(path: Path, frames: np.ndarray, fps: float, tone_hz: Optional[float], audio_rate: int, encoder: str) -> None:
    # the native writer has no audio track, so videos with audio always go through the ffmpeg tool
    if encoder == "native" and tone_hz is None:
        _encode_native(path, frames, fps)
    else:
        _encode_with_ffmpeg(path, frames, fps, tone_hz, audio_rate)


@dataclass
class SynthVideo:
    path: str  # relative to the dataset root
    label: int
    split: str
    boxes: np.ndarray  # T,4 normalised


def _write_one(root: Path, label: int, index: int, split: str, seed: int, num_frames: int, height: int, width: int,
               fps: float, audio: bool, audio_rate: int, encoder: str) -> SynthVideo:
    motion = MOTIONS[label]
    rng = np.random.default_rng([seed, label, index])
    frames, boxes = render_action_video(motion, rng, num_frames, height, width)
    relative = f"{motion.name}/{motion.name}_{index:04d}.mp4"
    _encode(root / relative, frames, fps, class_tone_hz(label) if audio else None, audio_rate, encoder)
    return SynthVideo(relative, label, split, boxes)


def _validate(num_classes: int, videos_per_class: int, num_frames: int, height: int, width: int, val_fraction: float):
    if not 2 <= num_classes <= len(MOTIONS):
        raise ValueError(f"num_classes must be in [2, {len(MOTIONS)}] (one per motion: {CLASS_NAMES}), got {num_classes}")
    if videos_per_class < 2:
        raise ValueError(f"videos_per_class must be >= 2 (at least one train and one val video), got {videos_per_class}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 for motion to exist, got {num_frames}")
    if height < 16 or width < 16 or height % 2 or width % 2:
        raise ValueError(f"height and width must be even and >= 16 (yuv420p), got {height}x{width}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")


def synthesize_action_dataset(
    out_dir,
    *,
    num_classes: int = 6,
    videos_per_class: int = 20,
    num_frames: int = 16,
    fps: float = 8.0,
    height: int = 64,
    width: int = 64,
    val_fraction: float = 0.25,
    seed: int = 0,
    audio: bool = False,
    audio_rate: int = 16000,
    boxes: bool = False,
    encoder: str = "ffmpeg",
    num_workers: Optional[int] = None,
) -> Dict[str, str]:
    """Write the dataset to ``out_dir`` (created; existing files are overwritten) and return its file paths.

    ``encoder``: "ffmpeg" (the command-line tool, one process per video, ``num_workers`` in parallel; the same
    seed gives byte-identical files) or "native" (``export_video_array`` in this process: faster, and byte-identical
    when encoding sequentially (``num_workers=1``); libx264 instances running in parallel threads of one process
    occasionally produce different bytes, so it is not the default).

    Each class keeps its last ``round(videos_per_class * val_fraction)`` (at least 1) videos for validation.
    """
    _validate(num_classes, videos_per_class, num_frames, height, width, val_fraction)
    root = Path(out_dir)
    for motion in MOTIONS[:num_classes]:
        (root / motion.name).mkdir(parents=True, exist_ok=True)
    num_val = max(1, round(videos_per_class * val_fraction))
    jobs = [
        (label, i, "val" if i >= videos_per_class - num_val else "train")
        for label in range(num_classes)
        for i in range(videos_per_class)
    ]
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    workers = num_workers or min(8, (os.cpu_count() or 1) * 2)  # encoding runs outside the GIL
    with ThreadPoolExecutor(max_workers=workers) as pool:
        videos = list(pool.map(
            lambda job: _write_one(root, *job, seed, num_frames, height, width, fps, audio, audio_rate, encoder), jobs))
    files = {}
    for split in ("train", "val"):
        files[split] = str(root / f"{split}.csv")
        with open(files[split], "w") as f:
            f.writelines(f"{v.path} {v.label}\n" for v in videos if v.split == split)
    files["classnames"] = str(root / "classnames.json")
    with open(files["classnames"], "w") as f:
        json.dump({name: i for i, name in enumerate(CLASS_NAMES[:num_classes])}, f, indent=1)
    if boxes:
        files["boxes"] = str(root / "ava_boxes.csv")
        _write_ava_boxes(files["boxes"], videos, fps)
    return files


def _write_ava_boxes(path: str, videos: Sequence[SynthVideo], fps: float) -> None:
    """One row per frame (the key frames): AVA's column order, action_id 1-based as in AVA, one actor (id 0)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        for video in videos:
            video_id = video.path[: -len(".mp4")]
            for t, box in enumerate(video.boxes):
                # the frame's presentation time, rounded to ms so that t / fps round-trips
                writer.writerow([video_id, f"{t / fps:.3f}", *(f"{c:.4f}" for c in box), video.label + 1, 0])


def read_ava_boxes(path) -> Dict[str, List[Tuple[float, Tuple[float, float, float, float], int, int]]]:
    """Read an AVA-format box csv into {video_id: [(timestamp, (x1,y1,x2,y2), action_id, person_id), ...]}."""
    table: Dict[str, list] = {}
    with open(path, newline="") as f:
        for row_number, row in enumerate(csv.reader(f), 1):
            if len(row) != 8:
                raise ValueError(f"{path}:{row_number}: expected 8 AVA columns, got {len(row)}: {row}")
            video_id, ts, x1, y1, x2, y2, action, person = row
            table.setdefault(video_id, []).append(
                (float(ts), (float(x1), float(y1), float(x2), float(y2)), int(action), int(person)))
    return table
