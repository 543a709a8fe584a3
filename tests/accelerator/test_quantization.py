"""int8 quantization: qparams and observers, exact int8 reference arithmetic, PTQ and QAT of whole models."""
import io

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.quantization import (
    DequantizeTensor,
    FakeQuantLinear,
    FloatLinear,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    PercentileObserver,
    QParams,
    QuantizedActivation,
    QuantizedAdd,
    QuantizedAvgPool3d,
    QuantizedConv3d,
    QuantizedGlobalAvgPool,
    QuantizedLinear,
    QuantizedMul,
    QuantizedSqueezeExcitation,
    QuantizeTensor,
    activation_qparams,
    calibrate,
    convert,
    convert_qat,
    dequantize,
    fake_quantize,
    freeze_observers,
    prepare,
    prepare_qat,
    quantize,
    quantize_model,
    weight_scales,
)
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

from ._util import assert_matches_fake_quant_layer_by_layer, make_plain_model, randomize_batchnorm, train_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- qparams, observers, fake quant


def test_activation_qparams_by_hand():
    scale, zero_point = activation_qparams(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255, rel=1e-6)
    assert zero_point == -64  # round(-128 + 1 / (4/255)) = round(-64.25)
    assert activation_qparams(0.5, 2.0).zero_point == -128  # range widened to include 0
    assert activation_qparams(-2.0, -0.5).zero_point == 127
    with pytest.raises(ValueError, match="min_val <= max_val"):
        activation_qparams(1.0, 0.0)


def test_quantize_rounds_half_to_even_and_clamps():
    qp = QParams(0.5, 3)
    x = torch.tensor([0.25, 0.75, -0.25, 1000.0, -1000.0, 0.0])
    assert quantize(x, qp).tolist() == [3, 5, 3, 127, -128, 3]  # 0.5 -> 0, 1.5 -> 2, -0.5 -> -0
    torch.testing.assert_close(dequantize(torch.tensor([3, 5, -128], dtype=torch.int8), qp), torch.tensor([0.0, 1.0, -65.5]))


def test_weight_scales_are_per_channel_absmax_over_127():
    weight = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    torch.testing.assert_close(weight_scales(weight), torch.tensor([2.0 / 127, 0.5 / 127]))


def test_observers():
    minmax = MinMaxObserver()
    with pytest.raises(RuntimeError, match="no data observed"):
        minmax.qparams()
    minmax.observe(torch.tensor([-1.0, 2.0]))
    minmax.observe(torch.tensor([0.5, 3.0]))
    assert (minmax.min_val, minmax.max_val) == (-1.0, 3.0)
    moving = MovingAverageMinMaxObserver(averaging_constant=0.5)
    moving.observe(torch.tensor([-1.0, 2.0]))
    moving.observe(torch.tensor([-3.0, 4.0]))
    assert (moving.min_val, moving.max_val) == (-2.0, 3.0)
    percentile = PercentileObserver(percentile=99.0)
    values = torch.cat([torch.linspace(-1, 1, 999), torch.tensor([500.0])])
    percentile.observe(values)
    assert percentile.max_val < 1.01 and percentile.min_val > -1.01  # the single outlier is ignored
    # NaN or inf is refused (min/max of a NaN-holding tensor is NaN, and the range would give no scale), and the
    # observer keeps the range it had
    from pyvideo.accelerator.quantization.observers import ChannelMinMaxObserver

    for observer, shape in ((minmax, (2,)), (moving, (2,)), (percentile, (2,)), (ChannelMinMaxObserver(), (1, 2, 3))):
        before = (observer.min_val, observer.max_val)
        for bad in (float("nan"), float("inf"), -float("inf")):
            x = torch.zeros(shape)
            x.view(-1)[1] = bad
            with pytest.raises(ValueError, match="NaN or inf"):
                observer.observe(x)
        assert (observer.min_val, observer.max_val) == before


def test_fake_quantize_straight_through_gradient():
    qp = QParams(0.1, 0)
    x = torch.tensor([0.04, 0.26, 50.0, -50.0], requires_grad=True)
    y = fake_quantize(x, qp)
    torch.testing.assert_close(y.detach(), torch.tensor([0.0, 0.3, 12.7, -12.8]))
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]  # zero gradient where the value was clamped


