"""Transform classes: values, dict handling, batch equivalence and seeded reproducibility."""
import math

import pytest
import torch
import torch.nn.functional as F

import pyvideo.transforms as T
from pyvideo.transforms import functional as VF


def _clip(c=3, t=4, h=6, w=8):
    return torch.arange(c * t * h * w, dtype=torch.float32).reshape(c, t, h, w)


def test_public_names_import_like_upstream():
    from pyvideo.transforms import (ApplyTransformToKey, Normalize, RandomShortSideScale, RemoveKey,
                                    ShortSideScale, UniformCropVideo, UniformTemporalSubsample,
                                    create_video_transform)
    from pyvideo.transforms.transforms import Normalize as NormalizeFromModule
    assert Normalize is NormalizeFromModule
    assert all(callable(name) for name in (ApplyTransformToKey, RandomShortSideScale, RemoveKey, ShortSideScale,
                                           UniformCropVideo, UniformTemporalSubsample, create_video_transform))
    assert set(T.__all__) <= set(dir(T))
    assert "torch" not in T.__all__ and "torchvision" not in T.__all__


def test_normalize_values_clip_and_batch():
    clip = torch.stack([torch.full((2, 2, 2), v) for v in (0.45, 0.9, 0.0)])  # [C=3, T, H, W]
    norm = T.Normalize((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))
    out = norm(clip)
    assert torch.allclose(out[:, 0, 0, 0], torch.tensor([0.0, 2.0, -2.0]))
    batch = torch.stack([clip, clip * 0.5])
    assert torch.allclose(norm(batch)[1], norm(clip * 0.5))
    inplace = clip.clone()
    T.Normalize((0.45, 0.45, 0.45), (0.225, 0.225, 0.225), inplace=True)(inplace)
    assert torch.allclose(inplace, out)
    with pytest.raises(TypeError):
        norm(clip.to(torch.uint8))
    with pytest.raises(ValueError):
        T.Normalize((0.5, 0.5), (0.0, 1.0))


def test_dtype_conversions():
    u8 = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    as_float = T.ConvertUint8ToFloat()(u8)
    assert as_float.dtype == torch.float32 and torch.allclose(as_float.flatten(), torch.tensor([0.0, 0.2, 1.0]))
    assert torch.equal(T.ConvertFloatToUint8()(as_float), u8)
    with pytest.raises(TypeError):
        T.ConvertUint8ToFloat()(as_float)
    with pytest.raises(TypeError):
        T.ConvertFloatToUint8()(u8)
    assert torch.allclose(T.Div255()(torch.tensor([255.0, 51.0])), torch.tensor([1.0, 0.2]))


def test_move_channel_rear_and_front_are_callable_inverses():
    clip = _clip()
    rear = T.MoveChannelRear()(clip)
    assert rear.shape == (4, 6, 8, 3)
    assert rear[2, 3, 5, 1] == clip[1, 2, 3, 5]
    assert torch.equal(T.MoveChannelFront()(rear), clip)
    batch = torch.stack([clip, clip])
    assert T.MoveChannelRear()(batch).shape == (2, 4, 6, 8, 3)


def test_permute_trailing_dims_keeps_batch_first():
    clip = _clip()
    assert torch.equal(T.Permute((1, 0, 2, 3))(clip), clip.permute(1, 0, 2, 3))
    batch = torch.stack([clip, clip + 1])
    assert torch.equal(T.Permute((1, 0, 2, 3))(batch)[1], (clip + 1).permute(1, 0, 2, 3))
    with pytest.raises(ValueError):
        T.Permute((0, 0, 1))


def test_temporal_subsample_classes():
    clip = torch.arange(8, dtype=torch.float32).view(1, 8, 1, 1)
    assert T.UniformTemporalSubsample(4)(clip).flatten().tolist() == [0, 2, 4, 7]  # 2.33, 4.67 truncate
    fast, slow = T.UniformTemporalSubsampleRepeated((1, 4))(clip)
    assert fast.shape[1] == 8 and slow.flatten().tolist() == [0, 7]


