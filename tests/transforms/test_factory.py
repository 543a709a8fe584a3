"""create_video_transform: train / val pipelines, output shape, dtype and normalisation."""
import pickle

import pytest
import torch
import torch.nn.functional as F

from pyvideo.transforms import create_video_transform

_SMALL = dict(min_size=32, max_size=40, crop_size=24)


def _uint8_clip(t=16, h=40, w=60):
    return (torch.rand(3, t, h, w) * 255).to(torch.uint8)


def test_val_pipeline_matches_hand_built_steps():
    clip = _uint8_clip()
    out = create_video_transform("val", num_samples=8, **_SMALL)(clip)
    # by hand: frames linspace(0, 15, 8) -> /255 -> normalise -> short side 32 (40x60 -> 32x48) -> centre 24
    frames = clip[:, torch.linspace(0, 15, 8).long()].float() / 255
    frames = (frames - 0.45) / 0.225
    frames = F.interpolate(frames, size=(32, 48), mode="bilinear", align_corners=False)
    expected = frames[..., 4:28, 12:36]
    assert out.shape == (3, 8, 24, 24) and out.dtype == torch.float32
    assert torch.allclose(out, expected, atol=1e-5)


def test_val_normalisation_of_a_constant_clip():
    clip = torch.full((3, 10, 40, 40), 51, dtype=torch.uint8)  # 51 / 255 = 0.2
    out = create_video_transform("val", video_mean=(0.45, 0.5, 0.2), video_std=(0.225, 0.25, 0.1), **_SMALL)(clip)
    expected = torch.tensor([(0.2 - 0.45) / 0.225, (0.2 - 0.5) / 0.25, 0.0])
    assert torch.allclose(out[:, 0, 0, 0], expected, atol=1e-5)
    assert torch.allclose(out, expected.view(3, 1, 1, 1).expand_as(out), atol=1e-5)


@pytest.mark.parametrize("aug_type", ["default", "randaug", "augmix"])
def test_train_pipeline_shape_range_and_seed(aug_type):
    clip = _uint8_clip()
    transform = create_video_transform("train", aug_type=aug_type, **_SMALL)
    torch.manual_seed(0)
    out = transform(clip)
    torch.manual_seed(0)
    again = transform(clip)
    assert out.shape == (3, 8, 24, 24) and out.dtype == torch.float32
    assert torch.equal(out, again)
    low, high = (0 - 0.45) / 0.225, (1 - 0.45) / 0.225
    assert out.min() >= low - 1e-5 and out.max() <= high + 1e-5


def test_train_random_resized_crop_and_rectangular_crop():
    clip = _uint8_clip()
    paras = {"scale": (0.5, 1.0)}
    out = create_video_transform("train", random_resized_crop_paras=paras, crop_size=(24, 16), min_size=32)(clip)
    assert out.shape == (3, 8, 24, 16)
    assert paras == {"scale": (0.5, 1.0)}  # the caller's dict is not modified


def test_train_flip_probability_one_flips_a_deterministic_crop():
    clip = _uint8_clip(h=32, w=32)
    kwargs = dict(min_size=32, max_size=32, crop_size=32, num_samples=None)
    flipped = create_video_transform("train", horizontal_flip_prob=1.0, **kwargs)(clip)
    plain = create_video_transform("train", horizontal_flip_prob=0.0, **kwargs)(clip)
    assert torch.allclose(flipped, plain.flip(-1))
    assert torch.allclose(plain, (clip.float() / 255 - 0.45) / 0.225, atol=1e-5)


def test_dict_input_with_video_key_and_remove_key():
    sample = {"video": _uint8_clip(), "audio": torch.zeros(10), "label": 3}
    out = create_video_transform("val", video_key="video", remove_key=["audio"], **_SMALL)(sample)
    assert set(out) == {"video", "label"} and out["video"].shape == (3, 8, 24, 24)


def test_batched_input():
    batch = torch.stack([_uint8_clip(), _uint8_clip()])
    transform = create_video_transform("val", **_SMALL)
    out = transform(batch)
    assert out.shape == (2, 3, 8, 24, 24)
    assert torch.allclose(out[1], transform(batch[1]), atol=1e-6)
    for aug_type in ("randaug", "augmix"):  # the T,C,H,W augmentations see [B, T, C, H, W] after Permute
        assert create_video_transform("train", aug_type=aug_type, **_SMALL)(batch).shape == (2, 3, 8, 24, 24)


def test_float_input_without_conversion():
    clip = torch.rand(3, 8, 40, 40)
    out = create_video_transform("val", convert_to_float=False, num_samples=None, **_SMALL)(clip)
    assert out.shape == (3, 8, 24, 24)


@pytest.mark.parametrize("kwargs, error", [
    (dict(mode="test"), ValueError),
    (dict(mode="val", crop_size=300), ValueError),
    (dict(mode="val", remove_key=["audio"]), ValueError),
    (dict(mode="train", aug_paras={"magnitude": 3}), ValueError),
    (dict(mode="train", aug_type="cutout"), ValueError),
    (dict(mode="train", aug_type="randaug", aug_paras={"strength": 3}), ValueError),
    (dict(mode="val", crop_size="big"), TypeError),
])
def test_bad_arguments_raise(kwargs, error):
    with pytest.raises(error):
        create_video_transform(**kwargs)


@pytest.mark.parametrize("aug_type", ["default", "randaug", "augmix"])
def test_pipelines_pickle_for_spawned_dataloader_workers(aug_type):
    transform = create_video_transform("train", aug_type=aug_type, video_key="video", remove_key=["audio"], **_SMALL)
    clone = pickle.loads(pickle.dumps(transform))
    sample = {"video": _uint8_clip(), "audio": torch.zeros(3)}
    torch.manual_seed(9)
    expected = transform(dict(sample))["video"]
    torch.manual_seed(9)
    assert torch.equal(clone(dict(sample))["video"], expected)
