"""The pilot op torch.ops.pyvideo.depthwise_conv3d against torch.nn.functional.conv3d(groups=C), at every ISA level."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from pyvideo._native import native, using_isa
from pyvideo.ops.depthwise_conv3d import depthwise_conv3d, depthwise_conv3d_fn

LEVELS = native().supported_isas()

# (channels, T, H, W, kernel, stride, padding): 3x3x3 and 5x1x1 as in X3D, odd sizes, vector-tail channel counts
CASES = [
    (54, 4, 20, 20, (3, 3, 3), (1, 2, 2), (1, 1, 1)),
    (54, 4, 11, 13, (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    (17, 5, 7, 9, (5, 1, 1), (1, 1, 1), (2, 0, 0)),
    (8, 3, 5, 5, (1, 3, 3), (1, 2, 2), (0, 1, 1)),
    (3, 6, 9, 7, (3, 3, 3), (2, 2, 2), (1, 1, 1)),
    (33, 3, 6, 6, (3, 3, 3), (1, 1, 1), (0, 0, 0)),
    (5, 2, 4, 4, (1, 1, 1), (1, 1, 1), (0, 1, 2)),  # padding wider than the kernel: border outputs are bias only
    (1, 1, 1, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    (64, 1, 3, 3, (3, 3, 3), (1, 3, 3), (1, 1, 1)),
    (24, 7, 15, 4, (3, 1, 1), (3, 1, 2), (1, 0, 0)),
]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "C{}_T{}_H{}_W{}_k{}_s{}_p{}".format(*c))
@pytest.mark.parametrize("batch, bias, channels_last", [(1, True, True), (2, False, False)])
def test_matches_torch(level, case, batch, bias, channels_last):
    c, t, h, w, k, s, p = case
    g = torch.Generator().manual_seed(hash(case) % 2**31)
    x = torch.randn(batch, c, t, h, w, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    weight = torch.randn(c, 1, *k, generator=g)
    b = torch.randn(c, generator=g) if bias else None
    with using_isa(level):
        got = depthwise_conv3d(x, weight, b, list(s), list(p))
    expected = F.conv3d(x, weight, b, s, p, 1, c)
    assert got.shape == expected.shape
    assert got.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_threads_do_not_change_results():
    x = torch.randn(2, 40, 5, 12, 12)
    w = torch.randn(40, 1, 3, 3, 3)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = depthwise_conv3d_fn(x, w, None, 1, 1)
        torch.set_num_threads(2)
        two = depthwise_conv3d_fn(x, w, None, 1, 1)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(x=torch.randn(1, 4, 3, 5, 5).double()), TypeError, "float32"),
        (dict(x=torch.randn(4, 3, 5, 5)), ValueError, "5-D"),
        (dict(w=torch.randn(4, 2, 3, 3, 3)), ValueError, "depthwise"),
        (dict(w=torch.randn(5, 1, 3, 3, 3)), ValueError, "C=4"),
        (dict(b=torch.randn(3)), ValueError, "bias"),
        (dict(stride=[1, 0, 1]), ValueError, "stride"),
        (dict(w=torch.randn(4, 1, 9, 3, 3)), ValueError, "larger"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    args = dict(x=torch.randn(1, 4, 3, 5, 5), w=torch.randn(4, 1, 3, 3, 3), b=None, stride=[1, 1, 1], padding=[1, 1, 1])
    args.update(kwargs)
    with pytest.raises(error, match=match):
        depthwise_conv3d(args["x"], args["w"], args["b"], args["stride"], args["padding"])


def test_fake_implementation_matches_real_metadata():
    from torch._subclasses.fake_tensor import FakeTensorMode

    x = torch.randn(2, 6, 5, 9, 8)
    w = torch.randn(6, 1, 3, 3, 3)
    real = depthwise_conv3d(x, w, None, [1, 2, 2], [1, 1, 1])
    with FakeTensorMode() as mode:
        fake = depthwise_conv3d(mode.from_tensor(x), mode.from_tensor(w), None, [1, 2, 2], [1, 1, 1])
    assert fake.shape == real.shape and fake.stride() == real.stride() and fake.dtype == real.dtype


def test_works_under_torch_compile_and_export():
    w = torch.randn(12, 1, 3, 3, 3)
    b = torch.randn(12)

    class Block(torch.nn.Module):
        def forward(self, x):
            return torch.relu(depthwise_conv3d(x, w, b, [1, 1, 1], [1, 1, 1])) + 1

    x = torch.randn(1, 12, 4, 10, 10)
    expected = torch.relu(F.conv3d(x, w, b, 1, 1, 1, 12)) + 1
    compiled = torch.compile(Block(), fullgraph=True)
    torch.testing.assert_close(compiled(x), expected, rtol=1e-4, atol=1e-4)
    exported = torch.export.export(Block(), (x,))
    assert any("pyvideo.depthwise_conv3d" in str(node.target) for node in exported.graph.nodes)
    torch.testing.assert_close(exported.module()(x), expected, rtol=1e-4, atol=1e-4)
