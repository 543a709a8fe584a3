"""Parity with torchvision's tensor ops, for developers who have torchvision installed (pyvideo never needs it).

Float images must match to float rounding; uint8 images may differ by one level, because pyvideo rounds where
torchvision truncates.
"""
import pytest
import torch

from pyvideo.transforms import _image_ops as ops

TF = pytest.importorskip("torchvision.transforms.functional")
InterpolationMode = pytest.importorskip("torchvision.transforms").InterpolationMode

_CASES = {
    "brightness": (lambda x: ops.adjust_brightness(x, 1.3), lambda x: TF.adjust_brightness(x, 1.3)),
    "contrast": (lambda x: ops.adjust_contrast(x, 0.6), lambda x: TF.adjust_contrast(x, 0.6)),
    "saturation": (lambda x: ops.adjust_saturation(x, 1.7), lambda x: TF.adjust_saturation(x, 1.7)),
    "sharpness": (lambda x: ops.adjust_sharpness(x, 1.8), lambda x: TF.adjust_sharpness(x, 1.8)),
    "hue": (lambda x: ops.adjust_hue(x, 0.23), lambda x: TF.adjust_hue(x, 0.23)),
    "autocontrast": (ops.autocontrast, TF.autocontrast),
    "invert": (ops.invert, TF.invert),
    "rotate": (lambda x: ops.rotate(x, 33.0, fill=[0.5 * ops.max_value(x.dtype)] * 3),
               lambda x: TF.rotate(x, 33.0, interpolation=InterpolationMode.BILINEAR,
                                   fill=[0.5 * ops.max_value(x.dtype)] * 3)),
    "gaussian_blur": (lambda x: ops.gaussian_blur(x, (5, 3), (1.3, 0.7)),
                      lambda x: TF.gaussian_blur(x, [5, 3], [1.3, 0.7])),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("name", sorted(_CASES))
def test_matches_torchvision(name, dtype):
    torch.manual_seed(0)
    img = torch.rand(4, 3, 17, 23)
    img = img if dtype.is_floating_point else (img * 255).to(dtype)
    ours, theirs = (fn(img) for fn in _CASES[name])
    tolerance = 1e-5 if dtype.is_floating_point else 1
    assert (ours.float() - theirs.float()).abs().max() <= tolerance


def test_uint8_only_ops_match_torchvision():
    torch.manual_seed(0)
    img = (torch.rand(4, 3, 17, 23) * 255).to(torch.uint8)
    assert torch.equal(ops.equalize(img), TF.equalize(img))
    assert torch.equal(ops.posterize(img, 3), TF.posterize(img, 3))
    assert torch.equal(ops.solarize(img, 100), TF.solarize(img, 100))
