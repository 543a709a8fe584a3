"""The native int8 ops and lower_quantized_to_native against the pure-torch int8 reference modules (within 1 LSB),
and int8 EfficientX3d logits against fp32 (relative error and top-1 agreement reported)."""
import pytest
import torch
import torch.nn as nn

from pyvideo.accelerator.deployable import FusedConv3d
from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.accelerator.native import (NativeQuantizedConv3d, compile_native, lower_quantized_to_native,
                                        lower_to_native)
from pyvideo.accelerator.quantization import quantize_model
from pyvideo.accelerator.quantization.int8_modules import QuantizedConv3d
from pyvideo.accelerator.quantization.qparams import QParams, quantize
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

from ._util import int8_levels, using_level

# every ISA level, and each also without its byte dot product where the CPU has one (the kernels of CPUs without)
LEVELS = int8_levels()

# (C_in, C_out, groups, kernel, stride, padding, activation, residual)
CONVS = [
    (24, 54, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0), "relu", False),
    (54, 24, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0), "identity", True),
    (3, 24, 1, (1, 3, 3), (1, 2, 2), (0, 1, 1), "identity", False),
    (17, 9, 1, (3, 1, 1), (1, 1, 1), (1, 0, 0), "hswish", False),
    (54, 54, 54, (3, 3, 3), (1, 2, 2), (1, 1, 1), "swish", False),
    (24, 24, 24, (5, 1, 1), (1, 1, 1), (2, 0, 0), "identity", True),
]


def make_quantized_conv(case, seed):
    ci, co, groups, k, s, p, act, residual = case
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(co, ci // groups, *k, generator=g) / (ci // groups * k[0] * k[1] * k[2]) ** 0.5
    conv = FusedConv3d(weight, torch.randn(co, generator=g) * 0.1, s, p, groups=groups, activation=act,
                       adds_residual=residual)
    return QuantizedConv3d(conv, QParams(0.02, 3), QParams(0.03, -5), QParams(0.025, 7) if residual else None)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("index", range(len(CONVS)))
def test_native_int8_conv_matches_reference_module(level, index):
    case = CONVS[index]
    reference = make_quantized_conv(case, seed=index)
    fast = NativeQuantizedConv3d(reference)
    g = torch.Generator().manual_seed(100 + index)
    x = torch.randint(-128, 128, (2, case[0], 3, 9, 11), generator=g, dtype=torch.int8)
    residual = None
    if case[7]:
        plain_shape = nn.functional.conv3d(x.float(), reference.weight_int8.float(), None, reference.stride,
                                           reference.padding, 1, reference.groups).shape
        residual = torch.randint(-128, 128, plain_shape, generator=g, dtype=torch.int8)
    with using_level(level):
        got = fast(x, residual)
    expected = reference(x, residual)
    assert got.dtype == torch.int8 and got.shape == expected.shape
    assert got.is_contiguous(memory_format=torch.channels_last_3d)
    diff = (got.int() - expected.int()).abs()
    assert int(diff.max()) <= 1
    assert float((diff > 0).float().mean()) < 0.01


def assert_same_codes_on_every_thread_count(fast, x, residual, expected, level):
    """fast(x, residual) at `level` on 1-4 threads: the same codes every time, within 1 LSB of `expected`."""
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3, 4):
            torch.set_num_threads(threads)
            with using_level(level):
                results.append(fast(x, residual))
    finally:
        torch.set_num_threads(previous)
    for got in results:
        assert torch.equal(got, results[0])
    assert int((results[0].int() - expected.int()).abs().max()) <= 1


@pytest.mark.parametrize("level", LEVELS)
def test_native_int8_pointwise_conv_is_the_same_on_every_thread_count(level):
    # A pointwise conv runs as one row of N*T*H*W columns, which the threads split in items of equal width
    # (csrc/core/ops.cpp): X3D-XS's 5x5 stage has 100 columns (50 / 50 on two threads, 25 each on four). Every thread
    # count gives the same codes, within 1 LSB of the reference module.
    reference = make_quantized_conv((192, 432, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0), "relu", False), seed=11)
    fast = NativeQuantizedConv3d(reference)
    x = torch.randint(-128, 128, (1, 192, 4, 5, 5), generator=torch.Generator().manual_seed(12), dtype=torch.int8)
    expected = reference(x, None)
    assert_same_codes_on_every_thread_count(fast, x, None, expected, level)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", [(432, 2048, 1, "relu", False), (300, 100, 2, "swish", True),
                                  (37, 50, 4, "identity", True)])