def test_short_side_scale_classes():
    clip = torch.rand(3, 2, 4, 6)
    assert torch.allclose(T.ShortSideScale(2)(clip), F.avg_pool2d(clip, 2), atol=1e-6)
    fixed = T.RandomShortSideScale(2, 2)(clip)
    assert torch.allclose(fixed, F.avg_pool2d(clip, 2), atol=1e-6)
    sizes = {T.RandomShortSideScale(3, 5, generator=torch.Generator().manual_seed(s))(clip).shape[-2]
             for s in range(30)}
    assert sizes == {3, 4, 5}
    with pytest.raises(ValueError):
        T.RandomShortSideScale(5, 3)


def test_dict_transforms():
    sample = {"video": _clip(h=4, w=8), "aug_index": 2, "audio": torch.zeros(3)}
    out = T.UniformCropVideo(4)(sample)
    assert torch.equal(out["video"], _clip(h=4, w=8)[..., 4:8])
    sample = T.ApplyTransformToKey("video", T.Div255())({"video": torch.full((1, 1, 1, 1), 255.0)})
    assert sample["video"].item() == 1.0
    assert "audio" not in T.RemoveKey("audio")({"audio": 1, "video": 2})
    assert T.RemoveKey("audio")({"video": 2}) == {"video": 2}
    with pytest.raises(KeyError):
        T.ApplyTransformToKey("video", T.Div255())({"audio": 1})


def test_centre_crop_matches_torchvision_rounding():
    clip = _clip(h=5, w=6)
    # torchvision's rule round((5 - 2) / 2) = round(1.5) = 2, round((6 - 3) / 2) = 2
    assert torch.equal(T.CenterCropVideo((2, 3))(clip), clip[..., 2:4, 2:5])
    assert torch.equal(T.CenterCropVideo(4)(clip), clip[..., 0:4, 1:5])  # round(0.5) = 0, round(1.0) = 1
    with pytest.raises(ValueError):
        T.CenterCropVideo(7)(clip)


def test_random_crop_covers_all_offsets_and_is_reproducible():
    clip = _clip(h=5, w=6)
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(150):
        out = T.RandomCropVideo((3, 4), generator=gen)(clip)
        y, x = divmod(int(out[0, 0, 0, 0].item()), 6)
        assert torch.equal(out, clip[..., y:y + 3, x:x + 4])
        seen.add((y, x))
    assert seen == {(y, x) for y in range(3) for x in range(3)}
    torch.manual_seed(3)
    first = T.RandomCropVideo(3)(clip)
    torch.manual_seed(3)
    assert torch.equal(T.RandomCropVideo(3)(clip), first)


def test_random_horizontal_flip():
    clip = _clip()
    assert torch.equal(T.RandomHorizontalFlipVideo(1.0)(clip), clip.flip(-1))
    assert torch.equal(T.RandomHorizontalFlipVideo(0.0)(clip), clip)
    flips = sum(bool(torch.equal(T.RandomHorizontalFlipVideo(0.5, generator=g)(clip), clip.flip(-1)))
                for g in (torch.Generator().manual_seed(s) for s in range(200)))
    assert 60 < flips < 140


def test_random_resized_crop_class_and_generator():
    clip = torch.rand(3, 2, 16, 16)
    crop = T.RandomResizedCrop(8, 6, (0.2, 1.0), (0.5, 2.0), generator=torch.Generator().manual_seed(1))
    again = T.RandomResizedCrop(8, 6, (0.2, 1.0), (0.5, 2.0), generator=torch.Generator().manual_seed(1))
    out = crop(clip)
    assert out.shape == (3, 2, 8, 6) and torch.equal(out, again(clip))


def test_color_jitter_fixed_factors():
    clip = torch.rand(3, 4, 5, 5) * 0.5
    assert torch.allclose(T.ColorJitter(brightness=(0.5, 0.5))(clip), clip * 0.5)
    red = torch.zeros(3, 2, 1, 1)
    red[0] = 1.0
    green = T.ColorJitter(hue=(1 / 3, 1 / 3))(red)
    assert torch.allclose(green[:, :, 0, 0], torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), atol=1e-6)
    assert torch.equal(T.ColorJitter()(clip), clip)  # nothing to jitter
    with pytest.raises(ValueError):
        T.ColorJitter(hue=0.7)


def test_color_jitter_same_factor_for_every_frame():
    clip = torch.rand(3, 6, 4, 4) * 0.4 + 0.1
    out = T.ColorJitter(brightness=0.5, generator=torch.Generator().manual_seed(0))(clip)
    ratios = out / clip
    assert torch.allclose(ratios, ratios.flatten()[0].expand_as(ratios), atol=1e-5)
    assert not torch.allclose(ratios.flatten()[0], torch.tensor(1.0))