# ---------------------------------------------------------------- int8 reference modules


def _integer_conv3d(xq, zp, wq, stride, padding, groups):
    """Independent int64 accumulation: pad with the zero point, sum over kernel offsets explicitly."""
    pt, ph, pw = padding
    x = F.pad(xq.long() - zp, (pw, pw, ph, ph, pt, pt))
    n, c_in, t, h, w = x.shape
    c_out, c_per_group, kt, kh, kw = wq.shape
    st, sh, sw = stride
    t_out, h_out, w_out = (t - kt) // st + 1, (h - kh) // sh + 1, (w - kw) // sw + 1
    acc = torch.zeros(n, c_out, t_out, h_out, w_out, dtype=torch.long)
    out_per_group = c_out // groups
    for g in range(groups):
        xs = x[:, g * c_per_group : (g + 1) * c_per_group]
        ws = wq[g * out_per_group : (g + 1) * out_per_group].long()
        for a in range(kt):
            for b in range(kh):
                for d in range(kw):
                    patch = xs[:, :, a : a + st * t_out : st, b : b + sh * h_out : sh, d : d + sw * w_out : sw]
                    acc[:, g * out_per_group : (g + 1) * out_per_group] += torch.einsum("nctxy,oc->notxy", patch, ws[:, :, a, b, d])
    return acc


CONVS = {
    "pointwise_relu": dict(c_in=8, c_out=6, kernel=(1, 1, 1), stride=(1, 1, 1), padding=(0, 0, 0), groups=1, act="relu"),
    "depthwise_stride2_swish": dict(c_in=6, c_out=6, kernel=(3, 3, 3), stride=(1, 2, 2), padding=(1, 1, 1), groups=6, act="swish"),
    "spatial_grouped_hswish": dict(c_in=6, c_out=4, kernel=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), groups=2, act="hswish"),
    "temporal_identity": dict(c_in=4, c_out=5, kernel=(5, 1, 1), stride=(1, 1, 1), padding=(2, 0, 0), groups=1, act="identity"),
}