def test_native_int8_gemv_split_by_channels_is_the_same_on_every_thread_count(level, case):
    # At most 4 positions (a head on a pooled vector, one per clip) run as matrix-vector products, which the op splits
    # between threads by output channels (csrc/core/ops.cpp): every thread count gives the same codes (residual and
    # per-channel arrays read from each range's first channel), within 1 LSB of the reference module.
    ci, co, batch, activation, with_residual = case
    reference = make_quantized_conv((ci, co, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0), activation, with_residual), seed=13)
    fast = NativeQuantizedConv3d(reference)
    g = torch.Generator().manual_seed(14)
    x = torch.randint(-128, 128, (batch, ci, 1, 1, 1), generator=g, dtype=torch.int8)
    residual = torch.randint(-128, 128, (batch, co, 1, 1, 1), generator=g, dtype=torch.int8) if with_residual else None
    expected = reference(x, residual)
    assert_same_codes_on_every_thread_count(fast, x, residual, expected, level)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", [(216, (3, 3, 3), (1, 1, 1), (1, 216, 4, 10, 10), False),
                                  (54, (3, 3, 3), (1, 1, 1), (2, 54, 3, 9, 11), True),
                                  (24, (5, 1, 1), (2, 0, 0), (1, 24, 4, 6, 6), True),
                                  (48, (3, 3, 3), (1, 1, 1), (1, 48, 13, 5, 5), False)])
def test_native_int8_depthwise_is_the_same_on_every_thread_count(level, case):
    # Threads split a depthwise conv's output rows (csrc/core/ops.cpp), so their ranges start and end inside frames
    # and samples: every thread count gives the same codes, within 1 LSB of the reference module (the dot kernel's
    # quad rows for 3x3x3, its single-tap mode for 5x1x1, residuals, a batch of 2, 13 frames).
    channels, kernel, padding, shape, with_residual = case
    reference = make_quantized_conv((channels, channels, channels, kernel, (1, 1, 1), padding, "swish", with_residual),
                                    seed=15)
    fast = NativeQuantizedConv3d(reference)
    g = torch.Generator().manual_seed(16)
    x = torch.randint(-128, 128, shape, generator=g, dtype=torch.int8)
    residual = torch.randint(-128, 128, shape, generator=g, dtype=torch.int8) if with_residual else None
    expected = reference(x, residual)
    assert_same_codes_on_every_thread_count(fast, x, residual, expected, level)


def randomize_batchnorm(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    return model.eval()


def test_int8_efficient_x3d_on_native_kernels_tracks_reference_and_fp32():
    torch.manual_seed(0)
    model = randomize_batchnorm(create_x3d(expansion="XS", num_classes=10), seed=1)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 32, 32))
    g = torch.Generator().manual_seed(2)
    calibration = [torch.randn(2, 3, 4, 32, 32, generator=g) for _ in range(3)]
    int8_torch = quantize_model(deploy, calibration)
    int8_native = lower_quantized_to_native(int8_torch)
    assert sum(isinstance(m, NativeQuantizedConv3d) for m in int8_native.modules()) > 50
    fp32_native = lower_to_native(deploy)
    x = torch.randn(8, 3, 4, 32, 32, generator=g)
    with torch.no_grad():
        fp32, ref8, nat8, fp32_fast = deploy(x), int8_torch(x), int8_native(x), fp32_native(x)
    # native int8 == torch int8 reference up to 1-LSB requantization differences propagating through the net
    assert float((nat8 - ref8).abs().max() / ref8.abs().max()) < 0.05
    rel = float((nat8 - fp32).norm() / fp32.norm())
    agreement = float((nat8.argmax(1) == fp32.argmax(1)).float().mean())
    print(f"int8 native vs fp32: relative L2 error {rel:.4f}, top-1 agreement {agreement:.3f}")
    assert rel < 0.25
    assert float((fp32_fast - fp32).abs().max() / fp32.abs().max()) < 1e-4


