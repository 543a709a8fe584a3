"""Unreadable videos inside a dataset: skipped with a warning naming them, counted (also across
DataLoader workers), never killing a worker; repeated failures become one clear RuntimeError."""
import warnings

import pytest
from torch.utils.data import DataLoader, SequentialSampler

from pyvideo.data import BadVideoWarning, make_clip_sampler
from pyvideo.data.clip_dataset import LabeledVideoClipDataset
from pyvideo.data.labeled_video_dataset import LabeledVideoDataset

from .fake_video import FakeVideoPathHandler

PATHS = ["a.mp4", "missing one.mp4", "b.mp4", "corrupt.mp4", "c.mp4"]
DURATIONS = {"a.mp4": 2, "b.mp4": 3, "corrupt.mp4": 4, "c.mp4": 1}
GOOD_CLIPS = [(0, 0), (0, 1), (2, 0), (2, 1), (2, 2), (3, 0), (3, 1), (4, 0)]  # corrupt.mp4 breaks at 2.5 s


def dataset(cls=LabeledVideoDataset, **kwargs):
    data = cls([(p, 0) for p in PATHS], make_clip_sampler("uniform", 1), SequentialSampler, decode_audio=False, **kwargs)
    data.video_path_handler = FakeVideoPathHandler(DURATIONS, missing=["missing one.mp4"], corrupt_after={"corrupt.mp4": 2.5})
    return data


def test_bad_videos_are_skipped_with_named_warnings_and_counted():
    data = dataset()
    with pytest.warns(BadVideoWarning) as caught:
        clips = [(s["video_index"], s["clip_index"]) for s in data]
    assert clips == GOOD_CLIPS
    messages = [str(w.message) for w in caught]
    assert any("'missing one.mp4'" in m and "cannot open" in m for m in messages)
    assert any("'corrupt.mp4'" in m and "corrupt packet" in m for m in messages)
    assert data.num_failed_videos == 2
    assert data.failed_video_paths == ["missing one.mp4", "corrupt.mp4"]
    assert [path for path, _ in data.failures] == ["missing one.mp4", "corrupt.mp4"]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_failure_count_is_aggregated_over_workers(context):
    data = dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadVideoWarning)
        loader = DataLoader(data, batch_size=2, num_workers=2, multiprocessing_context=context)
        clips = sorted(c for b in loader for c in zip(b["video_index"].tolist(), b["clip_index"].tolist()))
    assert clips == GOOD_CLIPS
    assert data.num_failed_videos == 2  # the failures happened in the workers
    assert sorted(data.failed_video_paths) == ["corrupt.mp4", "missing one.mp4"]


def test_clip_without_frames_is_a_failure():
    # any callable may sample clips; this one asks for [5, 6) s of a 2 s video, which holds no frame
    def after_the_end(last_clip_end, duration, info):
        return make_clip_sampler("uniform", 1)(5, duration, info)

    data = LabeledVideoDataset([("short.mp4", 1)], after_the_end, decode_audio=False)
    data.video_path_handler = FakeVideoPathHandler({"short.mp4": 2})
    with pytest.warns(BadVideoWarning, match=r"no frames in clip \[5.0, 6.0\)"):
        assert list(data) == []


def test_consecutive_failure_limit_raises_clear_error():
    data = LabeledVideoDataset(
        [(f"gone{i}.mp4", 0) for i in range(5)], make_clip_sampler("uniform", 1), SequentialSampler,
        decode_audio=False, max_consecutive_failures=3,
    )
    data.video_path_handler = FakeVideoPathHandler({})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadVideoWarning)
        with pytest.raises(RuntimeError, match=r"Failed to load 3 videos in a row \(max_consecutive_failures=3\)"):
            list(data)
        with pytest.raises(RuntimeError, match="gone0.mp4"):
            list(DataLoader(data, batch_size=None, num_workers=1))


def test_class_attribute_limit_is_honoured_and_successes_reset_the_count():
    class Strict(LabeledVideoDataset):
        _MAX_CONSECUTIVE_FAILURES = 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadVideoWarning)
        with pytest.raises(RuntimeError, match="max_consecutive_failures=1"):
            list(dataset(Strict))
        # failures separated by good videos never reach a limit of 2
        assert len(list(dataset(max_consecutive_failures=2))) == len(GOOD_CLIPS)


def test_map_dataset_leaves_unopenable_videos_out_and_replaces_unreadable_items():
    handler = FakeVideoPathHandler(DURATIONS, missing=["missing one.mp4"], corrupt_after={"corrupt.mp4": 2.5})
    paths = [(p, 0) for p in PATHS]
    with pytest.warns(BadVideoWarning, match="missing one.mp4"):
        data = LabeledVideoClipDataset(paths, make_clip_sampler("uniform", 1), decode_audio=False, video_path_handler=handler)
    assert len(data) == 2 + 3 + 4 + 1
    corrupt_item = [i for i, (v, c) in enumerate(data.clip_index) if v == 3 and c.clip_index == 2][0]
    with pytest.warns(BadVideoWarning, match="corrupt.mp4"):
        sample = data[corrupt_item]
    # clips [2,3) and [3,4) of corrupt.mp4 both cross the damage at 2.5 s: the next good item stands in
    assert (sample["video_index"], sample["clip_index"]) == (4, 0)
    assert data.num_failed_videos == 2


def test_missing_decoder_is_an_error_not_a_bad_video():
    class NoDecoder:
        def video_from_path(self, *args, **kwargs):
            raise ImportError("pyvideo._C is not available")

    data = LabeledVideoDataset([("a.mp4", 0)], make_clip_sampler("uniform", 1), decode_audio=False)
    data.video_path_handler = NoDecoder()
    with pytest.raises(ImportError, match="_C"):
        list(data)
    assert data.num_failed_videos == 0
