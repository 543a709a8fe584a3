"""Bad input gives clear Python exceptions (never a crash, hang or silently wrong frames)."""
import math

import numpy as np
import pytest
import torch

from pyvideo.data.encoded_video import EncodedVideo
from pyvideo.data.encoded_video_native import EncodedVideoNative, native_decode
from tests.helpers.synth import moving_square_frames, write_video

DecodeError = native_decode().VideoDecodeError


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad_input") / "small.mp4"
    return write_video(path, moving_square_frames(30, 32, 48), fps=30, codec="h264",
                       extra_args=["-g", "10", "-movflags", "+faststart"])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        EncodedVideo.from_path(tmp_path / "missing.mp4")
    with pytest.raises(DecodeError, match="no such file"):
        EncodedVideoNative(str(tmp_path / "missing.mp4"))
    with pytest.raises(DecodeError, match="directory"):
        EncodedVideoNative(str(tmp_path))


def test_text_empty_and_garbage_files(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, message in [(text, "notes.mp4"), (empty, "empty")]:
        with pytest.raises(DecodeError, match=message):
            EncodedVideo.from_path(path)
    with pytest.raises(DecodeError, match="empty"):
        EncodedVideoNative(b"")
    with pytest.raises(TypeError):
        EncodedVideoNative(12345)


def test_decode_error_is_a_runtime_error():
    assert issubclass(DecodeError, RuntimeError)


def test_truncated_video(small_video, tmp_path):
    data = small_video.read_bytes()
    # faststart: the index comes first, so a cut file opens and keeps the frames it still holds
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    video = EncodedVideo.from_path(cut)
    full = EncodedVideo.from_path(small_video)
    n = video.num_frames
    assert 0 < n <= 30
    # every frame it does return equals the intact file's frame; frames lost to the cut are an error, not garbage
    try:
        clip = video.get_clip(0, video.duration)["video"]
        assert torch.equal(clip, full.get_clip(0, video.duration)["video"][:, : clip.shape[1]])
    except DecodeError as error:
        assert "cut.mp4" in str(error)
    # the index and header cut off: cannot open
    head = tmp_path / "head.mp4"
    head.write_bytes(data[:300])
    with pytest.raises(DecodeError, match="head.mp4"):
        EncodedVideo.from_path(head)


@pytest.mark.parametrize("start,end,error,message", [
    (-1.0, 1.0, ValueError, "negative"),
    (2.0, 1.0, ValueError, "before its start"),
    (float("nan"), 1.0, ValueError, "numbers"),
])
def test_absurd_ranges(small_video, start, end, error, message):
    video = EncodedVideo.from_path(small_video)
    with pytest.raises(error, match=message):
        video.get_clip(start, end)


def test_ranges_past_the_end_and_empty_ranges(small_video):
    video = EncodedVideo.from_path(small_video)
    assert video.get_clip(5.0, 6.0)["video"] is None  # after the end: no frames, as PyTorchVideo
    assert video.get_clip(0.5, 0.5)["video"] is None  # empty range
    assert video.get_clip(0.9, math.inf)["video"].shape[1] == 3  # open end: to the last frame


def test_absurd_indices_and_times(small_video):
    video = EncodedVideo.from_path(small_video)
    with pytest.raises(IndexError, match="30 frames"):
        video.get_frames_at([0, 30])
    with pytest.raises(IndexError):
        video.get_frames_at([-1])
    with pytest.raises(TypeError):
        video.get_frames_at([1.5])
    with pytest.raises(IndexError, match="outside"):
        video.get_frames_at_times([1.0])
    with pytest.raises(IndexError):
        video.get_frames_at_times([-0.1])
    assert video.get_frames_at([])["video"].shape[1] == 0
    # the decoder still works after the errors
    assert video.get_frames_at([29])["frame_indices"].tolist() == [29]


def test_bad_options(small_video):
    with pytest.raises(ValueError, match="interpolation"):
        EncodedVideoNative(str(small_video), interpolation="lanczos9")
    with pytest.raises(ValueError, match="width and height"):
        EncodedVideoNative(str(small_video), width=32)
    with pytest.raises(ValueError):
        EncodedVideoNative(str(small_video), num_threads=-2)
    with pytest.raises(ValueError, match="sample_rate"):
        native_decode().AudioDecoder(str(small_video), sample_rate=10**9)


def test_zero_length_video_stream(tmp_path):
    """A container whose video stream holds no packets."""
    import subprocess

    path = tmp_path / "zero.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=size=32x32:rate=25:duration=1", "-f", "lavfi",
                    "-i", "anullsrc=r=8000:cl=mono:d=1", "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
                    "-vf", "select=0", "-c:a", "pcm_s16le", "-t", "1", str(path)], check=True)
    with pytest.raises(DecodeError, match="no frames"):
        EncodedVideo.from_path(path)
    audio_only = EncodedVideo.from_path(path, decode_video=False)
    assert audio_only.get_clip(0, 0.5)["video"] is None


def test_random_corruption_of_real_video(shared_data):
    """Bytes flipped in the middle of a real video: every outcome is frames or a clear error."""
    data = bytearray((shared_data / "videos" / "mmaction2_tests_data_test.mp4").read_bytes())
    rng = np.random.default_rng(1)
    outcomes = {"frames": 0, "error": 0}
    for _ in range(6):
        corrupt = bytearray(data)
        for position in rng.integers(len(data) // 10, len(data), size=200):
            corrupt[position] = rng.integers(0, 256)
        try:
            video = EncodedVideoNative(bytes(corrupt), decode_audio=False)
            clip = video.get_clip(0, video.duration)["video"]
            assert clip is None or clip.shape[0] == 3
            outcomes["frames"] += 1
        except (DecodeError, ValueError, IndexError):
            outcomes["error"] += 1
    assert sum(outcomes.values()) == 6
