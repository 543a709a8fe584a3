"""The synthetic motion dataset: layout, determinism, no single-frame cue, audio and AVA boxes."""
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from pyvideo.synth import MOTIONS, class_tone_hz, read_ava_boxes, render_action_video, synthesize_action_dataset
from pyvideo.tasks.clip_dataset import decode_video, read_labeled_csv


def _write(root, seed=0, **kwargs):
    return synthesize_action_dataset(root, num_classes=3, videos_per_class=4, num_frames=8, height=32, width=32,
                                     seed=seed, boxes=True, **kwargs)


def test_layout_and_determinism(tmp_path):
    files = _write(tmp_path / "a")
    again = _write(tmp_path / "b")
    other = _write(tmp_path / "c", seed=1)
    train, val = read_labeled_csv(files["train"]), read_labeled_csv(files["val"])
    assert len(train) == 3 * 3 and len(val) == 3  # round(4 * 0.25) = 1 val video per class
    assert [label for _, label in val] == [0, 1, 2]
    assert json.load(open(files["classnames"])) == {"move_right": 0, "move_left": 1, "move_up": 2}
    path = train[0][0]
    assert path == "move_right/move_right_0000.mp4"
    first = decode_video(str(tmp_path / "a" / path))
    assert first.shape == (3, 8, 32, 32) and first.dtype == torch.uint8
    assert torch.equal(first, decode_video(str(tmp_path / "b" / path)))
    assert not torch.equal(first, decode_video(str(tmp_path / "c" / path)))
    assert open(files["boxes"]).read() == open(again["boxes"]).read()


def _centroid_x(frame, background):
    ys, xs = np.nonzero(np.abs(frame.astype(int) - background).sum(-1) > 60)
    return np.angle(np.exp(2j * np.pi * xs / frame.shape[1]).mean()) % (2 * np.pi)  # circular mean on the torus


def test_a_single_frame_does_not_tell_left_from_right_but_motion_does():
    size, per_class = 24, 60
    first_x, energy = {0: [], 1: []}, {0: [], 1: []}
    for label in (0, 1):
        for i in range(per_class):
            frames, _ = render_action_video(MOTIONS[label], np.random.default_rng([9, label, i]), 6, size, size)
            video = frames.astype(np.float32)
            background = np.median(video, axis=0)
            first_x[label].append(_centroid_x(frames[0], background))
            it = video[1:] - video[:-1]
            ix = video[1:, :, 2:] - video[1:, :, :-2]
            energy[label].append(float((it[:, :, 1:-1] * ix).sum()))
    # the object's position in the first frame is uniform for both classes: circular means agree
    assert abs(np.mean(first_x[0]) - np.mean(first_x[1])) < 0.6  # radians; uniform gives std 1.8 / sqrt(60) = 0.23
    # motion energy (I_t * I_x) has opposite signs for the two directions
    assert np.mean(np.array(energy[0]) < 0) > 0.95 and np.mean(np.array(energy[1]) > 0) > 0.95


def test_boxes_follow_the_rendered_object(tmp_path):
    files = _write(tmp_path)
    table = read_ava_boxes(files["boxes"])
    assert len(table) == 12 and all(len(rows) == 8 for rows in table.values())
    timestamp, box, action, person = table["move_up/move_up_0001"][3]
    assert timestamp == pytest.approx(3 / 8.0) and action == 3 and person == 0
    _, boxes = render_action_video(MOTIONS[2], np.random.default_rng([0, 2, 1]), 8, 32, 32)
    assert np.allclose(box, boxes[3], atol=1e-4)
    x1, y1, x2, y2 = box
    assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


def test_audio_tone_encodes_the_class(tmp_path):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg tool not installed")
    synthesize_action_dataset(tmp_path, num_classes=2, videos_per_class=2, num_frames=16, height=32, width=32,
                              audio=True)
    for label, name in ((0, "move_right"), (1, "move_left")):
        pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / name / f"{name}_0000.mp4"), "-f", "s16le",
                              "-ac", "1", "-ar", "16000", "-"], capture_output=True, check=True).stdout
        wave = np.frombuffer(pcm, np.int16).astype(np.float32)
        assert len(wave) == pytest.approx(16000 * 2, rel=0.05)  # 16 frames at 8 fps
        spectrum = np.abs(np.fft.rfft(wave))
        peak_hz = np.argmax(spectrum) * 16000 / len(wave)
        assert peak_hz == pytest.approx(class_tone_hz(label), abs=3)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        synthesize_action_dataset(tmp_path, num_classes=1)
    with pytest.raises(ValueError, match="even"):
        synthesize_action_dataset(tmp_path, height=33)
    with pytest.raises(ValueError, match="videos_per_class"):
        synthesize_action_dataset(tmp_path, videos_per_class=1)


def test_native_encoder_writes_the_same_frames_up_to_compression(tmp_path):
    files = synthesize_action_dataset(tmp_path, num_classes=2, videos_per_class=2, num_frames=8, height=32, width=32,
                                      encoder="native")
    path, label = read_labeled_csv(files["train"])[0]
    decoded = decode_video(str(tmp_path / path)).int()
    frames, _ = render_action_video(MOTIONS[label], np.random.default_rng([0, label, 0]), 8, 32, 32)
    assert decoded.shape == (3, 8, 32, 32)
    assert (decoded - torch.from_numpy(frames).permute(3, 0, 1, 2).int()).abs().float().mean() < 8
    with pytest.raises(ValueError, match="encoder"):
        synthesize_action_dataset(tmp_path, encoder="av")