@pytest.mark.parametrize("name", sorted(CONVS))
@pytest.mark.parametrize("with_residual", [False, True])
def test_quantized_conv3d_matches_independent_integer_arithmetic(name, with_residual):
    spec = CONVS[name]
    generator = torch.Generator().manual_seed(len(name) + with_residual)
    weight = torch.randn(spec["c_out"], spec["c_in"] // spec["groups"], *spec["kernel"], generator=generator) * 0.3
    conv = FusedConv3d(weight, torch.randn(spec["c_out"], generator=generator) * 0.1, spec["stride"], spec["padding"],
                       groups=spec["groups"], activation=spec["act"] if not with_residual else "identity")  # fmt: skip
    x_qp, out_qp, res_qp = QParams(0.05, -7), QParams(0.04, 5), QParams(0.03, 2)
    xq = torch.randint(-128, 128, (2, spec["c_in"], 3, 7, 9), generator=generator, dtype=torch.int8)
    out_shape = conv(dequantize(xq, x_qp)).shape
    residual = torch.randint(-128, 128, out_shape, generator=generator, dtype=torch.int8) if with_residual else None
    if with_residual:
        conv.fuse_residual(spec["act"])
    module = QuantizedConv3d(conv, x_qp, out_qp, res_qp if with_residual else None)
    actual = module(xq, residual) if with_residual else module(xq)

    assert module.weight_int8.dtype == torch.int8 and module.bias_int32.dtype == torch.int32
    acc = _integer_conv3d(xq, x_qp.zero_point, module.weight_int8, spec["stride"], spec["padding"], spec["groups"])
    acc = acc + module.bias_int32.long().reshape(1, -1, 1, 1, 1)
    v = acc.float() * module.dequant_scale.reshape(1, -1, 1, 1, 1)
    if with_residual:
        v = v + (residual.float() - res_qp.zero_point) * res_qp.scale
    y = {"relu": F.relu, "swish": lambda t: t * torch.sigmoid(t), "hswish": F.hardswish, "identity": lambda t: t}[spec["act"]](v)
    expected = torch.clamp(torch.round(y / out_qp.scale) + out_qp.zero_point, -128, 127).to(torch.int8)
    assert torch.equal(actual, expected)

    # and equals, to one output step, the float conv of the dequantized input with the dequantized int8 weight
    with torch.no_grad():
        conv.weight.copy_(module.weight_int8.float() * module.weight_scale.reshape(-1, 1, 1, 1, 1))
        reference = conv(dequantize(xq, x_qp), dequantize(residual, res_qp) if with_residual else None)
    steps = (dequantize(actual, out_qp) - dequantize(quantize(reference, out_qp), out_qp)).abs().max() / out_qp.scale
    assert steps <= 1.0 + 1e-4


def test_quantized_linear_pool_activation_add_and_se():
    generator = torch.Generator().manual_seed(0)
    in_qp, out_qp = QParams(0.1, -3), QParams(0.05, 4)
    x = torch.randint(-128, 128, (2, 3, 4), generator=generator, dtype=torch.int8)
    linear = nn.Linear(4, 5)
    q_linear = QuantizedLinear(linear, in_qp, None)  # float output
    acc = (x.long() - in_qp.zero_point) @ q_linear.weight_int8.long().t() + q_linear.bias_int32.long()
    torch.testing.assert_close(q_linear(x), acc.float() * q_linear.dequant_scale, rtol=0, atol=0)

    video = torch.randint(-128, 128, (2, 3, 2, 3, 5), generator=generator, dtype=torch.int8)
    pooled = QuantizedGlobalAvgPool(in_qp, out_qp)(video)
    exact_mean = (video.double() - in_qp.zero_point).mean(dim=(2, 3, 4), keepdim=True) * in_qp.scale
    assert (pooled.double() - (exact_mean / out_qp.scale + out_qp.zero_point).round()).abs().max() <= 1

    table = QuantizedActivation("relu", in_qp, out_qp)
    codes = torch.arange(-128, 128, dtype=torch.int8)
    expected = quantize(F.relu(dequantize(codes, in_qp)), out_qp)
    assert torch.equal(table(codes), expected) and table.table.shape == (256,)

    other_qp = QParams(0.2, 0)
    a, b = x, torch.randint(-128, 128, x.shape, generator=generator, dtype=torch.int8)
    added = QuantizedAdd(in_qp, other_qp, out_qp)(a, b)
    assert torch.equal(added, quantize(dequantize(a, in_qp) + dequantize(b, other_qp), out_qp))

    se = FusedSqueezeExcitation(nn.Linear(3, 2), nn.Linear(2, 3), activation="swish")
    q_se = QuantizedSqueezeExcitation(se, in_qp, out_qp)
    assert torch.equal(q_se(video), quantize(se(dequantize(video, in_qp)), out_qp))
    with pytest.raises(TypeError, match="int8"):
        q_se(video.float())


# ---------------------------------------------------------------- whole models


def _deployed_x3d(seed=0, num_classes=10):
    torch.manual_seed(seed)
    model = randomize_batchnorm(create_x3d(expansion="XS", num_classes=num_classes), torch.Generator().manual_seed(seed))
    return convert_to_deployable_form(model.eval(), torch.randn(1, 3, 4, 32, 32))


def _agreement(fp32, int8):
    relative = float((int8 - fp32).norm() / fp32.norm())
    top1 = float((int8.argmax(dim=1) == fp32.argmax(dim=1)).float().mean())
    return relative, top1


def test_efficient_x3d_int8_tracks_fp32():
    deploy = _deployed_x3d()
    generator = torch.Generator().manual_seed(1)
    calibration = [torch.randn(4, 3, 4, 32, 32, generator=generator) for _ in range(2)]
    int8_model = quantize_model(deploy, calibration)
    convs = [m for m in int8_model.modules() if isinstance(m, QuantizedConv3d)]
    assert len(convs) == sum(isinstance(m, FusedConv3d) for m in deploy.modules())
    assert sum(m.adds_residual for m in convs) == 26
    held_out = torch.randn(16, 3, 4, 32, 32, generator=generator)
    with torch.no_grad():
        relative, top1 = _agreement(deploy(held_out), int8_model(held_out))
    print(f"\nEfficientX3d-XS PTQ int8 vs fp32 (16 random clips 4x32x32): relative L2 error {relative:.4f}, top-1 agreement {top1:.3f}")
    assert relative < 0.05 and top1 >= 0.9
    # the int8 model is not tied to the calibration shape either, and it saves and loads as a whole
    other = torch.randn(1, 3, 3, 29, 35, generator=generator)
    buffer = io.BytesIO()
    torch.save(int8_model, buffer)
    buffer.seek(0)
    reloaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert _agreement(deploy(other), int8_model(other))[0] < 0.08
        assert torch.equal(reloaded(other), int8_model(other))


def test_qat_trains_and_converted_model_matches_fake_quant_model():
    deploy = _deployed_x3d(seed=2, num_classes=4)
    # per tensor, and the classifier int8 too, so that every layer is an int8 conv / linear with a per-tensor input
    qat = prepare_qat(deploy, per_channel=False, float_classifier=False)
    assert qat.training and any(isinstance(m, nn.Dropout) and m.training for m in qat.modules())
    generator = torch.Generator().manual_seed(3)
    clips, labels = torch.randn(4, 3, 4, 32, 32, generator=generator), torch.tensor([0, 1, 2, 3])
    before = deploy.s2.pathway0_res0.layers.conv_0.kernel.weight.detach().clone()
    train_steps(qat, clips, labels, 3)
    assert not torch.equal(before, deploy.s2.pathway0_res0.layers.conv_0.kernel.weight)  # parameters shared and trained
    freeze_observers(qat)
    qat.eval()
    int8_model = convert_qat(qat)
    assert_matches_fake_quant_layer_by_layer(qat, int8_model, clips, min_layers=40)


def test_qat_keeps_the_classifier_in_float_by_default():
    deploy = _deployed_x3d(seed=2, num_classes=4)
    qat = prepare_qat(deploy)
    assert type(qat.get_submodule("projection.model")) is FloatLinear  # trained without fake quantization
    assert not any(isinstance(m, FakeQuantLinear) for m in qat.modules())
    assert qat.get_submodule("projection.model").weight is deploy.projection.model.weight  # shared, as every layer
    assert type(deploy.projection.model) is nn.Linear  # the source model keeps its Linear
    train_steps(qat, torch.randn(4, 3, 4, 32, 32, generator=torch.Generator().manual_seed(3)), torch.arange(4), 2)
    freeze_observers(qat)
    int8_model = convert_qat(qat.eval())
    classifier = int8_model.get_submodule("projection_model")
    assert type(classifier) is FloatLinear and classifier.weight is deploy.projection.model.weight
    assert not any(isinstance(m, QuantizedLinear) for m in int8_model.modules())
    # the layer before it (the head's conv, ReLU fused) returns float32 for it
    assert int8_model.get_submodule("head_lin_5_kernel_int8").output_scale is None


def test_transmuted_plain_model_quantizes_with_residual_adds_fused_into_int8_convs():
    torch.manual_seed(0)
    plain = randomize_batchnorm(make_plain_model(num_classes=6), torch.Generator().manual_seed(0)).eval()
    transmute_model(plain)
    deploy = convert_to_deployable_form(plain, torch.randn(1, 3, 4, 16, 16))
    generator = torch.Generator().manual_seed(5)
    int8_model = quantize_model(deploy, [(torch.randn(4, 3, 4, 16, 16, generator=generator), None)], observer="percentile")
    assert not any(isinstance(m, QuantizedAdd) for m in int8_model.modules())  # the deploy form fused both adds
    residual_convs = [m for m in int8_model.modules() if isinstance(m, QuantizedConv3d) and m.adds_residual]
    assert len(residual_convs) == 2 and all(m.activation == "relu" for m in residual_convs)  # with the ReLU after
    assert not any(isinstance(m, QuantizedActivation) for m in int8_model.modules())
    assert any(isinstance(m, QuantizedGlobalAvgPool) for m in int8_model.modules())
    x = torch.randn(8, 3, 4, 16, 16, generator=generator)
    with torch.no_grad():
        relative, _ = _agreement(deploy(x), int8_model(x))
    assert relative < 0.08


def test_vanilla_x3d_xs_int8_through_the_transmuter():
    hub = pytest.importorskip("pyvideo.models.hub")
    if not hasattr(hub, "x3d_xs"):
        pytest.skip("pyvideo.models.hub.x3d_xs not available yet")
    torch.manual_seed(0)
    model = randomize_batchnorm(hub.x3d_xs(), torch.Generator().manual_seed(0)).eval()
    transmute_model(model)
    generator = torch.Generator().manual_seed(6)
    clips = torch.randn(2, 3, 4, 160, 160, generator=generator)  # x3d_xs's head pools a fixed 4x5x5 map
    deploy = convert_to_deployable_form(model, clips[:1])
    int8_model = quantize_model(deploy, clips)
    # the deploy form fused each SE (pool, two 1x1x1 convs, sigmoid, mul, Swish) and each residual add + ReLU
    assert sum(isinstance(m, QuantizedConv3d) for m in int8_model.modules()) >= 80
    assert sum(isinstance(m, QuantizedSqueezeExcitation) for m in int8_model.modules()) == 15  # blocks: 2+3+6+4
    assert not any(isinstance(m, (QuantizedMul, QuantizedAdd)) for m in int8_model.modules())
    # int8 from end to end: the input is the only float -> int8 step (the head's 4x5x5 AvgPool3d runs in int8 too)
    assert sum(isinstance(m, QuantizeTensor) for m in int8_model.modules()) == 1
    assert sum(isinstance(m, QuantizedAvgPool3d) for m in int8_model.modules()) == 1
    assert not any(isinstance(m, (QuantizedActivation, DequantizeTensor)) for m in int8_model.modules())
    with torch.no_grad():
        relative, top1 = _agreement(deploy(clips), int8_model(clips))
    print(f"\nvanilla x3d_xs int8 vs fp32 (2 random clips 4x160x160): relative L2 error {relative:.4f}, top-1 {top1:.2f}")
    assert relative < 0.05 and top1 == 1.0


class _AddThenReLU(nn.Module):
    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(9)
        self.a = FusedConv3d(torch.randn(4, 3, 1, 1, 1, generator=generator), None)
        self.b = FusedConv3d(torch.randn(4, 3, 1, 3, 3, generator=generator), None, padding=(0, 1, 1))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.a(x) + self.b(x))


