"""Audio features, IMU windows and optical flow against hand-computed or independently computed values."""
import math

import numpy as np
import pytest
import torch

from pyvideo.data.audio import (
    LogMelSpectrogram,
    audio_sample_range,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    spectrogram,
)


def test_mel_scale_round_trip_and_known_value():
    assert hz_to_mel(torch.tensor(700.0)).item() == pytest.approx(2595 * math.log10(2))
    hz = torch.tensor([0.0, 440.0, 8000.0], dtype=torch.float64)
    assert torch.allclose(mel_to_hz(hz_to_mel(hz)), hz)


def reference_filterbank(n_freqs, f_min, f_max, n_mels, rate):
    """Per-bin loop over the triangle definition."""
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    points = [700 * (10 ** ((mel(f_min) + i * (mel(f_max) - mel(f_min)) / (n_mels + 1)) / 2595) - 1) for i in range(n_mels + 2)]
    bank = np.zeros((n_freqs, n_mels))
    for b in range(n_freqs):
        f = b * (rate / 2) / (n_freqs - 1)
        for m in range(n_mels):
            lo, c, hi = points[m], points[m + 1], points[m + 2]
            if lo < f <= c:
                bank[b, m] = (f - lo) / (c - lo)
            elif c < f < hi:
                bank[b, m] = (hi - f) / (hi - c)
    return bank, points


def test_mel_filterbank_matches_triangle_definition_and_partitions_unity():
    bank = mel_filterbank(201, 0.0, 8000.0, 40, 16000)
    expected, points = reference_filterbank(201, 0.0, 8000.0, 40, 16000)
    assert bank.shape == (201, 40)
    np.testing.assert_allclose(bank.numpy(), expected, atol=1e-6)
    # between the first and last centre, adjacent triangles overlap so that each bin's weights sum to 1
    freqs = np.arange(201) * 40.0
    inside = (freqs >= points[1]) & (freqs <= points[40])
    np.testing.assert_allclose(bank.sum(1).numpy()[inside], 1.0, atol=1e-5)
    # each filter peaks at the FFT bin nearest its centre frequency
    for m in (5, 20, 39):
        assert abs(int(bank[:, m].argmax()) - points[m + 1] / 40.0) <= 1
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(201, 0.0, 9000.0, 40, 16000)


def tone(freq, rate=16000, seconds=0.5):
    t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
    return torch.sin(2 * math.pi * freq * t)


