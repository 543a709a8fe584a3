"""AugmentTransform ops, RandAugment and AugMix (layout T, C, H, W)."""
import pytest
import torch

from pyvideo.transforms import AugMix, RandAugment
from pyvideo.transforms import augmentations as aug


def _video(t=2, h=6, w=6, dtype=torch.float32):
    video = torch.rand(t, 3, h, w)
    return video if dtype.is_floating_point else (video * 255).to(dtype)


def test_invert_op_with_prob_one_and_zero():
    video = _video()
    assert torch.allclose(aug.AugmentTransform("Invert", prob=1.0)(video), 1.0 - video)
    assert aug.AugmentTransform("Invert", prob=0.0)(video) is video


def test_level_to_arg_functions():
    assert aug._increasing_magnitude_to_arg(5, (0.1, 1.8)) == pytest.approx((1.0,))
    assert aug._decreasing_int_to_arg(5, (4, 4)) == (2,)
    assert aug._decreasing_int_to_arg(10, (4, 4)) == (0,)
    assert aug._decreasing_to_arg(3, (1, 1)) == pytest.approx((0.7,))
    values = {round(aug._increasing_randomly_negate_to_arg(5, (1, 0.9))[0], 6) for _ in range(50)}
    assert values == {1.45, 0.55}


def test_posterize_and_equalize_on_float_video_go_through_uint8():
    video = torch.tensor([0.0, 100 / 255, 200 / 255, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    out = aug._posterize(video, 2)
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.0, 64.0, 192.0, 192.0]) / 255)
    assert torch.equal(aug._posterize(video, 8), video)
    assert out.dtype == torch.float32


def test_solarize_threshold_is_fraction_of_max_for_both_dtypes():
    u8 = torch.tensor([0, 127, 128, 255], dtype=torch.uint8).view(1, 1, 1, 4)
    assert aug._solarize(u8, 0.5)[0, 0, 0].tolist() == [0, 127, 127, 0]  # threshold 127.5
    floats = u8.float() / 255
    assert torch.allclose(aug._solarize(floats, 0.5), torch.tensor([0, 127, 127, 0]).float().view(1, 1, 1, 4) / 255)


def test_rotate_op_matches_rot90_and_uses_fill():
    video = _video(h=5, w=5)
    hparas = {"fill": (0.5, 0.5, 0.5)}
    assert torch.allclose(aug._rotate(video, 90.0, **hparas), torch.rot90(video, 1, dims=(-2, -1)), atol=1e-5)
    corners = aug._rotate(torch.zeros(1, 3, 8, 8), 45.0, **hparas)[0, :, 0, 0]
    assert torch.allclose(corners, torch.full((3,), 0.5))
    with pytest.raises(ValueError):
        aug._rotate(video, 90.0)


def test_translate_op_shifts_by_fraction_and_fills_in_dtype_range():
    video = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).expand(1, 3, 4, 4).contiguous()
    out = aug._translate_x(video, 0.25, fill=(0.5, 0.5, 0.5))  # 0.25 * W = 1 pixel to the left
    assert torch.equal(out[..., :3], video[..., 1:])
    assert out[..., 3].unique().tolist() == [128]  # fill 0.5 of 255 = 127.5 -> 128
    down = aug._translate_y(video.float(), -0.25, fill=(0.0, 0.0, 0.0))  # 1 pixel down
    assert torch.equal(down[..., 1:, :], video[..., :3, :].float()) and down[..., 0, :].abs().max() == 0


def test_shear_x_matrix_matches_upstream():
    # upstream's matrix [1, f, H f / 2, 0, 1, 0]: row i reads input x + f (i + 1/2); f = 2 gives shifts 1 and 3
    video = torch.arange(16, dtype=torch.float32).view(1, 1, 2, 8)
    out = aug._shear_x(video, 2.0, fill=(-1.0,))
    assert torch.allclose(out[0, 0, 0, :7], video[0, 0, 0, 1:])
    assert torch.allclose(out[0, 0, 1, :5], video[0, 0, 1, 3:])
    assert torch.allclose(out[0, 0, 1, 5:], torch.full((3,), -1.0))