def test_fused_add_activation_at_the_output_returns_float():
    model = _AddThenReLU().eval()
    x = torch.randn(2, 3, 2, 5, 7, generator=torch.Generator().manual_seed(1))
    int8_model = quantize_model(model, x)
    add = next(m for m in int8_model.modules() if isinstance(m, QuantizedAdd))
    assert add.activation == "relu" and add.output_qparams is None
    with torch.no_grad():
        out, expected = int8_model(x), model(x)
    assert out.dtype == torch.float32 and float(out.min()) >= 0.0
    assert float((out - expected).abs().max()) < 0.05 * float(expected.abs().max())


def test_quantization_errors_are_clear():
    class Untraceable(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # data-dependent control flow

    with pytest.raises(RuntimeError, match="traceable"):
        prepare(Untraceable())
    prepared = prepare(nn.Sequential(FusedConv3d(torch.randn(2, 1, 1, 1, 1), None)))
    with pytest.raises(ValueError, match="no batches"):
        calibrate(prepared, [])
    with pytest.raises(TypeError, match="calibration items"):
        calibrate(prepared, ["not a tensor"])
    with pytest.raises(ValueError, match="prepare"):
        convert(nn.Sequential())
    with pytest.raises(ValueError, match="convert_to_deployable_form first"):
        quantize_model(create_x3d(num_classes=3).eval(), torch.randn(1, 3, 2, 16, 16))
    # non-finite calibration data or QAT inputs, and non-finite values at a converted model's quantize points
    deploy = convert_to_deployable_form(create_x3d(num_classes=3).eval(), torch.randn(1, 3, 2, 16, 16))
    clip = torch.randn(1, 3, 2, 16, 16)
    bad = clip.clone()
    bad[0, 0, 1, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize_model(deploy, [clip, bad])
    with pytest.raises(ValueError, match="NaN or inf"):
        prepare_qat(deploy)(bad)
    int8 = quantize_model(deploy, [clip])
    bad[0, 0, 1, 3, 4] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        int8(bad)
