"""pyvideo.transforms.functional against hand-computed expectations."""
import math
import sys

import pytest
import torch
import torch.nn.functional as F

from pyvideo.transforms import functional as VF


def _clip(c=3, t=4, h=6, w=8, dtype=torch.float32):
    """A clip whose every element is distinct (its flat index)."""
    return torch.arange(c * t * h * w, dtype=dtype).reshape(c, t, h, w)


# ---- temporal subsampling ------------------------------------------------------------------------------------

@pytest.mark.parametrize("t, num, expected", [
    (10, 4, [0, 3, 6, 9]),        # linspace(0, 9, 4) is exact
    (10, 3, [0, 4, 9]),           # 4.5 truncates to 4
    (3, 5, [0, 0, 1, 1, 2]),      # more samples than frames repeats frames
    (7, 1, [0]),
])
def test_uniform_temporal_subsample_picks_linspace_indices(t, num, expected):
    frames = torch.arange(t, dtype=torch.float32).view(1, t, 1, 1).expand(2, t, 3, 3)
    out = VF.uniform_temporal_subsample(frames, num)
    assert out.shape == (2, num, 3, 3)
    assert out[0, :, 0, 0].tolist() == expected


def test_uniform_temporal_subsample_other_dim_and_batch():
    x = torch.arange(10).view(10, 1)
    assert VF.uniform_temporal_subsample(x, 4, temporal_dim=0).flatten().tolist() == [0, 3, 6, 9]
    batch = torch.stack([_clip(t=10), _clip(t=10) + 1])
    out = VF.uniform_temporal_subsample(batch, 4)
    assert torch.equal(out[1], VF.uniform_temporal_subsample(batch[1], 4))


def test_uniform_temporal_subsample_rejects_bad_input():
    with pytest.raises(ValueError):
        VF.uniform_temporal_subsample(_clip(), 0)


def test_uniform_temporal_subsample_repeated_ratios():
    frames = torch.arange(8, dtype=torch.float32).view(1, 8, 1, 1)
    fast, slow = VF.uniform_temporal_subsample_repeated(frames, (1, 4))
    assert fast.flatten().tolist() == list(range(8))
    assert slow.flatten().tolist() == [0, 7]  # 8 // 4 = 2 samples: linspace(0, 7, 2)


# ---- short side scale -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, w, size, expected", [
    (4, 6, 2, (2, 3)),
    (3, 7, 2, (2, 4)),     # floor(7 * 2 / 3) = floor(4.67) = 4
    (10, 4, 3, (7, 3)),    # portrait: floor(10 * 3 / 4) = 7
    (5, 5, 8, (8, 8)),
])
def test_short_side_scale_output_size(h, w, size, expected):
    out = VF.short_side_scale(torch.rand(3, 2, h, w), size)
    assert out.shape == (3, 2) + expected


def test_short_side_scale_halving_is_2x2_average():
    x = torch.rand(3, 2, 4, 6)
    # bilinear, align_corners=False, exact factor 1/2 samples midway between pixel pairs = 2x2 mean
    expected = F.avg_pool2d(x, 2)
    assert torch.allclose(VF.short_side_scale(x, 2), expected, atol=1e-6)


def test_short_side_scale_equals_interpolate_and_batches():
    x = torch.rand(2, 3, 4, 9, 12)
    out = VF.short_side_scale(x, 6, interpolation="bicubic")
    assert out.shape == (2, 3, 4, 6, 8)
    ref = F.interpolate(x[1], size=(6, 8), mode="bicubic", align_corners=False)
    assert torch.allclose(out[1], ref, atol=1e-6)


def test_short_side_scale_rejects_bad_input():
    with pytest.raises(TypeError):
        VF.short_side_scale(torch.zeros(3, 2, 4, 4, dtype=torch.uint8), 2)
    with pytest.raises(ValueError):
        VF.short_side_scale(torch.zeros(3, 2, 4, 4), 2, backend="pillow")
    with pytest.raises(ValueError):
        VF.short_side_scale(torch.zeros(3, 2, 4, 4), 2, interpolation="trilinear")
    with pytest.raises(ValueError):
        VF.short_side_scale(torch.zeros(4, 4), 2)


