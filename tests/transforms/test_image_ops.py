"""The torch-only image ops (replacing torchvision's functional ops) on tiny hand-computed images."""
import math

import pytest
import torch

from pyvideo.transforms import _image_ops as ops


def _u8(values):
    return torch.tensor(values, dtype=torch.uint8)


def test_invert():
    assert ops.invert(_u8([0, 10, 255])).tolist() == [255, 245, 0]
    assert torch.allclose(ops.invert(torch.tensor([0.25, 1.0])), torch.tensor([0.75, 0.0]))


def test_posterize_keeps_top_bits():
    # 2 bits keep mask 0b11000000 = 192
    assert ops.posterize(_u8([0, 63, 64, 200, 255]), 2).tolist() == [0, 0, 64, 192, 192]
    assert ops.posterize(_u8([0, 63, 255]), 8).tolist() == [0, 63, 255]
    assert ops.posterize(_u8([0, 63, 255]), 0).tolist() == [0, 0, 0]
    with pytest.raises(TypeError):
        ops.posterize(torch.zeros(3), 2)


def test_solarize_inverts_at_or_above_threshold():
    assert ops.solarize(_u8([0, 127, 128, 200]), 128).tolist() == [0, 127, 127, 55]
    assert torch.allclose(ops.solarize(torch.tensor([0.2, 0.5, 0.9]), 0.5), torch.tensor([0.2, 0.5, 0.1]))


def test_equalize_known_histogram():
    # 32x32 pixels: 512 at 0, 256 at 100, 256 at 200. step = (1024 - 256) // 255 = 3 (the brightest level is
    # left out); lut[v] = (pixels below v + step // 2) // step: 0 -> 0, 100 -> 513 // 3 = 171, 200 -> 769 // 3 -> 255
    img = torch.zeros(1, 32, 32, dtype=torch.uint8)
    img.view(-1)[512:768] = 100
    img.view(-1)[768:] = 200
    out = ops.equalize(img)
    assert out.view(-1)[:512].unique().tolist() == [0]
    assert out.view(-1)[512:768].unique().tolist() == [171]
    assert out.view(-1)[768:].unique().tolist() == [255]


def test_equalize_is_per_channel_and_keeps_flat_images():
    flat = torch.full((2, 3, 4, 4), 77, dtype=torch.uint8)
    assert torch.equal(ops.equalize(flat), flat)  # step 0: unchanged
    img = torch.zeros(2, 32, 32, dtype=torch.uint8)
    img[0].view(-1)[512:] = 100  # channel 0 equalises, channel 1 (flat) stays
    out = ops.equalize(img)
    assert torch.equal(out[1], img[1])
    assert out[0].unique().tolist() == [0, 255]


def test_autocontrast_per_channel():
    img = _u8([[[50, 100, 150]], [[7, 7, 7]]])  # [C=2, H=1, W=3]
    out = ops.autocontrast(img)
    assert out[0, 0].tolist() == [0, 128, 255]  # (x - 50) * 255 / 100; 127.5 rounds to even 128
    assert out[1, 0].tolist() == [7, 7, 7]  # flat channel untouched
    floats = ops.autocontrast(torch.tensor([[[0.2, 0.4, 0.6]]]))
    assert torch.allclose(floats, torch.tensor([[[0.0, 0.5, 1.0]]]))