def test_colour_ops_and_autocontrast():
    video = _video()
    assert torch.allclose(aug._adjust_brightness(video, 0.5), video * 0.5)
    assert torch.allclose(aug._adjust_saturation(video, 1.0), video)
    stretched = aug._autocontrast(video * 0.5 + 0.25)
    assert torch.allclose(stretched.amin(dim=(-2, -1)), torch.zeros(2, 3), atol=1e-6)
    assert torch.allclose(stretched.amax(dim=(-2, -1)), torch.ones(2, 3), atol=1e-6)
    assert torch.allclose(aug._invert(video), 1.0 - video)


def test_every_op_keeps_shape_dtype_and_range():
    for dtype in (torch.float32, torch.uint8):
        video = _video(dtype=dtype)
        for name in aug._NAME_TO_TRANSFORM_FUNC:
            out = aug.AugmentTransform(name, magnitude=9, prob=1.0)(video)
            assert out.shape == video.shape and out.dtype == dtype, name
            if dtype.is_floating_point:
                assert 0.0 <= out.min() and out.max() <= 1.0, name


def test_magnitude_sampling():
    torch.manual_seed(0)
    gaussian = aug.AugmentTransform("Rotate", magnitude=9, sampling_hparas={"sampling_std": 5.0})
    draws = [gaussian._get_magnitude() for _ in range(200)]
    assert min(draws) >= 0 and max(draws) <= 10 and max(draws) == 10  # clamped to [0, max_level]
    uniform_int = aug.AugmentTransform("Rotate", magnitude=3, sampling_type="uniform")
    assert {uniform_int._get_magnitude() for _ in range(100)} == {0, 1, 2, 3}
    uniform_float = aug.AugmentTransform("Rotate", magnitude=3, sampling_type="uniform",
                                         sampling_hparas={"sampling_data_type": "float", "sampling_min": 0.1})
    floats = [uniform_float._get_magnitude() for _ in range(100)]
    assert all(0.1 <= f <= 3 for f in floats) and len(set(floats)) == 100
    with pytest.raises(ValueError):
        aug.AugmentTransform("Blur")
    with pytest.raises(ValueError):
        aug.AugmentTransform("Rotate", sampling_type="beta")


@pytest.mark.parametrize("make", [lambda: RandAugment(prob=1.0), lambda: AugMix(), lambda: AugMix(depth=2, width=2)],
                         ids=["randaug", "augmix", "augmix_depth2"])
def test_randaugment_and_augmix_ranges_and_determinism(make):
    for dtype in (torch.float32, torch.uint8):
        video = _video(t=3, h=8, w=8, dtype=dtype)
        torch.manual_seed(11)
        first = make()(video)
        torch.manual_seed(11)
        second = make()(video)
        assert first.dtype == dtype and first.shape == video.shape
        assert torch.equal(first, second)
        if dtype.is_floating_point:
            assert first.min() >= 0.0 and first.max() <= 1.0
        outputs = set()
        for seed in range(5):
            torch.manual_seed(seed)
            outputs.add(make()(video).sum().item())
        assert len(outputs) > 1  # different seeds give different augmentations


def test_randaugment_applies_the_same_op_to_every_frame():
    frame = torch.rand(3, 8, 8)
    video = frame.expand(4, 3, 8, 8).contiguous()
    torch.manual_seed(2)
    out = RandAugment(magnitude=9, prob=1.0)(video)
    assert all(torch.allclose(out[t], out[0]) for t in range(4))


def test_augmix_is_a_convex_mix_of_the_original():
    torch.manual_seed(0)
    video = torch.full((2, 3, 6, 6), 0.5)
    out = AugMix(magnitude=1)(video)
    assert out.min() >= 0.0 and out.max() <= 1.0
    with pytest.raises(ValueError):
        AugMix(magnitude=0)
    with pytest.raises(ValueError):
        AugMix(alpha=0.0)


def test_augment_batch_of_videos():
    batch = torch.rand(2, 3, 3, 6, 6)  # [B, T, C, H, W]
    torch.manual_seed(4)
    out = RandAugment(prob=1.0)(batch)
    assert out.shape == batch.shape
