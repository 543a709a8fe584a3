"""The native decoder against FFmpeg's own decode: bit-exact RGB frames, timestamps, clip bounds, random access."""
import math

import numpy as np
import pytest
import torch

from pyvideo.data.encoded_video import EncodedVideo
from tests.data.decode_media import SYNTH_VIDEOS, ffmpeg_rgb, ffmpeg_rgb_autorotated, ffprobe_frame_times, synthesise

REAL_VIDEOS = ["mmaction2_demo_demo.mp4", "mmaction2_tests_data_test.mp4", "mmaction2_tests_data_test.avi"]


@pytest.fixture(scope="module")
def synth_videos(tmp_path_factory):
    return synthesise(tmp_path_factory.mktemp("decode_synth"))


def all_frames_thwc(video) -> np.ndarray:
    clip = video.get_frames_at(range(video.num_frames), dtype=torch.uint8)["video"]
    return clip.permute(1, 2, 3, 0).numpy()


@pytest.mark.parametrize("name", REAL_VIDEOS)
def test_real_videos_bit_exact_with_ffmpeg(shared_data, name):
    path = shared_data / "videos" / name
    video = EncodedVideo.from_path(path, decode_audio=False)
    expected = ffmpeg_rgb(path)
    assert video.num_frames == expected.shape[0]
    np.testing.assert_array_equal(all_frames_thwc(video), expected)


@pytest.mark.parametrize("name", sorted(SYNTH_VIDEOS))
def test_synthesised_videos_bit_exact_with_ffmpeg(synth_videos, name):
    path = synth_videos[name]
    video = EncodedVideo.from_path(path, decode_audio=False)
    expected = ffmpeg_rgb(path)
    assert video.num_frames == expected.shape[0] == SYNTH_VIDEOS[name][3]
    np.testing.assert_array_equal(all_frames_thwc(video), expected)
    # frame times are the container's presentation times
    np.testing.assert_allclose(video.frame_seconds, ffprobe_frame_times(path), atol=1e-6)


