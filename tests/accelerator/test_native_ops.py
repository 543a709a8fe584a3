"""The fused native conv ops against torch.nn.functional.conv3d + bias + residual + activation, at every ISA level."""
import pytest
import torch
import torch.nn.functional as F

from pyvideo._native import native, using_isa
from pyvideo.ops.conv3d import (
    fused_conv3d,
    fused_depthwise_conv3d,
    pack_conv3d_weight,
    pack_depthwise_weight,
    activation_code,
)

LEVELS = native().supported_isas()
ACTIVATIONS = {
    "identity": lambda x: x,
    "relu": F.relu,
    "swish": lambda x: x * torch.sigmoid(x),
    "hswish": F.hardswish,
    "sigmoid": torch.sigmoid,
}

# (C_in, C_out, T, H, W, kernel, stride, padding): X3D's layer kinds at small odd sizes
DENSE_CASES = [
    (24, 54, 3, 7, 9, (1, 1, 1), (1, 1, 1), (0, 0, 0)),   # pointwise expansion
    (54, 24, 2, 5, 5, (1, 1, 1), (1, 1, 1), (0, 0, 0)),   # pointwise projection
    (3, 24, 4, 11, 9, (1, 3, 3), (1, 2, 2), (0, 1, 1)),   # stem spatial
    (24, 24, 5, 4, 6, (5, 1, 1), (1, 1, 1), (2, 0, 0)),   # stem temporal
    (12, 20, 3, 6, 7, (1, 1, 1), (1, 2, 2), (0, 0, 0)),   # strided shortcut projection
    (6, 10, 3, 5, 7, (3, 3, 3), (2, 1, 2), (1, 1, 1)),    # full 3x3x3
]
DW_CASES = [
    (54, 4, 9, 11, (3, 3, 3), (1, 2, 2), (1, 1, 1)),
    (17, 3, 6, 5, (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    (24, 5, 4, 4, (5, 1, 1), (1, 1, 1), (2, 0, 0)),
]


def reference(x, weight, bias, residual, stride, padding, groups, activation):
    y = F.conv3d(x, weight, bias, stride, padding, 1, groups)
    if residual is not None:
        y = y + residual
    return ACTIVATIONS[activation](y)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", DENSE_CASES, ids=lambda c: "Ci{}_Co{}_T{}_H{}_W{}_k{}_s{}_p{}".format(*c))
def test_fused_conv3d_matches_torch(level, case):
    ci, co, t, h, w, k, s, p = case
    g = torch.Generator().manual_seed(sum(case[:5]))
    x = torch.randn(2, ci, t, h, w, generator=g)
    weight = torch.randn(co, ci, *k, generator=g) / (ci * k[0] * k[1] * k[2]) ** 0.5
    bias = torch.randn(co, generator=g)
    expected_plain = F.conv3d(x, weight, bias, s, p)
    residual = torch.randn(expected_plain.shape, generator=g)
    packed = pack_conv3d_weight(weight)
    for activation, with_residual in (("identity", False), ("relu", True), ("swish", False), ("hswish", True),
                                      ("sigmoid", False)):
        res = residual if with_residual else None
        with using_isa(level):
            got = fused_conv3d(x, packed, bias, res, list(s), list(p), activation_code(activation))
        assert got.is_contiguous(memory_format=torch.channels_last_3d)
        torch.testing.assert_close(got, reference(x, weight, bias, res, s, p, 1, activation), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: "C{}_T{}_H{}_W{}_k{}_s{}_p{}".format(*c))
def test_fused_depthwise_matches_torch(level, case):
    c, t, h, w, k, s, p = case
    g = torch.Generator().manual_seed(sum(case[:4]))
    x = torch.randn(1, c, t, h, w, generator=g).contiguous(memory_format=torch.channels_last_3d)
    weight = torch.randn(c, 1, *k, generator=g)
    bias = torch.randn(c, generator=g)
    residual = torch.randn(F.conv3d(x, weight, None, s, p, 1, c).shape, generator=g)
    for activation, res in (("swish", None), ("relu", residual), ("hswish", None), ("identity", residual)):
        with using_isa(level):
            got = fused_depthwise_conv3d(x, pack_depthwise_weight(weight), bias, res, list(s), list(p),
                                         activation_code(activation))
        torch.testing.assert_close(got, reference(x, weight, bias, res, s, p, c, activation), rtol=1e-4, atol=1e-4)


def test_chained_layers_stay_channels_last_without_copies():
    x = torch.randn(1, 8, 2, 5, 5).contiguous(memory_format=torch.channels_last_3d)
    w1 = pack_conv3d_weight(torch.randn(16, 8, 1, 1, 1))
    y = fused_conv3d(x, w1, None, None, [1, 1, 1], [0, 0, 0], 0)
    # the next layer's native view of y is the very storage the first layer wrote
    assert y.permute(0, 2, 3, 4, 1).is_contiguous()
    z = fused_depthwise_conv3d(y, pack_depthwise_weight(torch.randn(16, 1, 3, 3, 3)), None, None, [1, 1, 1],
                               [1, 1, 1], 1)
    assert z.is_contiguous(memory_format=torch.channels_last_3d)


def test_fake_implementations_trace_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(2, 3, 4, 9, 9)
        out = fused_conv3d(x, torch.empty(1, 3, 3, 3, 24), None, None, [1, 2, 2], [0, 1, 1], 2)
        assert tuple(out.shape) == (2, 24, 4, 5, 5)
        out = fused_depthwise_conv3d(x, torch.empty(3, 3, 3, 3), None, None, [1, 1, 1], [1, 1, 1], 0)
        assert tuple(out.shape) == (2, 3, 4, 9, 9)


# torch's CPU conv3d (2.13, oneDNN) computes wrong values for a one-channel input with channels-last strides
# (stride(1) == 1) when the output is one column wide and the W stride is above 1; it did on both of these.
ONE_CHANNEL_TORCH_CASES = [  # (input shape, weight shape, stride, padding) of the torch conv
    ((3, 1, 1, 7, 3), (2, 1, 3, 2, 4), (2, 1, 3), (1, 0, 1)),
    ((2, 1, 4, 6, 5), (4, 1, 1, 3, 3), (1, 1, 3), (0, 1, 0)),
]


@pytest.mark.parametrize("case", ONE_CHANNEL_TORCH_CASES)
def test_one_channel_outputs_have_standard_strides_that_torch_convs_read_right(case):
    shape, weight_shape, stride, padding = case
    n, _, t, h, w = shape
    torch.manual_seed(0)
    x = torch.randn(n, 5, t, h, w)
    outputs = [
        fused_conv3d(x, pack_conv3d_weight(torch.randn(1, 5, 1, 1, 1)), None, None, [1, 1, 1], [0, 0, 0], 0),
        fused_depthwise_conv3d(x[:, :1], pack_depthwise_weight(torch.randn(1, 1, 1, 3, 3)), None, None,
                               [1, 1, 1], [0, 1, 1], 0),
    ]
    weight = torch.randn(weight_shape)
    for y in outputs:
        assert y.shape == shape and y.stride() == torch.empty(shape).stride()  # not stride(1) == 1
        expected = F.conv3d(y.double().contiguous(), weight.double(), None, stride, padding)
        got = F.conv3d(y, weight, None, stride, padding)
        assert float((got.double() - expected).abs().max() / expected.abs().max()) < 1e-5


@pytest.mark.parametrize("channels", [1, 3])
def test_fake_implementations_give_the_real_strides(channels):
    from torch._subclasses.fake_tensor import FakeTensorMode

    x = torch.randn(2, channels, 3, 5, 7)
    dense = pack_conv3d_weight(torch.randn(channels, channels, 1, 3, 3))
    depthwise = pack_depthwise_weight(torch.randn(channels, 1, 3, 3, 3))
    calls = [lambda x, w: fused_conv3d(x, w, None, None, [1, 2, 3], [0, 1, 1], 0),
             lambda x, w: fused_depthwise_conv3d(x, w, None, None, [1, 1, 2], [1, 1, 1], 0)]
    for call, weight in zip(calls, (dense, depthwise)):
        real = call(x, weight)
        with FakeTensorMode() as mode:
            fake = call(mode.from_tensor(x), mode.from_tensor(weight))
        assert fake.shape == real.shape and fake.stride() == real.stride()


def test_bad_arguments_raise_clear_errors():
    x = torch.randn(1, 4, 2, 3, 3)
    with pytest.raises(ValueError, match="C_in=4"):
        fused_conv3d(x, torch.randn(1, 1, 1, 5, 8), None, None, [1, 1, 1], [0, 0, 0], 0)
    with pytest.raises(TypeError, match="float32"):
        fused_conv3d(x.double(), torch.randn(1, 1, 1, 4, 8), None, None, [1, 1, 1], [0, 0, 0], 0)
    with pytest.raises(ValueError, match="residual"):
        fused_conv3d(x, torch.randn(1, 1, 1, 4, 8), None, torch.randn(1, 8, 2, 3, 4), [1, 1, 1], [0, 0, 0], 0)
    with pytest.raises(ValueError, match="larger than padded input"):
        fused_depthwise_conv3d(x, torch.randn(5, 5, 5, 4), None, None, [1, 1, 1], [0, 0, 0], 0)
    with pytest.raises(ValueError, match="unknown activation"):
        activation_code("gelu")
    with pytest.raises(ValueError, match="activation code"):
        fused_conv3d(x, torch.randn(1, 1, 1, 4, 8), None, None, [1, 1, 1], [0, 0, 0], 9)


def test_threads_do_not_change_results():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 24, 3, 9, 9, generator=g)
    packed = pack_conv3d_weight(torch.randn(40, 24, 1, 3, 3, generator=g))
    dw = pack_depthwise_weight(torch.randn(24, 1, 3, 3, 3, generator=g))
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append((fused_conv3d(x, packed, None, None, [1, 2, 2], [0, 1, 1], 2),
                            fused_depthwise_conv3d(x, dw, None, None, [1, 1, 1], [1, 1, 1], 1)))
    finally:
        torch.set_num_threads(previous)
    for one, two in zip(*results):
        assert torch.equal(one, two)


def _same_bits_on_threads_and_torchs_result(shape, out_channels, seed):
    """A pointwise conv (bias, residual, ReLU) of a random [N, C, T, H, W] input on 1, 2 and 3 threads: every thread
    count gives the same bits, and torch's result."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    weight = torch.randn(out_channels, shape[1], 1, 1, 1, generator=g)
    bias = torch.randn(out_channels, generator=g)
    residual = torch.randn(shape[0], out_channels, *shape[2:], generator=g)
    packed = pack_conv3d_weight(weight)
    want = F.relu(F.conv3d(x.double(), weight.double(), bias.double()) + residual.double()).float()
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(fused_conv3d(x, packed, bias, residual, [1, 1, 1], [0, 0, 0], 1))
    finally:
        torch.set_num_threads(previous)
    for got in results:
        assert torch.equal(got, results[0])
    torch.testing.assert_close(results[0], want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 192, 4, 5, 5), (3, 24, 5, 7, 3), (2, 16, 1, 3, 41)])
def test_pointwise_split_in_equal_items_across_threads(shape):
    # A pointwise conv runs as one row of N*T*H*W columns, which the threads split in items of equal width
    # (csrc/core/ops.cpp): X3D-XS's 5x5 stage (100 columns: 50 / 50 on two threads), 315 and 246 columns.
    _same_bits_on_threads_and_torchs_result(shape, 40, seed=7)


@pytest.mark.parametrize("batch", [1, 2])
def test_gemv_split_by_channels_across_threads(batch):
    # One column per sample (a classifier head on a pooled vector): too few columns for the threads, so the op splits
    # the output channels between them (csrc/core/ops.cpp).
    _same_bits_on_threads_and_torchs_result((batch, 300, 1, 1, 1), 100, seed=6)
