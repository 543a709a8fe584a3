"""The one-call native squeeze-excitation ops (fp32 and int8) against the torch modules they replace, and the cached
int8 Linear of lower_quantized_to_native."""
import pytest
import torch
import torch.nn as nn

from pyvideo._native import using_isa, native
from pyvideo.accelerator.deployable import FusedSqueezeExcitation
from pyvideo.accelerator.native import NativeSqueezeExcitation
from pyvideo.accelerator.native.quantized import CachedQuantizedLinear
from pyvideo.accelerator.quantization.int8_modules import QuantizedLinear, QuantizedSqueezeExcitation
from pyvideo.accelerator.quantization.qparams import QParams
from pyvideo.ops.conv3d import activation_code
from pyvideo.ops.squeeze_excitation import quantized_squeeze_excitation, squeeze_excitation


def make_se(channels, hidden, hidden_activation="relu", activation="identity", bias=True, seed=0):
    torch.manual_seed(seed)
    return FusedSqueezeExcitation(nn.Linear(channels, hidden, bias=bias), nn.Linear(hidden, channels, bias=bias),
                                  hidden_activation, activation).eval()


@pytest.mark.parametrize("level", native().supported_isas())
@pytest.mark.parametrize("activation", ["identity", "relu", "swish", "hswish", "sigmoid"])
def test_fp32_matches_the_deploy_module(level, activation):
    se = make_se(54, 8, "relu", activation)
    x = torch.randn(2, 54, 3, 7, 9) * 3
    with torch.no_grad(), using_isa(level):
        expected, got = se(x), NativeSqueezeExcitation(se)(x)
    assert got.shape == expected.shape and got.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 17, 1, 1, 1), (3, 5, 2, 3, 4), (1, 432, 4, 5, 5), (2, 24, 1, 131, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_fp32_shapes_hidden_activation_and_bias(shape, bias):
    se = make_se(shape[1], 3, "swish", "swish", bias=bias, seed=shape[1])
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        torch.testing.assert_close(NativeSqueezeExcitation(se)(x), se(x), rtol=1e-5, atol=1e-5)


def test_each_sample_gets_its_own_gate_and_the_threads_do_not_matter():
    se = make_se(20, 4, "relu", "swish")
    x = torch.randn(3, 20, 2, 40, 40)
    x[1] *= 10  # a very different mean for sample 1: a shared gate would be visibly wrong
    previous = torch.get_num_threads()
    outputs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                outputs.append(NativeSqueezeExcitation(se)(x))
    finally:
        torch.set_num_threads(previous)
    with torch.no_grad():
        torch.testing.assert_close(outputs[0], se(x), rtol=1e-5, atol=1e-5)
    assert torch.equal(outputs[0], outputs[1])


# (2, 54, 4, 20, 20): 1600 positions per sample, where swish and sigmoid go by lookup table (below AVX-512)
@pytest.mark.parametrize("level", native().supported_isas())
@pytest.mark.parametrize("activation", ["identity", "swish", "hswish", "sigmoid"])
@pytest.mark.parametrize("shape", [(2, 20, 3, 7, 9), (1, 54, 4, 10, 10), (1, 7, 1, 1, 1), (2, 54, 4, 20, 20)])
def test_int8_matches_the_reference_module_within_one_lsb(level, activation, shape):
    se = make_se(shape[1], 5, "relu", activation, seed=7)
    reference = QuantizedSqueezeExcitation(se, QParams(0.05, -7), QParams(0.04, 3))
    g = torch.Generator().manual_seed(1)
    q = torch.randint(-128, 128, shape, dtype=torch.int8, generator=g)
    with using_isa(level):
        got = quantized_squeeze_excitation(q, se.fc0.weight, se.fc0.bias, se.fc1.weight, se.fc1.bias,
                                           activation_code("relu"), activation_code(activation), 0.05, -7, 0.04, 3)
    expected = reference(q)
    diff = (got.int() - expected.int()).abs()
    assert got.dtype == torch.int8 and got.shape == expected.shape
    assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01


def test_bad_inputs_raise_clear_errors():
    se = make_se(8, 2)
    w0, b0, w1, b1 = se.fc0.weight, se.fc0.bias, se.fc1.weight, se.fc1.bias
    x = torch.randn(1, 8, 2, 3, 3)
    with pytest.raises(ValueError, match="5-D"):
        squeeze_excitation(x[0], w0, b0, w1, b1, 1, 0)
    with pytest.raises(TypeError, match="float32"):
        squeeze_excitation(x.double(), w0, b0, w1, b1, 1, 0)
    with pytest.raises(ValueError, match="fc0 weight must be"):
        squeeze_excitation(torch.randn(1, 9, 2, 3, 3), w0, b0, w1, b1, 1, 0)
    with pytest.raises(ValueError, match="bias"):
        squeeze_excitation(x, w0, torch.zeros(5), w1, b1, 1, 0)
    with pytest.raises(ValueError, match="activation"):
        squeeze_excitation(x, w0, b0, w1, b1, 9, 0)
    with pytest.raises(TypeError, match="int8"):
        quantized_squeeze_excitation(x, w0, b0, w1, b1, 1, 0, 0.1, 0, 0.1, 0)
    for scale in (0.0, float("inf"), float("nan")):  # the input's, then the output's
        with pytest.raises(ValueError, match="input quantization needs a positive finite scale"):
            quantized_squeeze_excitation(x.to(torch.int8), w0, b0, w1, b1, 1, 0, scale, 0, 0.1, 0)
        with pytest.raises(ValueError, match="output quantization needs a positive finite scale"):
            quantized_squeeze_excitation(x.to(torch.int8), w0, b0, w1, b1, 1, 0, 0.1, 0, scale, 0)
    # An empty batch computes nothing and checks no qparams (like the other int8 ops' empty batches).
    empty = torch.zeros(0, 8, 2, 3, 3, dtype=torch.int8)
    assert quantized_squeeze_excitation(empty, w0, b0, w1, b1, 1, 0, 0.1, 0, 0.0, 0).shape == empty.shape


def test_fake_implementations_give_the_output_metadata():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(2, 8, 3, 5, 5)
        w0, w1 = torch.empty(2, 8), torch.empty(8, 2)
        out = squeeze_excitation(x, w0, None, w1, None, 1, 2)
        assert tuple(out.shape) == (2, 8, 3, 5, 5) and out.is_contiguous(memory_format=torch.channels_last_3d)
        q = quantized_squeeze_excitation(x.to(torch.int8), w0, None, w1, None, 1, 2, 0.1, 0, 0.1, 0)
        assert q.dtype == torch.int8


def test_cached_quantized_linear_is_exactly_the_reference():
    torch.manual_seed(0)
    for in_features in (16, 2048):  # float32 and float64 exact accumulation
        reference = QuantizedLinear(nn.Linear(in_features, 40), QParams(0.03, 5), None)
        q = torch.randint(-128, 128, (3, in_features), dtype=torch.int8)
        assert torch.equal(CachedQuantizedLinear(reference)(q), reference(q))


def test_cached_quantized_conv3d_is_exactly_the_reference():
    from pyvideo.accelerator.deployable import FusedConv3d
    from pyvideo.accelerator.native.quantized import CachedQuantizedConv3d
    from pyvideo.accelerator.quantization.int8_modules import QuantizedConv3d

    torch.manual_seed(1)
    for ci, kernel, groups in ((600, (1, 1, 1), 1), (192, (1, 1, 1), 1), (8, (3, 3, 3), 2)):  # exact slices, conv path
        conv = FusedConv3d(torch.randn(16, ci // groups, *kernel) * 0.05, torch.randn(16), padding=kernel[0] // 2,
                           groups=groups, activation="relu")
        reference = QuantizedConv3d(conv, QParams(0.02, 3), None)  # float output: not a native-kernel layer
        q = torch.randint(-128, 128, (2, ci, 3, 4, 5), dtype=torch.int8)
        assert torch.equal(CachedQuantizedConv3d(reference)(q), reference(q))


def make_per_channel_reference(se, input_qparams, shape, seed=2):
    """A QuantizedSqueezeExcitation whose output is quantized per channel, with each channel's qparams from the range of
    its float output on a random int8 input (``channel_activation_qparams``), and that input."""
    from pyvideo.accelerator.quantization.qparams import channel_activation_qparams, dequantize

    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-128, 128, shape, dtype=torch.int8, generator=g)
    with torch.no_grad():
        y = se(dequantize(q, input_qparams))
    dims = (0, 2, 3, 4)
    return QuantizedSqueezeExcitation(se, input_qparams, channel_activation_qparams(y.amin(dims), y.amax(dims))), q


@pytest.mark.parametrize("level", native().supported_isas())
@pytest.mark.parametrize("activation,shape", [("swish", (2, 19, 3, 7, 9)), ("identity", (1, 54, 4, 10, 10)),
                                              ("hswish", (2, 7, 1, 1, 1)), ("relu", (1, 33, 2, 5, 13))])
def test_int8_per_channel_output_matches_the_reference_within_one_lsb(level, activation, shape):
    from pyvideo.accelerator.native.quantized import NativeQuantizedSqueezeExcitation

    se = make_se(shape[1], 5, "relu", activation, seed=shape[1])
    reference, q = make_per_channel_reference(se, QParams(0.05, -7), shape)
    scales = reference.output_scale
    assert scales.shape == (shape[1],) and float(scales.max() / scales.min()) > 1.5  # really different per channel
    native_se = NativeQuantizedSqueezeExcitation(reference)
    assert isinstance(native_se.output_scale, torch.Tensor) and "output_scale" in dict(native_se.named_buffers())
    with torch.no_grad(), using_isa(level):
        got, expected = native_se(q), reference(q)
    diff = (got.int() - expected.int()).abs()
    assert got.dtype == torch.int8 and got.shape == expected.shape
    assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01
    # The per-tensor path with the widest channel's qparams gives something else: the channels' own are used.
    wide = int(scales.argmax())
    per_tensor = quantized_squeeze_excitation(q, se.fc0.weight, se.fc0.bias, se.fc1.weight, se.fc1.bias,
                                              activation_code("relu"), activation_code(activation), 0.05, -7,
                                              float(scales[wide]), int(reference.output_zero_point[wide]))
    assert not torch.equal(per_tensor, got)


def test_int8_per_channel_scalar_and_tensor_arguments_mix():
    se = make_se(9, 3, "relu", "swish")
    reference, q = make_per_channel_reference(se, QParams(0.05, 4), (1, 9, 2, 3, 5))
    args = (q, se.fc0.weight, se.fc0.bias, se.fc1.weight, se.fc1.bias, activation_code("relu"),
            activation_code("swish"), 0.05, 4)
    zero_points = torch.full((9,), -3, dtype=torch.int32)
    # one scale for all channels with per-channel zero points, and the reverse: as the fully per-channel call
    expected = quantized_squeeze_excitation(*args, torch.full((9,), 0.02), zero_points)
    assert torch.equal(quantized_squeeze_excitation(*args, 0.02, zero_points), expected)
    assert torch.equal(quantized_squeeze_excitation(*args, torch.full((9,), 0.02), -3), expected)


def test_int8_per_channel_bad_qparams_raise_clear_errors():
    se = make_se(8, 2, "relu", "swish")
    q = torch.zeros(1, 8, 2, 3, 3, dtype=torch.int8)
    args = (q, se.fc0.weight, se.fc0.bias, se.fc1.weight, se.fc1.bias, 1, 2, 0.1, 0)
    scales, zero_points = torch.full((8,), 0.1), torch.zeros(8, dtype=torch.int32)
    with pytest.raises(ValueError, match=r"one entry per channel \(8\), got shape \(7,\)"):
        quantized_squeeze_excitation(*args, scales[:7], zero_points)
    with pytest.raises(ValueError, match="zero points must be 1-D"):
        quantized_squeeze_excitation(*args, scales, zero_points.reshape(2, 4))
    with pytest.raises(TypeError, match="scales must be float32"):
        quantized_squeeze_excitation(*args, scales.double(), zero_points)
    with pytest.raises(TypeError, match="zero points must be int32"):
        quantized_squeeze_excitation(*args, scales, zero_points.long())
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        broken = scales.clone()
        broken[5] = bad
        with pytest.raises(ValueError, match="channel 5 output quantization needs a positive finite scale"):
            quantized_squeeze_excitation(*args, broken, zero_points)
    for bad in (128, -129):
        broken = zero_points.clone()
        broken[2] = bad
        message = r"channel 2 output quantization .*\[-128, 127\] \(got scale .*, zero point -?12[89]\)"
        with pytest.raises(ValueError, match=message):
            quantized_squeeze_excitation(*args, scales, broken)
    with pytest.raises(ValueError, match=r"output quantization .*\[-128, 127\] \(got scale .*, zero point 200\)"):
        quantized_squeeze_excitation(*args, 0.1, 200)


def test_int8_per_channel_fake_implementation():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q = torch.empty(2, 8, 3, 5, 5, dtype=torch.int8)
        w0, w1 = torch.empty(2, 8), torch.empty(8, 2)
        scales, zero_points = torch.empty(8), torch.empty(8, dtype=torch.int32)
        out = quantized_squeeze_excitation(q, w0, None, w1, None, 1, 2, 0.1, 0, scales, zero_points)
        assert out.dtype == torch.int8 and tuple(out.shape) == (2, 8, 3, 5, 5)
        assert out.is_contiguous(memory_format=torch.channels_last_3d)
        with pytest.raises(ValueError, match="one entry per channel"):
            quantized_squeeze_excitation(q, w0, None, w1, None, 1, 2, 0.1, 0, scales[:3], zero_points)


def test_lowering_keeps_per_channel_se_outputs():
    from pyvideo.accelerator.deployable import FusedConv3d
    from pyvideo.accelerator.native import lower_quantized_to_native
    from pyvideo.accelerator.native.quantized import NativeQuantizedSqueezeExcitation
    from pyvideo.accelerator.quantization.int8_modules import QuantizedConv3d

    se = make_se(11, 3, "relu", "swish")
    reference, q = make_per_channel_reference(se, QParams(0.03, 2), (2, 11, 2, 4, 6))
    conv = QuantizedConv3d(FusedConv3d(torch.randn(11, 1, 3, 3, 3), torch.randn(11), padding=1, groups=11),
                           QParams(0.05, 0), QParams(0.03, 2))
    lowered = lower_quantized_to_native(nn.Sequential(conv, reference).eval())
    native_se = lowered[1]
    assert isinstance(native_se, NativeQuantizedSqueezeExcitation)
    assert torch.equal(native_se.output_scale, reference.output_scale)
    assert torch.equal(native_se.output_zero_point, reference.output_zero_point)
    with torch.no_grad():
        diff = (native_se(q).int() - reference(q).int()).abs()
    assert int(diff.max()) <= 1
