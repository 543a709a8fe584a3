"""EncodedVideo API: decoder names, bytes input, audio, VideoPathHandler, the PyAV reference backend, metadata CLI."""
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from pyvideo.data.decoder import DecoderType
from pyvideo.data.encoded_video import EncodedVideo, select_video_class, video_metadata
from pyvideo.data.encoded_video_native import EncodedVideoNative
from pyvideo.data.video import Video, VideoPathHandler
from tests.data.decode_media import ffmpeg_audio
from tests.helpers.synth import moving_square_frames, write_video

AVI = "mmaction2_tests_data_test.avi"


@pytest.fixture(scope="module")
def video_with_audio(tmp_path_factory):
    """2 s, 25 fps, with a 440 Hz sine at 16 kHz as PCM (lossless, so sample values can be compared exactly)."""
    path = tmp_path_factory.mktemp("decode_api") / "tone.mkv"
    frames = moving_square_frames(50, 32, 48)
    return write_video(path, frames, fps=25, codec="mpeg4", audio_hz=16000,
                       extra_args=["-c:a", "pcm_s16le", "-ac", "2"])


def test_decoder_names_route_to_native():
    for name in ("native", "pyav", "torchvision", DecoderType.NATIVE):
        assert select_video_class(name) is EncodedVideoNative
    with pytest.warns(DeprecationWarning, match="decord"):
        assert select_video_class("decord") is EncodedVideoNative
    with pytest.raises(ValueError, match="unknown decoder 'ffmpeg-cli'"):
        select_video_class("ffmpeg-cli")


def test_decord_style_arguments_are_accepted(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        video = EncodedVideo.from_path(shared_data / "videos" / AVI, decoder="decord", width=-1, height=-1,
                                       num_threads=0, fault_tol=-1, sample_rate=16000, mono=True)
    clip = video.get_clip(0, 1)
    assert clip["video"].shape == (3, 25, 240, 320)
    assert clip["audio"].shape == (16000,)
    with pytest.raises(TypeError):
        EncodedVideo.from_path(shared_data / "videos" / AVI, no_such_option=1)


def test_bytes_and_file_objects_decode_like_the_path(shared_data):
    path = shared_data / "videos" / "mmaction2_tests_data_test.mp4"
    data = path.read_bytes()
    from_path = EncodedVideoNative(str(path), decode_audio=False).get_clip(2, 3)["video"]
    for source in (data, io.BytesIO(data), bytearray(data)):
        video = EncodedVideoNative(source, video_name="clip.mp4", decode_audio=False)
        assert video.name == "clip.mp4" and video.num_frames == 300
        assert torch.equal(video.get_clip(2, 3)["video"], from_path)


def test_audio_matches_ffmpeg_exactly_for_pcm(video_with_audio):
    video = EncodedVideo.from_path(video_with_audio, decode_video=False)
    expected = ffmpeg_audio(video_with_audio, mono=True)[0]
    full = video.get_clip(0, video.duration)["audio"]
    assert full.dtype == torch.float32 and full.shape == (32000,) == expected.shape
    np.testing.assert_allclose(full.numpy(), expected, atol=1e-6)
    # a window is samples ceil(start*R) .. ceil(end*R)-1, identical to the slice of the full decode
    window = video.get_clip(0.73, 1.2)["audio"]
    np.testing.assert_array_equal(window.numpy(), full[11680:19200].numpy())
    stereo = EncodedVideoNative(str(video_with_audio), decode_video=False, mono=False).get_audio(0, 2)
    np.testing.assert_allclose(stereo.numpy(), ffmpeg_audio(video_with_audio, mono=False), atol=1e-6)


def test_audio_resampled_like_ffmpeg(shared_data):
    path = shared_data / "videos" / AVI
    video = EncodedVideoNative(str(path), decode_video=False, sample_rate=16000)
    got = video.get_clip(0, video.duration)["audio"].numpy()
    expected = ffmpeg_audio(path, sample_rate=16000, mono=True)[0]
    assert abs(got.shape[0] - expected.shape[0]) <= 16  # the tool pads its last frame differently
    n = min(got.shape[0], expected.shape[0])
    np.testing.assert_allclose(got[:n], expected[:n], atol=1e-4)
    # random access: a window decoded after a seek equals the same samples of the full decode
    window = video.get_audio(3.0, 3.5).numpy()
    np.testing.assert_allclose(window, got[48000:56000], atol=2e-3)


def test_mp3_audio_matches_ffmpeg(shared_data):
    path = shared_data / "videos" / AVI
    video = EncodedVideo.from_path(path)
    audio = video.get_clip(0, video.duration)["audio"].numpy()
    expected = ffmpeg_audio(path, mono=True)[0]
    assert audio.shape[0] == expected.shape[0]
    np.testing.assert_allclose(audio, expected, atol=1e-6)


def test_video_path_handler_and_abc(shared_data):
    handler = VideoPathHandler()
    video = handler.video_from_path(shared_data / "videos" / AVI, decode_audio=True)
    assert isinstance(video, Video) and isinstance(video, EncodedVideo)
    assert video.get_clip(0, 0.5)["audio"] is not None
    with pytest.raises(FileNotFoundError):
        handler.video_from_path(shared_data / "videos" / "missing.mp4")
    with pytest.raises(TypeError):
        Video()  # abstract


def test_audio_only_and_video_only_files(video_with_audio, tmp_path):
    audio_only = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video_with_audio), "-vn", str(audio_only)], check=True)
    video = EncodedVideo.from_path(audio_only)
    assert video.duration == pytest.approx(2.0, abs=1e-3)
    clip = video.get_clip(0, 1)
    assert clip["video"] is None and clip["audio"].shape == (16000,)
    silent = write_video(tmp_path / "silent.mp4", moving_square_frames(5, 16, 16), codec="h264")
    assert EncodedVideo.from_path(silent).get_clip(0, 1)["audio"] is None


def test_close_then_use_raises(shared_data):
    video = EncodedVideo.from_path(shared_data / "videos" / AVI)
    video.close()
    with pytest.raises(RuntimeError, match="closed"):
        video.get_clip(0, 1)


def test_video_metadata_and_cli(shared_data):
    path = shared_data / "videos" / AVI
    meta = video_metadata(path)
    assert meta["video_codec"] == "mpeg4" and meta["video_num_frames"] == 164 and meta["audio_codec"] == "mp3"
    out = subprocess.run([sys.executable, "-m", "pyvideo", "info", str(path)], check=True, capture_output=True,
                         text=True).stdout
    assert "video_num_frames: 164" in out and "audio_sample_rate: 44100" in out
    with pytest.raises(FileNotFoundError):
        video_metadata(shared_data / "nope.mp4")


def test_pyav_reference_backend_agrees_on_mp4(shared_data):
    pytest.importorskip("av")
    from pyvideo.data.encoded_video_pyav import EncodedVideoPyAV

    path = str(shared_data / "videos" / "mmaction2_demo_demo.mp4")
    reference, native = EncodedVideoPyAV(path), EncodedVideoNative(path)
    assert reference.duration == pytest.approx(native.duration)
    for start, end in [(0, 1), (3.3, 4.1), (9.5, 12)]:
        assert torch.equal(reference.get_clip(start, end)["video"], native.get_clip(start, end)["video"])
    # PyAV codec contexts with threads must not survive into forked processes (its free would hang there)
    reference.close()


def test_pyav_backend_without_pyav_says_how_to_install(monkeypatch, shared_data):
    from pyvideo.data.encoded_video_pyav import EncodedVideoPyAV

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match="pip install av"):
        EncodedVideoPyAV(str(shared_data / "videos" / AVI))
