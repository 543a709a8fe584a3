"""FrameVideo on the native image decoder: bit-exact with FFmpeg's decode, clip bounds, ordering, bad input."""
import shutil
import subprocess

import numpy as np
import pytest
import torch

from pyvideo.data.frame_video import FrameVideo, load_images
from pyvideo.data.video import VideoPathHandler
from tests.data.decode_media import ffmpeg_rgb
from tests.helpers.synth import require_ffmpeg


def test_jpeg_frames_bit_exact_with_ffmpeg(shared_data):
    paths = sorted((shared_data / "frames").glob("img_*.jpg"))
    frames = load_images(paths, multithreaded=True)
    assert frames.shape == (10, 240, 320, 3) and frames.dtype == torch.uint8
    for i in (0, 9):
        np.testing.assert_array_equal(frames[i].numpy(), ffmpeg_rgb(paths[i])[0])


def test_png_frames_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 9, 13, 3), dtype=np.uint8)  # odd sizes on purpose
    # the ffmpeg tool writes the PNGs: an encoder independent of pyvideo
    subprocess.run([require_ffmpeg(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "13x9", "-i", "-",
                    str(tmp_path / "f%d.png")], input=images.tobytes(), check=True)
    paths = [tmp_path / f"f{i}.png" for i in range(1, 5)]
    np.testing.assert_array_equal(load_images(paths, multithreaded=False).numpy(), images)  # PNG is lossless


def test_directory_natural_order_and_clip_bounds(tmp_path, shared_data):
    source = sorted((shared_data / "frames").glob("img_*.jpg"))
    for i, path in enumerate(source):  # names whose plain sort differs from natural order
        shutil.copy(path, tmp_path / f"frame_{i + 1}.jpg")
    cache = {}
    video = FrameVideo.from_directory(tmp_path, fps=5, path_order_cache=cache)
    assert [p.rsplit("_", 1)[1] for p in cache[str(tmp_path)]] == [f"{i}.jpg" for i in range(1, 11)]
    assert video.duration == 2.0
    clip = video.get_clip(0.2, 1.0)  # indices ceil(1)..ceil(5)-1
    assert clip["frame_indices"] == [1, 2, 3, 4] and clip["audio"] is None
    reference = load_images(source, multithreaded=False)
    np.testing.assert_array_equal(clip["video"].permute(1, 2, 3, 0).numpy(), reference[1:5].float().numpy())
    filtered = video.get_clip(0, 2.0, frame_filter=lambda idx: idx[::3])
    assert filtered["frame_indices"] == [0, 3, 6, 9] and filtered["video"].shape[1] == 4
    assert video.get_clip(2.5, 3.0) is None
    with pytest.raises(ValueError, match="before its start"):
        video.get_clip(1.0, 0.5)
    assert isinstance(VideoPathHandler().video_from_path(tmp_path, fps=5), FrameVideo)


def test_bad_frames_raise_naming_the_file(tmp_path, shared_data):
    good = sorted((shared_data / "frames").glob("img_*.jpg"))[:2]
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good[0].read_bytes()[:200])
    from pyvideo.data.encoded_video_native import native_decode

    error = native_decode().VideoDecodeError
    with pytest.raises(error, match="notes.jpg"):
        load_images([good[0], text], num_retries=0)
    with pytest.raises(error, match="cut.jpg"):
        load_images([truncated, good[1]], num_retries=0)
    with pytest.raises(error, match="no such file"):
        load_images([tmp_path / "missing.jpg"], num_retries=0)
    small = tmp_path / "small.jpg"
    subprocess.run([require_ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "color=red:size=16x16", "-frames:v", "1",
                    str(small)], check=True)
    with pytest.raises(error, match="unlike"):
        load_images([good[0], small], num_retries=0)
    with pytest.raises(ValueError, match="empty"):
        FrameVideo.from_frame_paths([])