@pytest.mark.parametrize("level", LEVELS)
def test_int8_x3d_program_tracks_the_reference_on_every_level(level):
    # The whole int8 program (compile_native: fused steps, int8 SE, the float head) on each level's kernels, also
    # without a byte dot product where the CPU has one (avx512-nodot: the int8 kernels of AVX-512 CPUs without VNNI):
    # within the torch int8 reference by the per-module bound above, the same top-1 on every clip.
    torch.manual_seed(0)
    model = randomize_batchnorm(create_x3d(expansion="XS", num_classes=10), seed=3)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 40, 40))
    g = torch.Generator().manual_seed(4)
    int8_torch = quantize_model(deploy, [torch.randn(2, 3, 4, 40, 40, generator=g) for _ in range(2)])
    x = torch.randn(6, 3, 4, 40, 40, generator=g)
    with torch.no_grad():
        expected = int8_torch(x)
        with using_level(level):
            program = compile_native(int8_torch)
            got = program(x)
    assert float((got - expected).abs().max() / expected.abs().max()) < 0.05
    assert torch.equal(got.argmax(1), expected.argmax(1))


def test_int8_ops_reject_float_input():
    conv = NativeQuantizedConv3d(make_quantized_conv(CONVS[0], seed=0))
    with pytest.raises(TypeError, match="int8"):
        conv(torch.randn(1, 24, 2, 3, 3))
    with pytest.raises(ValueError, match="QuantizedConv3d"):
        lower_quantized_to_native(nn.Sequential(nn.Conv3d(1, 1, 1)))


@pytest.mark.parametrize("activation", ["swish", "identity", "relu"])
def test_native_squeeze_excitation_matches_reference(activation):
    from pyvideo.accelerator.deployable import FusedSqueezeExcitation
    from pyvideo.accelerator.native import NativeQuantizedSqueezeExcitation
    from pyvideo.accelerator.quantization.int8_modules import QuantizedSqueezeExcitation

    torch.manual_seed(3)
    se = FusedSqueezeExcitation(nn.Linear(20, 8), nn.Linear(8, 20), "relu", activation)
    reference = QuantizedSqueezeExcitation(se, QParams(0.05, -7), QParams(0.04, 3))
    native_se = NativeQuantizedSqueezeExcitation(reference)
    x = torch.randint(-128, 128, (2, 20, 3, 7, 9), dtype=torch.int8).contiguous(memory_format=torch.channels_last_3d)
    got, expected = native_se(x), reference(x)
    diff = (got.int() - expected.int()).abs()
    assert got.shape == expected.shape and int(diff.max()) <= 1
    assert float((diff > 0).float().mean()) < 0.01


def test_int8_lowering_after_a_one_channel_conv_equals_the_reference():
    """A one-channel native int8 conv feeding a float-output conv that stays in torch (found by a random-model
    sweep): the native output reached torch's conv3d with channels-last strides, which gave wrong values at this
    geometry (one output column, W stride 3; see test_native_ops), so the lowering differed from the reference
    by up to 0.9 of the output's range, and by thread count."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(3, 1, 1), nn.BatchNorm3d(1), nn.ReLU(),
        nn.Conv3d(1, 2, (3, 2, 4), stride=(2, 1, 3), padding=(1, 0, 1)), nn.Hardswish(),
    ).eval()
    x = torch.randn(3, 3, 1, 7, 3)
    with torch.no_grad():
        deploy = convert_to_deployable_form(model, x)
        int8 = quantize_model(deploy, [torch.randn(3, 3, 1, 7, 3) for _ in range(2)])
        lowered = lower_quantized_to_native(int8)
        assert any(isinstance(m, NativeQuantizedConv3d) for m in lowered.modules())
        expected = int8(x)
        previous = torch.get_num_threads()
        try:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                assert torch.equal(lowered(x), expected)
        finally:
            torch.set_num_threads(previous)


def test_int8_fake_implementations_trace_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    from pyvideo.ops.quantized_conv3d import quantized_conv3d, quantized_depthwise_conv3d

    with FakeTensorMode():
        x = torch.empty(1, 8, 4, 9, 9, dtype=torch.int8)
        out = quantized_conv3d(x, torch.empty(1, 3, 3, 2, 16, 4, dtype=torch.int8), torch.empty(16, dtype=torch.int32),
                               torch.empty(16, dtype=torch.int32), torch.empty(16), None, [1, 2, 2], [0, 1, 1],
                               0, 1.0, 0, 0, 0.1, 0)
        assert tuple(out.shape) == (1, 16, 4, 5, 5) and out.dtype == torch.int8
        out = quantized_depthwise_conv3d(x, torch.empty(3, 3, 3, 8, dtype=torch.int8),
                                         torch.empty(8, dtype=torch.int32), torch.empty(8), None, [1, 1, 1],
                                         [1, 1, 1], 0, 1.0, 0, 2, 0.1, 0)
        assert tuple(out.shape) == (1, 8, 4, 9, 9)