def test_color_jitter_reproducible_and_uint8():
    clip = (torch.rand(3, 3, 6, 6) * 255).to(torch.uint8)
    jitter = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    torch.manual_seed(7)
    first = T.ColorJitter(**jitter)(clip)
    torch.manual_seed(7)
    assert first.dtype == torch.uint8 and torch.equal(T.ColorJitter(**jitter)(clip), first)


def test_gaussian_blur_frames_independently():
    clip = torch.zeros(1, 3, 5, 5)
    clip[0, 1, 2, 2] = 1.0
    out = T.GaussianBlur(3, sigma=1.0)(clip)
    edge = math.exp(-0.5)
    assert math.isclose(out[0, 1, 2, 2].item(), 1 / (1 + 2 * edge) ** 2, rel_tol=1e-5)
    assert out[0, 0].abs().max() == 0 and out[0, 2].abs().max() == 0  # no mixing across time
    with pytest.raises(ValueError):
        T.GaussianBlur(4)
    with pytest.raises(ValueError):
        T.GaussianBlur(3, sigma=(2.0, 1.0))


def test_op_sampler():
    add = [lambda x, k=k: x + k for k in (1, 10, 100)]
    assert T.OpSampler(add, num_sample_op=3)(torch.zeros(1)).item() == 111  # all three, no replacement
    results = {T.OpSampler(add, num_sample_op=2, randomly_sample_depth=True)(torch.zeros(1)).item()
               for _ in range(60)}
    assert results <= {1, 10, 100, 11, 101, 110} and len(results) > 3
    only_second = T.OpSampler(add[:2], transforms_prob=[1e-9, 1.0])
    assert only_second(torch.zeros(1)).item() == 10
    with pytest.raises(ValueError):
        T.OpSampler(add, num_sample_op=4)


def test_compose_and_lambda():
    pipeline = T.Compose([T.Lambda(lambda x: x + 1), T.Div255()])
    assert pipeline(torch.tensor([254.0])).item() == 1.0
    with pytest.raises(TypeError):
        T.Compose([1])


_DETERMINISTIC_TRANSFORMS = {
    "ShortSideScale": lambda: T.ShortSideScale(3),
    "CenterCropVideo": lambda: T.CenterCropVideo(4),
    "Normalize": lambda: T.Normalize((0.1, 0.2, 0.3), (0.5, 0.6, 0.7)),
    "UniformTemporalSubsample": lambda: T.UniformTemporalSubsample(3),
    "MoveChannelRear": T.MoveChannelRear,
    "Permute": lambda: T.Permute((1, 0, 2, 3)),
    "GaussianBlur": lambda: T.GaussianBlur(3, 1.5),
    # fixed factors; a fresh seeded generator fixes the (random) order of the four adjustments
    "ColorJitter": lambda: T.ColorJitter(brightness=(0.7, 0.7), contrast=(1.3, 1.3), saturation=(0.5, 0.5),
                                         hue=(0.1, 0.1), generator=torch.Generator().manual_seed(0)),
    "uniform_crop": lambda: (lambda x: VF.uniform_crop(x, 5, 2)),
    # random transforms given a freshly seeded generator draw the same parameters for a batch and for one clip
    "RandomShortSideScale": lambda: T.RandomShortSideScale(4, 9, generator=torch.Generator().manual_seed(1)),
    "RandomCropVideo": lambda: T.RandomCropVideo(4, generator=torch.Generator().manual_seed(1)),
    "RandomHorizontalFlipVideo": lambda: T.RandomHorizontalFlipVideo(generator=torch.Generator().manual_seed(1)),
    "RandomResizedCrop": lambda: T.RandomResizedCrop(4, 5, (0.3, 1.0), (0.5, 2.0), shift=True,
                                                     generator=torch.Generator().manual_seed(1)),
}


@pytest.mark.parametrize("name", sorted(_DETERMINISTIC_TRANSFORMS))
def test_batch_equals_per_clip(name):
    make = _DETERMINISTIC_TRANSFORMS[name]
    clips = torch.rand(3, 3, 5, 6, 7)
    batched = make()(clips)
    assert torch.allclose(batched, torch.stack([make()(c) for c in clips]), atol=1e-6)
