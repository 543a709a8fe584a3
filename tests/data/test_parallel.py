"""Every (video, clip) exactly once per epoch under DataLoader workers and DistributedSampler ranks
(PyTorchVideo #55, #100, #102, #186), exact batch counts for the map-style dataset, seeded reproducibility."""
import json
import math
import os
import socket
from collections import Counter

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, DistributedSampler

from .parallel_fixtures import EXPECTED_CLIPS, iterable_dataset, map_dataset, produced_clips

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
def test_iterable_dataset_yields_each_clip_once_with_workers(num_workers):
    loader = DataLoader(iterable_dataset(), batch_size=3, num_workers=num_workers)
    clips = produced_clips(loader)
    assert sorted(clips) == EXPECTED_CLIPS  # no duplicate, nothing missing
    # clips of one video arrive in order 0, 1, 2, ... (one worker owns the whole video)
    for video in {v for v, _ in clips}:
        assert [k for v, k in clips if v == video] == sorted(k for v, k in clips if v == video)


@pytest.mark.parametrize("num_workers", [0, 2, 3])
def test_map_dataset_length_and_batch_count_are_exact(num_workers):
    dataset = map_dataset()
    assert len(dataset) == len(EXPECTED_CLIPS) == 23
    loader = DataLoader(dataset, batch_size=4, shuffle=True, num_workers=num_workers)
    assert len(loader) == math.ceil(23 / 4)
    batches = list(loader)
    assert len(batches) == 6 and [len(b["clip_index"]) for b in batches] == [4, 4, 4, 4, 4, 3]
    clips = [c for b in batches for c in zip(b["video_index"].tolist(), b["clip_index"].tolist())]
    assert sorted(clips) == EXPECTED_CLIPS
    dropped = DataLoader(dataset, batch_size=4, num_workers=num_workers, drop_last=True)
    assert len(list(dropped)) == len(dropped) == 5


def test_map_dataset_item_is_the_indexed_clip():
    dataset = map_dataset()
    video_index, clip = dataset.clip_index[5]
    sample = dataset[5]
    assert (sample["video_index"], sample["clip_index"]) == (video_index, clip.clip_index) == (1, 2)
    # FakeVideo pixels are frame numbers (10 fps): clip [2, 3) s holds frames 20..29
    assert sample["video"][0, :, 0, 0].tolist() == list(range(20, 30))
    with pytest.raises(IndexError):
        dataset[23]


def video_order(seed, num_workers, epochs=1, persistent_workers=False):
    torch.manual_seed(seed)
    loader = DataLoader(
        iterable_dataset(), batch_size=None, num_workers=num_workers, persistent_workers=persistent_workers
    )
    return [[s["video_index"] for s in loader if s["clip_index"] == 0] for _ in range(epochs)]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_seeded_runs_are_reproducible_and_epochs_reshuffle(num_workers):
    first = video_order(1, num_workers, epochs=2, persistent_workers=num_workers > 0)
    assert first == video_order(1, num_workers, epochs=2, persistent_workers=num_workers > 0)
    assert first[0] != first[1]  # a new order each epoch, persistent workers included
    assert sorted(first[0]) == sorted(first[1]) == list(range(7))
    assert video_order(2, num_workers) != first[:1]


def test_random_clip_windows_are_reproducible_with_workers():
    def starts(seed):
        torch.manual_seed(seed)
        loader = DataLoader(iterable_dataset(sampler_type="random"), batch_size=None, num_workers=2)
        return sorted((s["video_index"], s["clip_start_sec"]) for s in loader)

    assert starts(5) == starts(5)
    assert starts(5) != starts(6)
    assert [v for v, _ in starts(5)] == list(range(7))  # random: one clip per video


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, world_size, port, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        result = {}
        for workers in (0, 2):
            iterable = iterable_dataset(video_sampler=DistributedSampler)
            iterable.video_sampler.set_epoch(3)
            result[f"iterable_w{workers}"] = produced_clips(DataLoader(iterable, batch_size=2, num_workers=workers))
            clips = map_dataset()
            sampler = DistributedSampler(clips, shuffle=True, seed=0)
            sampler.set_epoch(3)
            loader = DataLoader(clips, batch_size=2, sampler=sampler, num_workers=workers)
            result[f"map_w{workers}"] = produced_clips(loader)
            result[f"map_w{workers}_batches"] = len(loader)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_share_the_epoch_without_duplicates(tmp_path):
    mp.spawn(_rank_main, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for workers in (0, 2):
        per_rank = [[tuple(c) for c in r[f"iterable_w{workers}"]] for r in ranks]
        # DistributedSampler pads 7 videos to 8; the repeat is dropped so each clip appears once
        assert sorted(per_rank[0] + per_rank[1]) == EXPECTED_CLIPS
        assert not set(per_rank[0]) & set(per_rank[1])
        videos = [{v for v, _ in clips} for clips in per_rank]
        assert sorted(videos[0] | videos[1]) == list(range(7)) and len(videos[0]) == 4 and len(videos[1]) == 3
        # map-style: torch's DistributedSampler gives each rank ceil(23/2)=12 clips, one padding repeat
        mapped = [[tuple(c) for c in r[f"map_w{workers}"]] for r in ranks]
        assert [len(m) for m in mapped] == [12, 12] and [r[f"map_w{workers}_batches"] for r in ranks] == [6, 6]
        counts = Counter(mapped[0] + mapped[1])
        assert sorted(counts) == EXPECTED_CLIPS and sorted(counts.values()) == [1] * 22 + [2]


def test_map_dataset_random_windows_depend_on_seed_epoch_and_index_only():
    from pyvideo.data import LabeledVideoClipDataset, make_clip_sampler

    from .parallel_fixtures import DURATIONS, PATHS, handler

    def windows(num_workers, epoch, seed=11):
        data = LabeledVideoClipDataset([(p, 0) for p in PATHS], make_clip_sampler("random", 1), decode_audio=False,
                                       video_durations=DURATIONS, seed=seed, video_path_handler=handler())
        data.set_epoch(epoch)
        assert len(data) == len(PATHS)  # one random clip per video
        loader = DataLoader(data, batch_size=3, num_workers=num_workers)
        return [t for b in loader for t in b["clip_start_sec"].tolist()]

    first = windows(0, epoch=0)
    assert windows(2, epoch=0) == first  # independent of the worker layout
    assert windows(0, epoch=1) != first and windows(0, epoch=0, seed=12) != first
    assert all(0 <= start <= max(d - 1, 0) for start, d in zip(first, DURATIONS))
