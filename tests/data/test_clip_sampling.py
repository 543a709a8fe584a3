"""Clip samplers against clip lists computed by hand from the sampling rules."""
from fractions import Fraction as F

import pytest
import torch

from pyvideo.data.clip_sampling import (
    ClipInfo,
    ClipInfoList,
    ConstantClipsPerVideoSampler,
    RandomClipSampler,
    RandomMultiClipSampler,
    RandomMultiClipSamplerTruncateFromStart,
    UniformClipSampler,
    UniformClipSamplerTruncateFromStart,
    make_clip_sampler,
)


def run_to_last(sampler, duration, max_clips=100):
    clips, last_end = [], None
    for _ in range(max_clips):
        clip = sampler(last_end, duration, {})
        clips.append(clip)
        if clip.is_last_clip:
            return clips
        last_end = clip.clip_end_sec
    raise AssertionError("sampler never reported the last clip")


def spans(clips):
    return [(c.clip_start_sec, c.clip_end_sec, c.clip_index, c.aug_index, c.is_last_clip) for c in clips]


def test_uniform_drops_the_incomplete_tail():
    # 7 s video, 2 s clips: [0,2) [2,4) [4,6); a clip [6,8) would pass the end
    clips = run_to_last(make_clip_sampler("uniform", 2), 7)
    assert spans(clips) == [(0, 2, 0, 0, False), (2, 4, 1, 0, False), (4, 6, 2, 0, True)]
    assert all(isinstance(c, ClipInfo) and isinstance(c.clip_start_sec, F) for c in clips)


def test_uniform_exact_fit_and_stride():
    assert [c[:2] for c in spans(run_to_last(UniformClipSampler(2), 6))] == [(0, 2), (2, 4), (4, 6)]
    # overlapping clips: stride 1 s over a 4 s video -> starts 0, 1, 2
    assert [c[:2] for c in spans(run_to_last(UniformClipSampler(2, stride=1), 4))] == [(0, 2), (1, 3), (2, 4)]
    # frame-exact Fractions: 64 frames at 30 fps over a 10 s video -> 4 clips, the last ends at 256/30
    clips = run_to_last(UniformClipSampler(F(64, 30)), 10)
    assert [c.clip_end_sec for c in clips] == [F(64, 30), F(128, 30), F(192, 30), F(256, 30)]


def test_float_durations_are_read_as_written():
    # Fraction(0.4) is 0.4000000000000000222..., whose clip end would include the frame at exactly 0.4 s
    clips = run_to_last(make_clip_sampler("uniform", 0.4), 1)
    assert [c[:2] for c in spans(clips)] == [(0, F(2, 5)), (F(2, 5), F(4, 5))]
    assert UniformClipSampler(64 / 30)(None, 10, {}).clip_end_sec == F(32, 15)


def test_uniform_backpad_last_shifts_final_clip_back():
    # 39 frames at 30 fps, 32-frame clips every 16 frames: [0,32) then [16,48) shifted back to [7,39)
    sampler = UniformClipSampler(F(32, 30), stride=F(16, 30), backpad_last=True)
    assert spans(run_to_last(sampler, F(39, 30))) == [
        (0, F(32, 30), 0, 0, False),
        (F(7, 30), F(39, 30), 1, 0, True),
    ]


def test_uniform_clip_index_restarts_after_last_clip_and_on_reset():
    sampler = UniformClipSampler(1)
    assert [c.clip_index for c in run_to_last(sampler, 3)] == [0, 1, 2]
    assert [c.clip_index for c in run_to_last(sampler, 2)] == [0, 1]
    sampler(None, 10, {})
    sampler.reset()
    assert sampler(None, 10, {}).clip_index == 0


def test_uniform_truncate_from_start():
    sampler = UniformClipSamplerTruncateFromStart(2, truncation_duration=4)
    assert [c[:2] for c in spans(run_to_last(sampler, 10))] == [(0, 2), (2, 4)]
    # a video shorter than the truncation is sampled whole
    assert [c[:2] for c in spans(run_to_last(sampler, 3))] == [(0, 2)]
    assert len(run_to_last(make_clip_sampler("uniform_truncate_from_start", 2, None, False, 1e-6, 4), 10)) == 2


