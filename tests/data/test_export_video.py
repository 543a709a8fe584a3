"""export_video_array writes real, decodable videos with FFmpeg's encoders; utils timestamp helpers."""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from pyvideo.data.encoded_video import EncodedVideo
from pyvideo.data.utils import export_video_array, pts_to_secs, secs_to_pts, thwc_to_cthw
from tests.data.decode_media import ffmpeg_rgb, ffprobe_streams
from tests.helpers.synth import moving_square_frames


def clip_cthw(num_frames=12, height=48, width=64) -> torch.Tensor:
    return thwc_to_cthw(torch.from_numpy(moving_square_frames(num_frames, height, width)))


@pytest.mark.parametrize("codec,ext,tolerance", [("mpeg4", "mp4", 12), ("h264", "mp4", 12), ("ffv1", "mkv", 3)])
def test_export_round_trip(tmp_path, codec, ext, tolerance):
    clip = clip_cthw()
    path = tmp_path / f"out.{ext}"
    export_video_array(clip, str(path), rate=12, video_codec=codec)
    stream = ffprobe_streams(path, "v")[0]
    assert stream["codec_name"] == codec and (stream["width"], stream["height"]) == (64, 48)
    video = EncodedVideo.from_path(path, decode_audio=False)
    assert video.num_frames == 12 and video.duration == pytest.approx(1.0, abs=1e-6)
    decoded = video.get_clip(0, video.duration)["video"]
    assert decoded.shape == clip.shape
    # lossy codecs: close on average; ffv1 is lossless up to the rgb -> yuv420p -> rgb round trip
    assert (decoded - clip.float()).abs().mean().item() < tolerance
    np.testing.assert_array_equal(decoded.permute(1, 2, 3, 0).numpy(), ffmpeg_rgb(path))


def test_export_float_input_bgr_order_and_resize(tmp_path):
    clip = clip_cthw().float()
    path = tmp_path / "bgr.mkv"
    export_video_array(clip.flip(0), str(path), rate=Fraction(25, 1), in_format="bgr24", video_codec="ffv1",
                       height=24, width=32, pix_fmt="yuv444p")
    stream = ffprobe_streams(path, "v")[0]
    assert (stream["width"], stream["height"], stream["pix_fmt"]) == (32, 24, "yuv444p")
    decoded = EncodedVideo.from_path(path, decode_audio=False).get_clip(0, 10)["video"]
    reference = torch.nn.functional.interpolate(clip.permute(1, 0, 2, 3), size=(24, 32), mode="area")
    assert (decoded.permute(1, 0, 2, 3) - reference).abs().mean().item() < 6  # channels back in RGB order


def test_export_codec_options_and_bit_rate(tmp_path):
    clip = clip_cthw(24)
    small, large = tmp_path / "small.mp4", tmp_path / "large.mp4"
    export_video_array(clip, str(small), rate=24, video_codec="h264", options={"crf": "45"})
    export_video_array(clip, str(large), rate=24, video_codec="h264", options={"crf": "5"})
    assert small.stat().st_size < large.stat().st_size


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(video_codec="no_such_codec"), ValueError),
        (dict(in_format="yuv420p"), ValueError),
        (dict(rate=0), ValueError),
    ],
)
def test_export_bad_arguments(tmp_path, kwargs, error):
    args = dict(rate=10)
    args.update(kwargs)
    with pytest.raises(error):
        export_video_array(clip_cthw(2), str(tmp_path / "x.mp4"), **args)


def test_export_bad_shape_and_unwritable_path(tmp_path):
    with pytest.raises(ValueError, match="C=3"):
        export_video_array(torch.zeros(4, 2, 8, 8), str(tmp_path / "x.mp4"), rate=10)
    with pytest.raises(RuntimeError, match="cannot write"):
        export_video_array(clip_cthw(2), str(tmp_path / "missing_dir" / "x.mp4"), rate=10)


@pytest.mark.parametrize("height,width", [(48, 64), (37, 45)])
def test_export_is_deterministic_for_any_size(tmp_path, height, width):
    """The same clip gives the same file every time, odd sizes included (the encoder input's row padding used to be
    uninitialised memory that swscale reads)."""
    clip = torch.randint(0, 256, (3, 5, height, width), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    files = []
    for i in range(3):
        path = tmp_path / f"run{i}.mp4"
        export_video_array(clip, str(path), rate=10)
        files.append(path.read_bytes())
    assert files[0] == files[1] == files[2]


def test_secs_pts_round_trip():
    time_base = Fraction(1, 15360)
    assert secs_to_pts(1.0, time_base, 0) == 15360
    assert secs_to_pts(1 / 3, time_base, 100, round_mode="ceil") == 100 + math.ceil(15360 / 3)
    assert secs_to_pts(1 / 3, time_base, 100, round_mode="floor") == 100 + math.floor(15360 / 3)
    assert secs_to_pts(math.inf, time_base, 0) == math.inf
    assert pts_to_secs(15360 + 512, time_base, 512) == 1
    assert pts_to_secs(math.inf, time_base, 0) == math.inf
    with pytest.raises(ValueError, match="round_mode"):
        secs_to_pts(1.0, time_base, 0, round_mode="nearest")


def test_thwc_to_cthw_is_a_view():
    x = torch.arange(2 * 3 * 4 * 3).reshape(2, 3, 4, 3)
    y = thwc_to_cthw(x)
    assert y.shape == (3, 2, 3, 4) and y[1, 0, 2, 3] == x[0, 2, 3, 1] and y.data_ptr() == x.data_ptr()
    with pytest.raises(ValueError):
        thwc_to_cthw(torch.zeros(2, 3))
