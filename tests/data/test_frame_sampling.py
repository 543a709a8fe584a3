"""frames_per_clip decodes only the frames UniformTemporalSubsample would keep, and gives the same tensors."""
import pytest
import torch
from torch.utils.data import SequentialSampler

from pyvideo.data import LabeledVideoClipDataset, LabeledVideoDataset, make_clip_sampler
from pyvideo.data.frame_sampling import read_clip, uniform_positions
from pyvideo.transforms.functional import uniform_temporal_subsample
from tests.helpers.synth import moving_square_frames, write_video

from .fake_video import FakeVideo


def test_uniform_positions_match_the_transform():
    assert uniform_positions(10, 4) == [0, 3, 6, 9]
    assert uniform_positions(60, 8) == [0, 8, 16, 25, 33, 42, 50, 59]  # linspace truncated, as the transform does
    assert uniform_positions(3, 5) == [0, 0, 1, 1, 2]  # fewer frames than samples: repeats
    for t, n in [(60, 8), (7, 3), (5, 5), (2, 9)]:
        frames = torch.arange(float(t)).view(1, t, 1, 1)
        assert uniform_temporal_subsample(frames, n).flatten().long().tolist() == uniform_positions(t, n)


@pytest.mark.parametrize("codec", ["h264_bframes", "mpeg4"])
def test_sparse_decode_equals_full_decode_then_subsample(tmp_path, codec):
    path = write_video(tmp_path / "v.mkv", moving_square_frames(75, 48, 64), fps=25, codec=codec)
    dense = LabeledVideoDataset([(str(path), 0)], make_clip_sampler("uniform", 1.2), SequentialSampler, decode_audio=False)
    sparse = LabeledVideoDataset([(str(path), 0)], make_clip_sampler("uniform", 1.2), SequentialSampler, decode_audio=False,
                                 frames_per_clip=8)
    pairs = list(zip(dense, sparse))
    assert len(pairs) == 2  # [0, 1.2) and [1.2, 2.4) of a 3 s video
    for full, reduced in pairs:
        assert full["video"].shape[1] == 30 and reduced["video"].shape == (3, 8, 48, 64)
        assert torch.equal(uniform_temporal_subsample(full["video"], 8), reduced["video"])


def test_frame_filter_and_generic_paths():
    video = FakeVideo("v", 2, fps=10)  # takes a frame_filter, like FrameVideo
    clip = read_clip(video, 0.5, 1.5, 4, decode_audio=False)
    assert clip["frame_indices"] == [5, 8, 11, 14] and clip["video"][0, :, 0, 0].tolist() == [5, 8, 11, 14]

    class NoFilter(FakeVideo):
        def get_clip(self, start_sec, end_sec):
            return super().get_clip(start_sec, end_sec)

    assert read_clip(NoFilter("v", 2, fps=10), 0.5, 1.5, 4, False)["video"][0, :, 0, 0].tolist() == [5, 8, 11, 14]
    assert read_clip(video, 0.5, 1.5, None, False)["video"].shape[1] == 10


def test_map_dataset_sparse_items_and_bad_argument(tmp_path):
    path = write_video(tmp_path / "v.mp4", moving_square_frames(50, 32, 32), fps=25)
    mapped = LabeledVideoClipDataset([(str(path), 1)], make_clip_sampler("uniform", 1), decode_audio=False, frames_per_clip=5)
    full = LabeledVideoClipDataset([(str(path), 1)], make_clip_sampler("uniform", 1), decode_audio=False)
    assert len(mapped) == 2
    assert torch.equal(mapped[1]["video"], uniform_temporal_subsample(full[1]["video"], 5))
    with pytest.raises(ValueError, match="frames_per_clip"):
        LabeledVideoDataset([(str(path), 1)], make_clip_sampler("uniform", 1), frames_per_clip=0)