@pytest.mark.parametrize("name", ["h264_bframes_long_gop", "mpeg4_avi", "vp9_webm", "hevc_mkv", "h264_vfr"])
def test_random_access_equals_sequential(synth_videos, name):
    video = EncodedVideo.from_path(synth_videos[name], decode_audio=False)
    sequential = all_frames_thwc(video)
    rng = np.random.default_rng(0)
    for _ in range(4):
        indices = rng.integers(0, video.num_frames, size=7).tolist()  # unsorted, may repeat
        got = video.get_frames_at(indices, dtype=torch.uint8)
        assert got["frame_indices"].tolist() == indices
        np.testing.assert_array_equal(got["video"].permute(1, 2, 3, 0).numpy(), sequential[indices])
    # backwards, one at a time: every call seeks afresh
    for index in [video.num_frames - 1, video.num_frames // 2, 0]:
        frame = video.get_frames_at([index], dtype=torch.uint8)["video"][:, 0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(frame, sequential[index])


def test_batched_request_decodes_each_frame_once(synth_videos):
    """A sorted pass: a batch never decodes more frames than one forward run from the first keyframe needed, and
    B-frames no other frame refers to are skipped unless asked for."""
    video = EncodedVideo.from_path(synth_videos["h264_bframes_long_gop"], decode_audio=False)
    decoder = video._decoder()
    indices = [80, 10, 45, 10, 89]
    video.get_frames_at(indices)
    # long GOP (one keyframe at 0): one seek, then frames 0..89 decoded once each, at most
    assert decoder.seeks == 1
    assert decoder.frames_decoded < 90  # non-reference B-frames (x264 -bf 3) were skipped


def test_sequential_chunks_continue_without_seeking(synth_videos):
    """Reading a video in consecutive chunks decodes every frame once (frames read ahead are never skipped)."""
    video = EncodedVideo.from_path(synth_videos["h264_bframes_long_gop"], decode_audio=False)
    decoder = video._decoder()
    chunks = [video.get_frames_at(range(s, s + 10), dtype=torch.uint8)["video"] for s in range(0, 90, 10)]
    assert decoder.seeks == 1 and decoder.frames_decoded == 90
    reference = EncodedVideo.from_path(synth_videos["h264_bframes_long_gop"], decode_audio=False)
    np.testing.assert_array_equal(torch.cat(chunks, dim=1).permute(1, 2, 3, 0).numpy(), all_frames_thwc(reference))


def test_seeks_only_when_a_keyframe_saves_work(tmp_path):
    from tests.helpers.synth import moving_square_frames, write_video

    path = write_video(tmp_path / "gop10.mp4", moving_square_frames(60, 32, 48), fps=30, codec="h264",
                       extra_args=["-g", "10", "-bf", "2", "-sc_threshold", "0"])
    video = EncodedVideo.from_path(path, decode_audio=False)
    decoder = video._decoder()
    video.get_frames_at([41, 43])  # seek to keyframe 40, decode 40..43
    assert decoder.seeks == 1
    video.get_frames_at([47])  # same GOP, ahead: continue without seeking
    assert decoder.seeks == 1
    video.get_frames_at([55])  # keyframe 50 lies ahead: jump
    assert decoder.seeks == 2
    video.get_frames_at([12])  # behind: seek back
    assert decoder.seeks == 3


@pytest.mark.parametrize("name", ["h264_bframes_long_gop", "h264_vfr", "mpeg4_avi"])
def test_clip_holds_exactly_the_frames_in_half_open_range(synth_videos, name):
    video = EncodedVideo.from_path(synth_videos[name], decode_audio=False)
    times = np.asarray(video.frame_seconds)
    sequential = all_frames_thwc(video)
    n = len(times)
    for first, last in [(0, n), (3, 11), (n // 2, n // 2 + 1), (n - 5, n)]:
        start, end = times[first], (times[last] if last < n else video.duration)
        clip = video.get_clip(start, end)["video"]
        assert clip.dtype == torch.float32 and clip.shape[1] == last - first
        np.testing.assert_array_equal(clip.permute(1, 2, 3, 0).numpy(), sequential[first:last])
    # a range strictly between two frames holds none
    assert video.get_clip(times[1] + 1e-4, times[2] - 1e-4)["video"] is None


def test_frames_at_times_picks_the_frame_on_screen(synth_videos):
    video = EncodedVideo.from_path(synth_videos["h264_vfr"], decode_audio=False)
    times = np.asarray(video.frame_seconds)
    queries = [0.0, times[5], (times[30] + times[31]) / 2, times[-1] + 1e-3]
    got = video.get_frames_at_times(queries)["frame_indices"].tolist()
    assert got == [0, 5, 30, len(times) - 1]


def test_rotation_is_reported_and_frames_are_as_stored(synth_videos):
    """Frames come as stored; `rotation` is the clockwise turn that gives what the ffmpeg tool displays."""
    path = synth_videos["h264_rotated"]
    video = EncodedVideo.from_path(path, decode_audio=False)
    rotation = video.metadata["video"]["rotation"]
    assert rotation in (90, 270)  # FFmpeg 5's "rotate" tag convention decides which; a quarter turn either way
    stored = all_frames_thwc(video)
    assert stored.shape[1:3] == (64, 96)
    displayed = np.rot90(stored, k=-rotation // 90, axes=(1, 2))
    np.testing.assert_array_equal(displayed, ffmpeg_rgb_autorotated(path))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_fused_resize_matches_ffmpeg_scale(synth_videos, interpolation):
    path = synth_videos["h264_bframes_long_gop"]
    video = EncodedVideo.from_path(path, decode_audio=False, width=40, height=30, interpolation=interpolation)
    expected = ffmpeg_rgb(path, ["-sws_flags", interpolation, "-vf", "scale=40:30"])
    np.testing.assert_array_equal(all_frames_thwc(video), expected)


def test_short_side_resize_keeps_aspect(synth_videos):
    video = EncodedVideo.from_path(synth_videos["vp9_webm"], decode_audio=False, short_side=32)
    clip = video.get_clip(0, 0.2)["video"]
    assert clip.shape[2:] == (32, math.floor(96 * 32 / 64))


def test_metadata_matches_ffprobe(shared_data):
    video = EncodedVideo.from_path(shared_data / "videos" / "mmaction2_tests_data_test.avi")
    meta = video.metadata
    assert meta["video"]["codec"] == "mpeg4" and meta["video"]["num_frames"] == 164
    assert (meta["video"]["width"], meta["video"]["height"]) == (320, 240)
    assert meta["video"]["fps"] == 25.0
    assert meta["audio"]["codec"] == "mp3" and meta["audio"]["sample_rate"] == 44100
    assert meta["audio"]["channels"] == 2
    assert video.duration == pytest.approx(6.56, abs=1e-3)
