"""The native Program's dynamic (per-sample) int8 ranges through the bindings: a dynamic_quantize step and an int8 conv
reading it, against torch computing the documented arithmetic (per-sample qparams, per-sample int32 bias from the
real-valued bias, F.conv3d in float64 of q - zp) -- equal int8 outputs."""
import pytest
import torch
import torch.nn.functional as F

from pyvideo._native import from_dlpack, native
from pyvideo.ops.quantized_conv3d import pack_quantized_weight

OUTPUT_SCALE, OUTPUT_ZERO_POINT = 0.0625, -5  # a power of two: the kernels' multiply by 1/scale is then exact
RELU = 1


def _sample_qparams(x: torch.Tensor):
    """Each sample's (scale float32 [N], zero point float64 [N]) by the documented formula."""
    flat = x.reshape(x.shape[0], -1)
    low = flat.amin(dim=1).double().clamp(max=0.0)
    high = flat.amax(dim=1).double().clamp(min=0.0)
    scale = ((high - low) / 255.0).clamp(min=1e-8).float()
    zero_point = torch.round(-128.0 - low / scale.double()).clamp(-128, 127)
    return scale, zero_point


def _reference(x, weight_int8, weight_scale, float_bias, padding):
    """int8 [N, Co, T, H, W] output of dynamic quantize -> int8 conv (relu, static output qparams)."""
    n = x.shape[0]
    scale, zero_point = _sample_qparams(x)
    per_sample = (-1, 1, 1, 1, 1)
    q = (torch.round(x / scale.view(per_sample)) + zero_point.float().view(per_sample)).clamp(-128, 127)
    accumulator = F.conv3d(q.double() - zero_point.view(per_sample), weight_int8.double(), padding=padding)
    dequant = scale.view(n, 1) * weight_scale.view(1, -1)  # float32 [N, Co]
    # the documented bound: the largest bias the kernels' int32 sums cannot overflow with
    bound = (2.0**31 - 1 - 512 * weight_int8.double().abs().sum(dim=(1, 2, 3, 4))).view(1, -1)
    bias = torch.maximum(torch.minimum(torch.round(float_bias.double().view(1, -1) / dequant.double()), bound), -bound)
    value = (accumulator + bias.view(n, -1, 1, 1, 1)).float() * dequant.view(n, -1, 1, 1, 1)
    value = torch.relu(value)
    return (torch.round(value / OUTPUT_SCALE) + OUTPUT_ZERO_POINT).clamp(-128, 127).to(torch.int8)


def _batch(channels, t, h, w):
    torch.manual_seed(0)
    x = torch.rand(5, channels, t, h, w) * 2 - 1
    x[1] = x[1] * 30 + 10  # a wide range
    x[2] *= 0.01  # a narrow one
    x[3] = -x[3].abs() - 0.1  # all negative
    x[4] = 0.0  # all zero: scale 1e-8, the bias far beyond int32 (clamped to the bound)
    return x


def _program(weight_int8, weight_scale, float_bias, padding, **overrides):
    co, ci, k = weight_int8.shape[0], weight_int8.shape[1], weight_int8.shape[2]
    packed, sums = pack_quantized_weight(weight_int8)
    program = native().Program()
    x = program.set_input(ci)
    a = program.dynamic_quantize(x)
    kwargs = dict(
        kernel=[k] * 3, stride=[1, 1, 1], padding=[padding] * 3, out_channels=co, weight=packed, weight_sum=sums,
        bias=torch.empty(0, dtype=torch.int32), dequant_scale=torch.empty(0, dtype=torch.float32), input_scale=1.0,
        input_zero_point=0, residual=-1, residual_scale=1.0, residual_zero_point=0, activation=RELU,
        output_scale=OUTPUT_SCALE, output_zero_point=OUTPUT_ZERO_POINT, weight_scale=weight_scale,
        float_bias=float_bias)
    kwargs.update(overrides)
    y = program.quantized_conv(a, False, **kwargs)
    program.set_outputs([y], ["nthwc"])
    return program, a


@pytest.mark.parametrize("kernel,padding", [(1, 0), (3, 1)])
@pytest.mark.parametrize("threads", [1, 2])
def test_dynamic_quantize_and_conv_equal_torch(kernel, padding, threads):
    ci, co = 5, 6
    x = _batch(ci, 3, 6, 7)
    weight_int8 = torch.randint(-127, 128, (co, ci, kernel, kernel, kernel), dtype=torch.int8)
    weight_scale = torch.rand(co) * 0.02 + 0.002
    float_bias = torch.rand(co) - 0.5
    program, _ = _program(weight_int8, weight_scale, float_bias, padding)
    program.set_profiling(True)
    out = from_dlpack(program.run(x.permute(0, 2, 3, 4, 1).contiguous(), threads)[0])
    want = _reference(x, weight_int8, weight_scale, float_bias, padding)
    assert out.dtype == torch.int8
    assert torch.equal(out.permute(0, 4, 1, 2, 3), want)
    # The samples' ranges differ, so one batch-wide range would have given other values.
    scale, _ = _sample_qparams(x)
    assert len(set(scale.tolist())) == 5
    kinds = [step["kind"] for step in program.last_profile()]
    assert kinds == ["dynamic_quantize", "quantized_conv/" + ("pointwise" if kernel == 1 else "dense") + "+dyn"]
    assert "dynamic" in program.describe()


def test_dynamic_errors():
    weight_int8 = torch.randint(-127, 128, (4, 3, 1, 1, 1), dtype=torch.int8)
    weight_scale, float_bias = torch.full((4,), 0.01), torch.zeros(4)
    program, a = _program(weight_int8, weight_scale, float_bias, 0)
    with pytest.raises(ValueError, match="dynamically quantized"):
        program.set_outputs([a], ["nthwc"])
    x = torch.rand(3, 1, 2, 2, 3)
    x[1, 0, 1, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="sample 1 holds non-finite values"):
        program.run(x, 1)
    with pytest.raises(ValueError, match="needs weight_scale and float_bias"):
        _program(weight_int8, None, None, 0)
    with pytest.raises(ValueError, match="weight scale has 3 values, expected 4"):
        _program(weight_int8, weight_scale[:3], float_bias, 0)
    with pytest.raises(ValueError, match="float32"):
        _program(weight_int8, weight_scale.double(), float_bias, 0)
    with pytest.raises(ValueError, match="dimensions"):
        _program(weight_int8, weight_scale.view(2, 2), float_bias, 0)
    with pytest.raises(ValueError, match="at least"):
        _program(weight_int8, torch.zeros(4), float_bias, 0)