def test_short_side_scale_opencv_backend_without_cv2(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes "import cv2" fail
    with pytest.raises(ImportError, match="OpenCV"):
        VF.short_side_scale(torch.zeros(3, 2, 4, 4), 2, backend="opencv")


def test_short_side_scale_opencv_backend_with_cv2():
    pytest.importorskip("cv2")
    x = torch.rand(3, 2, 4, 8)
    out = VF.short_side_scale(x, 2, interpolation="nearest", backend="opencv")
    assert out.shape == (3, 2, 2, 4)


# ---- spatial crops --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, w, idx, y0, x0", [
    (4, 8, 0, 0, 0), (4, 8, 1, 0, 2), (4, 8, 2, 0, 4),   # landscape: left / centre / right
    (4, 7, 1, 0, 2),                                       # ceil((7 - 4) / 2) = 2
    (9, 5, 0, 0, 0), (9, 5, 1, 2, 0), (9, 5, 2, 4, 0),   # portrait: top / centre / bottom
])
def test_uniform_crop_offsets(h, w, idx, y0, x0):
    size = min(h, w)
    clip = _clip(h=h, w=w)
    out = VF.uniform_crop(clip, size, idx)
    assert torch.equal(out, clip[:, :, y0:y0 + size, x0:x0 + size])


def test_uniform_crop_batch_and_errors():
    batch = torch.stack([_clip(), -_clip()])
    out = VF.uniform_crop(batch, 4, 2)
    assert torch.equal(out[1], VF.uniform_crop(batch[1], 4, 2))
    with pytest.raises(ValueError):
        VF.uniform_crop(_clip(), 4, 3)
    with pytest.raises(ValueError):
        VF.uniform_crop(_clip(), 7, 1)  # larger than H = 6


def test_random_resized_crop_full_window_is_plain_resize():
    frames = torch.rand(3, 4, 8, 12)
    # scale 1 and the frame's own aspect ratio select the whole frame
    out = VF.random_resized_crop(frames, 5, 7, scale=(1.0, 1.0), aspect_ratio=(1.5, 1.5))
    assert torch.allclose(out, F.interpolate(frames, size=(5, 7), mode="bilinear", align_corners=False))


def test_random_resized_crop_falls_back_to_centre_crop():
    frames = torch.rand(3, 2, 8, 20)
    # ratio 10 never fits: fallback keeps the width and takes h = round(20 / 10) = 2 rows at (8 - 2) // 2 = 3
    out = VF.random_resized_crop(frames, 4, 4, scale=(1.0, 1.0), aspect_ratio=(10.0, 10.0), num_tries=3)
    ref = F.interpolate(frames[:, :, 3:5, :], size=(4, 4), mode="bilinear", align_corners=False)
    assert torch.allclose(out, ref)


def test_random_resized_crop_shift_with_equal_windows_matches_no_shift():
    frames = torch.rand(2, 3, 3, 8, 12)
    kwargs = dict(scale=(1.0, 1.0), aspect_ratio=(1.5, 1.5))
    assert torch.allclose(VF.random_resized_crop(frames, 4, 6, shift=True, **kwargs),
                          VF.random_resized_crop(frames, 4, 6, **kwargs), atol=1e-6)


def test_random_resized_crop_generator_reproducible_and_in_bounds():
    frames = torch.rand(3, 2, 16, 16)
    outs = [VF.random_resized_crop(frames, 8, 8, (0.08, 1.0), (0.75, 1.33), generator=torch.Generator().manual_seed(5))
            for _ in range(2)]
    assert torch.equal(outs[0], outs[1])
    top, left, h, w = VF._get_param_spatial_crop((0.08, 1.0), (0.75, 1.33), 16, 16,
                                                 generator=torch.Generator().manual_seed(5))
    assert 0 <= top <= 16 - h and 0 <= left <= 16 - w and 0 < h <= 16 and 0 < w <= 16
    with pytest.raises(ValueError):
        VF.random_resized_crop(frames, 8, 8, (0.0, 1.0), (0.75, 1.33))


# ---- boxes -----------------------------------------------------------------------------------------------------

def test_crop_and_clip_boxes():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    assert VF.crop_boxes(boxes, 5, 8).tolist() == [[5.0, 12.0, 25.0, 32.0]]
    clipped = VF.clip_boxes_to_image(torch.tensor([[-5.0, 3.0, 50.0, 70.0]]), height=60, width=40)
    assert clipped.tolist() == [[0.0, 3.0, 39.0, 59.0]]
    assert boxes.tolist() == [[10.0, 20.0, 30.0, 40.0]]  # inputs untouched


