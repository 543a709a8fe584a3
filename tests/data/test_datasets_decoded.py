"""Datasets on real decoding: a Kinetics-layout tree of synthesised videos (tests/helpers/synth.py),
bad files among them, audio aligned with clips, and the real recordings in ../shared/data."""
import shutil
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, SequentialSampler

from pyvideo.data import BadVideoWarning, Kinetics, LabeledVideoClipDataset, LabeledVideoDataset, make_clip_sampler
from pyvideo.data.audio import log_mel_spectrogram
from pyvideo.data.labeled_video_paths import LabeledVideoPaths
from tests.helpers.synth import moving_square_frames, write_video

FPS, FRAMES, H, W = 10, 20, 24, 32  # 2 s videos: two 1 s clips of 10 frames each


@pytest.fixture(scope="module")
def kinetics_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinetics") / "train"
    for class_index, name in enumerate(["abseiling", "air drumming"]):
        for i in range(2):
            path = root / name / f"clip {class_index}{i}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, moving_square_frames(FRAMES, H, W, seed=i), fps=FPS, audio_hz=16000 if i == 0 else None)
    return root


def corner_counter(video):
    """The synthetic frames carry (frame number * 7) % 256 in their top-left 4x4 block."""
    return video[:, :, :4, :4].mean(dim=(0, 2, 3))


def test_kinetics_folder_gives_every_clip_with_its_frames(kinetics_tree):
    data = Kinetics(data_path=str(kinetics_tree), clip_sampler=make_clip_sampler("uniform", 1),
                    video_sampler=SequentialSampler, decode_audio=False)
    samples = list(data)
    assert [(s["video_name"], s["label"], s["clip_index"]) for s in samples] == [
        ("clip 00.mp4", 0, 0), ("clip 00.mp4", 0, 1), ("clip 01.mp4", 0, 0), ("clip 01.mp4", 0, 1),
        ("clip 10.mp4", 1, 0), ("clip 10.mp4", 1, 1), ("clip 11.mp4", 1, 0), ("clip 11.mp4", 1, 1),
    ]
    for s in samples:
        assert s["video"].shape == (3, 10, H, W) and s["video"].dtype == torch.float32
        expected = torch.arange(10 * s["clip_index"], 10 * s["clip_index"] + 10) * 7.0
        assert (corner_counter(s["video"]) - expected).abs().max() < 8  # lossy H.264
        assert "audio" not in s
    assert data.num_failed_videos == 0


def test_workers_and_map_style_deliver_identical_frames(kinetics_tree):
    paths = LabeledVideoPaths.from_directory(str(kinetics_tree))
    iterable = LabeledVideoDataset(paths, make_clip_sampler("uniform", 1), SequentialSampler, decode_audio=False)
    by_clip = {(s["video_index"], s["clip_index"]): s["video"]
               for b in DataLoader(iterable, batch_size=None, num_workers=2) for s in [b]}
    assert sorted(by_clip) == [(v, c) for v in range(4) for c in range(2)]
    mapped = LabeledVideoClipDataset(paths, make_clip_sampler("uniform", 1), decode_audio=False)
    assert len(mapped) == 8  # durations probed from the files
    for i in range(len(mapped)):
        item = mapped[i]
        assert torch.equal(item["video"], by_clip[(item["video_index"], item["clip_index"])])


def test_audio_is_cut_to_the_clip(kinetics_tree):
    data = LabeledVideoDataset([(str(kinetics_tree / "abseiling" / "clip 00.mp4"), 0)], make_clip_sampler("uniform", 1))
    samples = list(data)
    assert len(samples) == 2
    for s in samples:
        assert s["audio"].shape == (16000,)  # samples ceil(start*16000) .. ceil(end*16000)-1
        features = log_mel_spectrogram(s["audio"], 16000, n_fft=400, hop_length=160, n_mels=64)
        spectrum = torch.stft(s["audio"], 400, 160, window=torch.hann_window(400), return_complex=True).abs()
        assert int(spectrum.mean(-1).argmax()) == 11  # the 440 Hz tone: 40 Hz bins
        assert features.shape == (101, 64)


def test_bad_files_in_the_tree_are_skipped_and_counted(kinetics_tree, tmp_path):
    tree = tmp_path / "train"
    shutil.copytree(kinetics_tree, tree)
    (tree / "abseiling" / "empty.mp4").write_bytes(b"")
    (tree / "abseiling" / "junk.avi").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    good = tree / "air drumming" / "clip 10.mp4"
    (tree / "air drumming" / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for workers in (0, 2):
        data = Kinetics(data_path=str(tree), clip_sampler=make_clip_sampler("uniform", 1), decode_audio=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BadVideoWarning)
            clips = [(s["video_name"], s["clip_index"]) for s in DataLoader(data, batch_size=None, num_workers=workers)]
        assert sorted(clips) == sorted((f"clip {v}.mp4", c) for v in ("00", "01", "10", "11") for c in (0, 1))
        assert sorted(p.rsplit("/", 1)[1] for p in data.failed_video_paths) == ["empty.mp4", "junk.avi", "truncated.mp4"]
        if workers == 0:  # worker warnings go to the workers' stderr
            assert sorted(str(w.message).split("'")[1].rsplit("/", 1)[1] for w in caught) == [
                "empty.mp4", "junk.avi", "truncated.mp4"
            ]


def test_real_avi_with_mp3_audio(shared_data):
    path = shared_data / "videos" / "mmaction2_tests_data_test.avi"  # 25 fps, 44.1 kHz stereo, 6.56 s
    data = LabeledVideoDataset([(str(path), {"label": 3})], make_clip_sampler("uniform", 2))
    samples = list(data)
    assert [(s["clip_start_sec"], s["clip_end_sec"]) for s in samples] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    for s in samples:
        assert s["video"].shape == (3, 50, 240, 320) and s["label"] == 3
        assert abs(s["audio"].shape[0] - 88200) <= 1  # mono mix, 2 s at 44.1 kHz


def test_paper_example_verbatim(tmp_path):
    from pyvideo import data

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_video(tmp_path / name / "v.mp4", moving_square_frames(FRAMES, H, W), fps=FPS)
    DATA_PATH, CLIP_DURATION, BATCH_SIZE = str(tmp_path), 1, 2
    kinetics_loader = torch.utils.data.DataLoader(
        data.Kinetics(data_path=DATA_PATH, clip_sampler=data.make_clip_sampler("uniform", CLIP_DURATION)),
        batch_size=BATCH_SIZE)
    batches = list(kinetics_loader)
    assert [tuple(b["video"].shape) for b in batches] == [(2, 3, 10, H, W)] * 2
    assert sorted(b["label"].tolist() for b in batches) == [[0, 0], [1, 1]]  # clips of one video stay together
