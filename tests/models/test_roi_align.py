import math

import pytest
import torch

from pyvideo.ops import RoIAlign, roi_align


def _bilinear(feature, y, x):
    """One bilinear sample with torchvision's boundary rules (feature: [H, W])."""
    height, width = feature.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    f = feature
    return (
        hy * hx * f[y_low, x_low].item()
        + hy * lx * f[y_low, x_high].item()
        + ly * hx * f[y_high, x_low].item()
        + ly * lx * f[y_high, x_high].item()
    )


def reference_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """Straightforward per-sample loop, written from the algorithm's description."""
    out_h, out_w = output_size
    num_rois = rois.shape[0]
    channels = input.shape[1]
    output = torch.zeros(num_rois, channels, out_h, out_w, dtype=torch.float64)
    offset = 0.5 if aligned else 0.0
    for k in range(num_rois):
        b = int(rois[k, 0])
        x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in rois[k, 1:])
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
        count = max(grid_h * grid_w, 1)
        for c in range(channels):
            for ph in range(out_h):
                for pw in range(out_w):
                    total = 0.0
                    for iy in range(grid_h):
                        y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                        for ix in range(grid_w):
                            x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                            total += _bilinear(input[b, c], y, x)
                    output[k, c, ph, pw] = total / count
    return output


BOX_SETS = {
    # (batch_idx, x1, y1, x2, y2) in image coordinates; feature maps are 2x smaller (spatial_scale 0.5)
    "inside": [[0, 2.0, 3.0, 12.0, 10.0], [1, 0.0, 0.0, 15.0, 13.0]],
    "partly_outside": [[0, -6.0, -3.0, 7.0, 5.5], [1, 10.0, 8.0, 24.0, 21.0], [0, 13.0, 1.0, 30.0, 4.0]],
    "tiny_and_degenerate": [[1, 4.3, 4.3, 4.8, 5.1], [0, 6.0, 6.0, 6.0, 6.0], [1, 1.2, 9.7, 2.9, 11.3]],
    "far_outside": [[0, 40.0, 40.0, 50.0, 52.0]],
}


@pytest.mark.parametrize("boxes_name", sorted(BOX_SETS))
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [0, -1, 2])
def test_matches_loop_reference(boxes_name, aligned, sampling_ratio):
    generator = torch.Generator().manual_seed(0)
    input = torch.randn(2, 3, 7, 8, dtype=torch.float64, generator=generator)
    rois = torch.tensor(BOX_SETS[boxes_name], dtype=torch.float64)
    output_size = (3, 2)
    got = roi_align(input, rois, output_size, 0.5, sampling_ratio, aligned)
    want = reference_roi_align(input, rois, output_size, 0.5, sampling_ratio, aligned)
    assert got.shape == (rois.shape[0], 3, 3, 2)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_far_outside_box_gives_zeros_and_inside_box_is_not_zero():
    input = torch.ones(1, 1, 5, 5, dtype=torch.float64)
    rois = torch.tensor([[0, 20.0, 20.0, 30.0, 30.0], [0, 1.0, 1.0, 3.0, 3.0]], dtype=torch.float64)
    out = roi_align(input, rois, 2, 1.0, 2, False)
    assert torch.all(out[0] == 0)
    # a constant map interpolates to the constant everywhere inside
    torch.testing.assert_close(out[1], torch.ones(1, 2, 2, dtype=torch.float64))


def test_list_of_boxes_equals_tensor_form_and_module():
    generator = torch.Generator().manual_seed(1)
    input = torch.randn(2, 4, 9, 9, generator=generator)
    per_image = [torch.tensor([[1.0, 1.0, 6.0, 7.0]]), torch.tensor([[0.0, 2.0, 8.0, 8.0], [3.0, 3.0, 4.0, 5.0]])]
    rois = torch.tensor([[0, 1.0, 1.0, 6.0, 7.0], [1, 0.0, 2.0, 8.0, 8.0], [1, 3.0, 3.0, 4.0, 5.0]])
    module = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    torch.testing.assert_close(roi_align(input, per_image, 2, 1.0, 0, True), module(input, rois))
    assert "aligned=True" in repr(module)


def test_float32_matches_reference():
    generator = torch.Generator().manual_seed(2)
    input = torch.randn(1, 2, 6, 6, generator=generator)
    rois = torch.tensor([[0, 0.7, 1.3, 9.1, 8.4]])
    got = roi_align(input, rois, (2, 3), 0.5, -1, False)
    want = reference_roi_align(input.double(), rois.double(), (2, 3), 0.5, -1, False)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_gradcheck(aligned, sampling_ratio):
    generator = torch.Generator().manual_seed(3)
    input = torch.randn(2, 2, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    rois = torch.tensor(
        [[0, 0.5, 0.7, 4.2, 3.9], [1, -1.0, 1.0, 3.0, 6.5], [1, 2.2, 0.1, 5.9, 2.0]], dtype=torch.float64
    )
    assert torch.autograd.gradcheck(lambda x: roi_align(x, rois, (2, 2), 1.0, sampling_ratio, aligned), (input,))


def test_empty_boxes_and_bad_input():
    input = torch.randn(1, 3, 4, 4)
    assert roi_align(input, torch.zeros(0, 5), 2).shape == (0, 3, 2, 2)
    with pytest.raises(ValueError, match="shape"):
        roi_align(input, torch.zeros(2, 4), 2)
    with pytest.raises(ValueError, match="4-D"):
        roi_align(torch.randn(3, 4, 4), torch.zeros(1, 5), 2)
    with pytest.raises(ValueError, match="batch indices"):
        roi_align(input, torch.tensor([[1.0, 0, 0, 2, 2]]), 2)
    with pytest.raises(ValueError, match="output_size"):
        roi_align(input, torch.zeros(1, 5), (0, 2))
    with pytest.raises(TypeError):
        roi_align(input, "boxes", 2)