def test_horizontal_flip_with_boxes():
    images = _clip(w=10)
    boxes = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    flipped, flipped_boxes = VF.horizontal_flip_with_boxes(1.0, images, boxes)
    assert torch.equal(flipped, images.flip(-1))
    assert flipped_boxes.tolist() == [[6.0, 2.0, 8.0, 4.0]]  # x -> W - 1 - x, x1/x2 swapped
    same, same_boxes = VF.horizontal_flip_with_boxes(0.0, images, boxes)
    assert torch.equal(same, images) and torch.equal(same_boxes, boxes)


def test_uniform_crop_with_boxes():
    images = _clip(h=4, w=8)
    boxes = torch.tensor([[5.0, 1.0, 7.0, 3.0], [0.0, 0.0, 7.0, 3.0]])
    cropped, out_boxes = VF.uniform_crop_with_boxes(images, 4, 2, boxes)  # x offset 4
    assert torch.equal(cropped, images[..., 4:8])
    assert out_boxes.tolist() == [[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 3.0, 3.0]]


def test_short_side_scale_with_boxes_scales_boxes():
    images = torch.rand(3, 2, 4, 8)
    boxes = torch.tensor([[2.0, 2.0, 6.0, 4.0]])
    scaled, scaled_boxes = VF.short_side_scale_with_boxes(images, boxes, 2)
    assert scaled.shape == (3, 2, 2, 4)
    assert scaled_boxes.tolist() == [[1.0, 1.0, 3.0, 2.0]]
    assert boxes.tolist() == [[2.0, 2.0, 6.0, 4.0]]
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        scaled, scaled_boxes = VF.random_short_side_scale_with_boxes(images, boxes, 4, 8, generator=gen)
        factor = scaled.shape[-2] / 4
        assert 4 <= scaled.shape[-2] <= 8
        assert torch.allclose(scaled_boxes, boxes * factor)


def test_random_crop_with_boxes_covers_every_offset():
    images = _clip(h=6, w=8)
    boxes = torch.tensor([[0.0, 0.0, 7.0, 5.0]])
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        cropped, out_boxes = VF.random_crop_with_boxes(images, 4, boxes, generator=gen)
        corner = cropped[0, 0, 0, 0].item()  # element (0, 0, y, x) of _clip holds y * 8 + x
        y, x = divmod(int(corner), 8)
        assert torch.equal(cropped, images[..., y:y + 4, x:x + 4])
        assert out_boxes.tolist() == [[0.0, 0.0, min(7.0 - x, 3.0), min(5.0 - y, 3.0)]]
        seen.add((y, x))
    assert seen == {(y, x) for y in range(3) for x in range(5)}  # offsets 0..H-size and 0..W-size inclusive


def test_random_crop_with_boxes_full_size_returns_pair():
    images, boxes = _clip(h=4, w=4), torch.tensor([[1.0, 1.0, 2.0, 2.0]])
    cropped, out_boxes = VF.random_crop_with_boxes(images, 4, boxes)
    assert torch.equal(cropped, images) and torch.equal(out_boxes, boxes)


# ---- labels and scaling ---------------------------------------------------------------------------------------

def test_convert_to_one_hot():
    hard = VF.convert_to_one_hot(torch.tensor([0, 2]), 3)
    assert hard.dtype == torch.long and hard.tolist() == [[1, 0, 0], [0, 0, 1]]
    soft = VF.convert_to_one_hot(torch.tensor([0, 2]), 3, label_smooth=0.3)
    # non-target 0.3 / 3 = 0.1, target 1 - 0.3 + 0.1 = 0.8
    assert torch.allclose(soft, torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]))
    assert torch.allclose(soft.sum(dim=1), torch.ones(2))
    with pytest.raises(ValueError):
        VF.convert_to_one_hot(torch.tensor([3]), 3)
    with pytest.raises(ValueError):
        VF.convert_to_one_hot(torch.tensor([0]), 3, label_smooth=1.0)


def test_div_255():
    assert torch.allclose(VF.div_255(torch.tensor([0.0, 51.0, 255.0])), torch.tensor([0.0, 0.2, 1.0]))
    assert math.isclose(VF.div_255(torch.tensor(127.5)).item(), 0.5)