def test_constant_clips_per_video_spacing_and_augs():
    # (10 - 2) / (3 - 1) = 4 s apart: starts 0, 4, 8; each clip twice (aug 0, 1)
    sampler = make_clip_sampler("constant_clips_per_video", 2, 3, 2)
    assert spans(run_to_last(sampler, 10)) == [
        (0, 2, 0, 0, False), (0, 2, 0, 1, False),
        (4, 6, 1, 0, False), (4, 6, 1, 1, False),
        (8, 10, 2, 0, False), (8, 10, 2, 1, True),
    ]
    # the sampler reset itself: the next video starts again at clip 0
    assert spans(run_to_last(ConstantClipsPerVideoSampler(2, 3), 5)) == [
        (0, 2, 0, 0, False), (F(3, 2), F(7, 2), 1, 0, False), (3, 5, 2, 0, True)
    ]


def test_constant_clips_per_video_short_video_and_single_clip():
    # video shorter than a clip: all clips start at 0
    assert [c[:2] for c in spans(run_to_last(ConstantClipsPerVideoSampler(2, 3), 1))] == [(0, 2)] * 3
    assert spans(run_to_last(ConstantClipsPerVideoSampler(2, 1), 10)) == [(0, 2, 0, 0, True)]


def test_random_clip_start_is_uniform_draw_times_free_range():
    torch.manual_seed(7)
    expected = torch.rand((), dtype=torch.float64).item() * 8  # 10 s video, 2 s clip: start in [0, 8]
    torch.manual_seed(7)
    clip = make_clip_sampler("random", 2)(None, 10, {})
    assert float(clip.clip_start_sec) == pytest.approx(expected, abs=1e-12)
    assert clip.clip_end_sec - clip.clip_start_sec == 2
    assert (clip.clip_index, clip.aug_index, clip.is_last_clip) == (0, 0, True)
    # too-short video: the only start is 0
    assert RandomClipSampler(5)(None, 3, {}).clip_start_sec == 0


def test_random_samplers_follow_their_generator():
    draws = [RandomClipSampler(1, generator=torch.Generator().manual_seed(3))(None, 11, {}) for _ in range(2)]
    assert draws[0] == draws[1]
    starts = [float(RandomClipSampler(1)(None, 11, {}).clip_start_sec) for _ in range(200)]
    assert 0 <= min(starts) and max(starts) <= 10 and max(starts) - min(starts) > 5


def test_random_multi_returns_clip_info_list():
    generator = torch.Generator().manual_seed(0)
    expected = [torch.rand((), dtype=torch.float64, generator=generator).item() * 8 for _ in range(3)]
    clips = RandomMultiClipSampler(2, 3, generator=torch.Generator().manual_seed(0))(None, 10, {})
    assert isinstance(clips, ClipInfoList)
    assert [float(s) for s in clips.clip_start_sec] == pytest.approx(expected)
    assert [e - s for s, e in zip(clips.clip_start_sec, clips.clip_end_sec)] == [2, 2, 2]
    assert clips.is_last_clip == [True] * 3
    truncated = RandomMultiClipSamplerTruncateFromStart(2, 50, truncation_duration=3)(None, 10, {})
    assert max(truncated.clip_end_sec) <= 3


def test_make_clip_sampler_rejects_bad_input():
    with pytest.raises(NotImplementedError, match="not supported"):
        make_clip_sampler("nope", 1)
    with pytest.raises(ValueError, match="clip_duration"):
        make_clip_sampler("uniform", 0)
    with pytest.raises(ValueError, match="stride"):
        UniformClipSampler(1, stride=-1)
    with pytest.raises(ValueError, match="clips_per_video"):
        ConstantClipsPerVideoSampler(1, 0)
    with pytest.raises(TypeError, match="clip_duration"):
        RandomClipSampler("2")
