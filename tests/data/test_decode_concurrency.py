"""Decoders in DataLoader workers (fork and spawn), from several Python threads, and without leaking memory."""
import gc
import os
import threading

import pytest
import torch

from pyvideo.data.encoded_video import EncodedVideo
from pyvideo.data.encoded_video_native import EncodedVideoNative
from tests.helpers.synth import moving_square_frames, write_video


@pytest.fixture(scope="module")
def video_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("concurrency") / "v.mp4"
    return str(write_video(path, moving_square_frames(60, 32, 48), fps=30, codec="h264", audio_hz=8000,
                           extra_args=["-g", "15"]))


class ClipDataset(torch.utils.data.Dataset):
    """Clip i is [i/10, i/10 + 0.3) of one video opened in the parent (so fork workers inherit an open decoder)."""

    def __init__(self, path):
        self.video = EncodedVideo.from_path(path)
        self.video.get_clip(1.0, 1.2)  # leave the parent's decoder mid-file

    def __len__(self):
        return 12

    def __getitem__(self, i):
        clip = self.video.get_clip(i / 10, i / 10 + 0.3)
        return clip["video"], clip["audio"]


def expected_clips(path):
    video = EncodedVideo.from_path(path)
    return [(video.get_clip(i / 10, i / 10 + 0.3)["video"], video.get_clip(i / 10, i / 10 + 0.3)["audio"])
            for i in range(12)]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers(video_path, context):
    gc.collect()  # objects of earlier tests (e.g. PyAV's threaded codecs) must not be collected inside a fork
    loader = torch.utils.data.DataLoader(ClipDataset(video_path), batch_size=None, num_workers=2,
                                         multiprocessing_context=context)
    got = list(loader)
    expected = expected_clips(video_path)
    assert len(got) == 12
    for (video, audio), (video_ref, audio_ref) in zip(got, expected):
        assert torch.equal(video, video_ref) and torch.equal(audio, audio_ref)


def test_threads_share_one_video_and_use_their_own(video_path):
    shared = EncodedVideo.from_path(video_path, decode_audio=False)
    reference = EncodedVideo.from_path(video_path, decode_audio=False)
    expected = {i: reference.get_frames_at([i, 59 - i])["video"] for i in range(60)}
    failures = []

    def work(first):
        own = EncodedVideoNative(video_path, decode_audio=False, num_threads=1)
        for _ in range(3):
            for i in range(first, 60, 4):
                for video in (shared, own):
                    if not torch.equal(video.get_frames_at([i, 59 - i])["video"], expected[i]):
                        failures.append(i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def resident_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc to read resident memory")
def test_repeated_open_decode_does_not_leak(video_path):
    data = open(video_path, "rb").read()

    def cycle():
        for source in (video_path, data):
            video = EncodedVideoNative(source)
            video.get_clip(0.5, 1.0)
            video.get_frames_at([3, 40])
            video.close()

    for _ in range(30):  # warm up allocator pools and caches
        cycle()
    before = resident_kib()
    for _ in range(200):
        cycle()
    growth = resident_kib() - before
    # 400 opens, each holding ~100 KiB of frames and codec state: a leak of one frame per cycle is > 1 MiB
    assert growth < 6 * 1024, f"resident memory grew by {growth} KiB over 200 cycles"