def test_spectrogram_of_a_pure_tone_peaks_at_its_bin():
    power = spectrogram(tone(1000.0), n_fft=400, hop_length=160)
    assert power.shape == (1 + 8000 // 160, 201)  # [T, F]
    # 16 kHz / 400 = 40 Hz per bin: 1000 Hz is bin 25
    assert (power[2:-2].argmax(dim=-1) == 25).all()


def test_spectrogram_equals_windowed_dft():
    wave = torch.randn(2, 3, 1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    power = spectrogram(wave, n_fft=256, hop_length=100, center=False)
    assert power.shape == (2, 3, 1 + (1000 - 256) // 100, 129)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)  # periodic Hann
    frame = wave[1, 2, 300:556].numpy() * window
    np.testing.assert_allclose(power[1, 2, 3].numpy(), np.abs(np.fft.rfft(frame)) ** 2, rtol=1e-9, atol=1e-9)


def test_log_mel_of_a_tone_peaks_in_the_band_around_it():
    features = log_mel_spectrogram(tone(1000.0).float(), 16000, n_fft=400, hop_length=160, n_mels=40)
    assert features.shape == (51, 40)
    bank = mel_filterbank(201, 0.0, 8000.0, 40, 16000)
    assert (features[2:-2].argmax(-1) == bank[25].argmax()).all()  # the filter weighting bin 25 most
    silence = log_mel_spectrogram(torch.zeros(2, 1600), 16000, n_mels=40)
    assert silence.shape == (2, 9, 40) and torch.allclose(silence, torch.tensor(math.log(1e-6)))
    module = LogMelSpectrogram(16000, n_mels=40, hop_length=160)
    assert torch.equal(module(tone(1000.0).float()), features)


def test_audio_sample_range_is_end_exclusive():
    assert audio_sample_range(0, 1, 16000) == (0, 16000)
    assert audio_sample_range(0.5, 1.25, 44100) == (22050, 55125)
    assert audio_sample_range(1 / 3, 2 / 3, 3) == (1, 2)
    with pytest.raises(ValueError):
        audio_sample_range(2, 1, 16000)


# ---------------------------------------------------------------- IMU

from pyvideo.data.imu import AddImuToClip, ImuData  # noqa: E402


def write_imu_csv(path, rate=100, seconds=3):
    lines = ["timestamp_ms,acc_x,acc_y,gyro_z"]
    for i in range(rate * seconds):
        t = i / rate
        lines.append(f"{t * 1000:.3f},{t:.6f},{2 * t:.6f},{-i}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_imu_windows_are_end_exclusive_and_aligned(tmp_path):
    imu = ImuData.from_csv(write_imu_csv(tmp_path / "imu.csv"), timestamp_column="timestamp_ms", time_unit="ms")
    assert imu.channel_names == ["acc_x", "acc_y", "gyro_z"] and imu.values.shape == (3, 300)
    window = imu.get_window(1.0, 1.5)
    # samples at 1.00, 1.01, ..., 1.49 s: 50 of them, the one at 1.50 excluded
    assert window["imu"].shape == (3, 50)
    assert window["imu_timestamps"][0].item() == pytest.approx(1.0)
    assert window["imu"][2].tolist() == [-i for i in range(100, 150)]
    selected = ImuData.from_csv(str(tmp_path / "imu.csv"), "timestamp_ms", channels=["gyro_z"], time_unit="ms")
    assert selected.values.shape == (1, 300)


def test_imu_resampling_interpolates_linearly():
    imu = ImuData(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([[0.0, 10.0, 30.0]]), ["x"])
    # times 0.5, 1.0, 1.5 -> 5, 10, 20; times past the end hold the last value
    assert imu.resample(0.5, 2.0, 3).tolist() == [[5.0, 10.0, 20.0]]
    assert imu.resample(1.5, 3.5, 4).tolist() == [[20.0, 30.0, 30.0, 30.0]]


def test_add_imu_to_clip_uses_the_sample_clip_times(tmp_path):
    imu = ImuData.from_csv(write_imu_csv(tmp_path / "imu.csv"), "timestamp_ms", time_unit="ms")
    sample = {"video_name": "v.mp4", "clip_start_sec": 0.5, "clip_end_sec": 1.0}
    out = AddImuToClip({"v.mp4": imu}, offset_sec=1.0)(dict(sample))
    assert out["imu"].shape == (3, 50) and out["imu_timestamps"][0].item() == pytest.approx(1.5)
    fixed = AddImuToClip({"v.mp4": imu}, num_samples=5)(dict(sample))["imu"]
    # acc_x equals time: resampled at 0.5, 0.6, ..., 0.9 s
    assert fixed[0].tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9], abs=1e-5)
    with pytest.raises(KeyError, match="other.mp4"):
        AddImuToClip({"v.mp4": imu})({**sample, "video_name": "other.mp4"})


def test_imu_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="non-decreasing"):
        ImuData(torch.tensor([1.0, 0.0]), torch.zeros(1, 2), ["x"])
    (tmp_path / "bad.csv").write_text("t,x\n0,1\n1,oops\n")
    with pytest.raises(ValueError, match="non-numeric"):
        ImuData.from_csv(str(tmp_path / "bad.csv"), "t")
    with pytest.raises(ValueError, match="no 'timestamp' column"):
        ImuData.from_csv(str(tmp_path / "bad.csv"))


# ---------------------------------------------------------------- optical flow

from pyvideo.data.flow import dequantize_flow, flow_frame_paths  # noqa: E402


def test_flow_frames_are_paired_in_natural_order(tmp_path):
    for i in (1, 2, 10):
        (tmp_path / f"x_{i}.jpg").write_bytes(b"")
        (tmp_path / f"y_{i}.jpg").write_bytes(b"")
    xs, ys = flow_frame_paths(str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in xs] == ["x_1.jpg", "x_2.jpg", "x_10.jpg"]
    assert [p.rsplit("/", 1)[1] for p in ys] == ["y_1.jpg", "y_2.jpg", "y_10.jpg"]
    (tmp_path / "x_11.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="x_11|11.jpg"):
        flow_frame_paths(str(tmp_path))
    assert dequantize_flow(torch.tensor([0.0, 127.5, 255.0]), 20.0).tolist() == [-20.0, 0.0, 20.0]


def grey_pixels(path):
    """Independent decode of a grey JPEG with the ffmpeg CLI."""
    import subprocess

    from tests.helpers.synth import require_ffmpeg

    raw = subprocess.run([require_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().view(240, 320)


def test_flow_clip_from_the_shared_flow_frames(shared_data, tmp_path):
    pytest.importorskip("pyvideo.data.frame_video", reason="FrameVideo (decoder side) not built yet")
    from pyvideo.data.flow import FlowVideo, FlowVideoPathHandler
    from pyvideo.data import LabeledVideoDataset, make_clip_sampler

    folder = tmp_path / "flow video"
    folder.mkdir()
    for name in [f"{c}_0000{i}.jpg" for c in "xy" for i in range(1, 6)]:
        (folder / name).write_bytes((shared_data / "frames" / name).read_bytes())
    video = FlowVideo.from_directory(str(folder), fps=5, bound=20)
    assert video.duration == pytest.approx(1.0)
    clip = video.get_clip(0.2, 0.6)  # frames at 0.2 and 0.4 s: indices 1, 2
    assert clip["video"].shape == (2, 2, 240, 320) and clip["frame_indices"] == [1, 2]
    expected_y = dequantize_flow(grey_pixels(folder / "y_00003.jpg"), 20)
    assert (clip["video"][1, 1] - expected_y).abs().max() <= 2 * 40 / 255 + 1e-4  # JPEG decoders may differ by 1
    data = LabeledVideoDataset([(str(folder), 7)], make_clip_sampler("uniform", 0.4), decode_audio=False)
    data.video_path_handler = FlowVideoPathHandler(fps=5)
    assert [(s["video"].shape[1], s["label"]) for s in data] == [(2, 7), (2, 7)]