@pytest.mark.parametrize("size", [4, 5])
def test_rotate_90_equals_rot90(size):
    img = torch.rand(2, 3, size, size)
    assert torch.allclose(ops.rotate(img, 90.0), torch.rot90(img, 1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(ops.rotate(img, -90.0), torch.rot90(img, -1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(ops.rotate(img, 0.0), img, atol=1e-6)


def test_rotate_fills_uncovered_corners():
    img = torch.zeros(3, 8, 8)
    out = ops.rotate(img, 45.0, fill=[1.0, 0.5, 0.25])
    assert torch.allclose(out[:, 0, 0], torch.tensor([1.0, 0.5, 0.25]))  # corner falls outside the source
    assert out[:, 4, 4].abs().max() < 1e-6  # the centre stays inside


def test_affine_integer_translation_is_exact_shift():
    img = torch.arange(12, dtype=torch.float32).view(1, 3, 4)
    out = ops.affine(img, [1, 0, 1, 0, 1, 0], fill=[-1.0])  # output(x) = input(x + 1)
    assert torch.allclose(out[0, :, :3], img[0, :, 1:])
    assert torch.allclose(out[0, :, 3], torch.full((3,), -1.0))


def test_brightness_contrast_saturation():
    img = torch.tensor([[[0.2, 0.4], [0.6, 0.8]]]).expand(3, 2, 2)  # grey: r = g = b
    assert torch.allclose(ops.adjust_brightness(img, 0.5), img * 0.5)
    assert torch.allclose(ops.adjust_brightness(img, 2.0), (img * 2).clamp(max=1.0))
    grey_mean = 0.5 * sum(ops._GRAYSCALE_WEIGHTS)
    assert torch.allclose(ops.adjust_contrast(img, 0.5), 0.5 * img + 0.5 * grey_mean)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert torch.allclose(ops.adjust_saturation(red, 0.0), torch.full((3, 1, 1), 0.2989))
    with pytest.raises(ValueError):
        ops.adjust_contrast(img, -1.0)


def test_brightness_on_uint8_rounds_and_clamps():
    assert ops.adjust_brightness(_u8([[[10, 101, 200]]]), 1.5)[0, 0].tolist() == [15, 152, 255]  # 151.5 -> 152


def test_sharpness_blends_with_smoothed_interior():
    img = torch.zeros(1, 3, 3)
    img[0, 1, 1] = 1.0  # smoothing kernel puts 5/13 of the centre back on it
    out = ops.adjust_sharpness(img, 0.5)
    assert math.isclose(out[0, 1, 1].item(), 0.5 + 0.5 * 5 / 13, rel_tol=1e-6)
    assert out[0, 0, 0].item() == 0.0  # borders keep the original
    tiny = torch.rand(1, 2, 5)
    assert torch.equal(ops.adjust_sharpness(tiny, 0.0), tiny)  # too small to have an interior: unchanged


def test_hue_rotation_and_hsv_roundtrip():
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert torch.allclose(ops.adjust_hue(red, 1 / 3), torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1), atol=1e-6)
    assert torch.allclose(ops.adjust_hue(red, -1 / 3), torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1), atol=1e-6)
    img = torch.rand(2, 3, 5, 5)
    assert torch.allclose(ops.hsv_to_rgb(ops.rgb_to_hsv(img)), img, atol=1e-5)
    hsv = ops.rgb_to_hsv(torch.tensor([0.5, 0.25, 0.0]).view(3, 1, 1))  # orange: hue 30 deg, s 1, v 0.5
    assert torch.allclose(hsv.flatten(), torch.tensor([30 / 360, 1.0, 0.5]))
    with pytest.raises(ValueError):
        ops.adjust_hue(red, 0.6)


def test_gaussian_blur_impulse_response():
    img = torch.zeros(1, 5, 5)
    img[0, 2, 2] = 1.0
    out = ops.gaussian_blur(img, (3, 3), (1.0, 1.0))
    edge = math.exp(-0.5)
    centre_w, side_w = 1 / (1 + 2 * edge), edge / (1 + 2 * edge)
    assert math.isclose(out[0, 2, 2].item(), centre_w ** 2, rel_tol=1e-5)
    assert math.isclose(out[0, 2, 3].item(), centre_w * side_w, rel_tol=1e-5)
    assert math.isclose(out[0, 1, 3].item(), side_w ** 2, rel_tol=1e-5)
    assert out[0, 0, 0].item() == 0.0
    assert math.isclose(out.sum().item(), 1.0, rel_tol=1e-5)
    with pytest.raises(ValueError):
        ops.gaussian_blur(img, (2, 3), (1.0, 1.0))


def test_convert_image_dtype():
    assert torch.allclose(ops.convert_image_dtype(_u8([0, 255, 51]), torch.float32), torch.tensor([0.0, 1.0, 0.2]))
    out = ops.convert_image_dtype(torch.tensor([0.0, 1.0, 0.5, 1.5, -0.2]), torch.uint8)
    assert out.tolist() == [0, 255, 127, 255, 0]  # x * 255.999 truncated; out-of-range clamped
    with pytest.raises(TypeError):
        ops.convert_image_dtype(torch.zeros(2, dtype=torch.int32), torch.float32)
