"""Per-channel squeeze-excitation outputs (ChannelQParams folded into the reading pointwise conv), bias correction,
and the warning about calibration batches of very different scales."""
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation
from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.accelerator.quantization import (
    FakeQuantConv3d,
    QParams,
    QuantizedConv3d,
    QuantizedLinear,
    QuantizedSqueezeExcitation,
    calibrate,
    convert,
    convert_qat,
    dequantize,
    freeze_observers,
    prepare,
    prepare_qat,
    quantize,
    quantize_model,
)
from pyvideo.accelerator.quantization.graph_quantizer import (CHANNEL_STRENGTHS, choose_channel_strengths, per_channel_nodes,
                                                               unstable_ranges, weight_error_means)
from pyvideo.accelerator.quantization.observers import ChannelMinMaxObserver
from pyvideo.accelerator.quantization.qparams import ChannelQParams, activation_qparams, channel_activation_qparams
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

from ._util import randomize_batchnorm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _channel_ranges(x):
    flat = x.detach().transpose(0, 1).reshape(x.shape[1], -1)
    return flat.amin(dim=1), flat.amax(dim=1)


def _relative(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


# ---------------------------------------------------------------- qparams and observer


def test_channel_qparams_quantize_each_channel_with_its_own_range():
    qp = channel_activation_qparams(torch.tensor([-1.0, 0.0]), torch.tensor([3.0, 0.5]))
    for c, (low, high) in enumerate([(-1.0, 3.0), (0.0, 0.5)]):
        expected = activation_qparams(low, high)
        assert float(qp.scale[c]) == expected.scale and int(qp.zero_point[c]) == expected.zero_point
    x = torch.tensor([[[0.5, 2.0]], [[0.25, 0.5]]]).reshape(1, 2, 2)  # [N=1, C=2, 2]
    q = quantize(x, qp)
    for c in range(2):
        per_tensor = QParams(float(qp.scale[c]), int(qp.zero_point[c]))
        assert torch.equal(q[:, c], quantize(x[:, c], per_tensor))
        torch.testing.assert_close(dequantize(q, qp)[:, c], dequantize(q[:, c], per_tensor))
    with pytest.raises(ValueError, match="equal 1-D"):
        channel_activation_qparams(torch.zeros(2), torch.zeros(3))


def test_channel_minmax_observer():
    observer = ChannelMinMaxObserver()
    with pytest.raises(RuntimeError, match="no data observed"):
        observer.qparams()
    observer.observe(torch.tensor([[1.0, -2.0], [0.5, 4.0]]).reshape(1, 2, 2))
    observer.observe(torch.tensor([[3.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 2))
    assert observer.min_val.tolist() == [-2.0, 0.0] and observer.max_val.tolist() == [3.0, 4.0]
    moving = ChannelMinMaxObserver(averaging_constant=0.5)
    moving.observe(torch.tensor([[0.0, 2.0]]).reshape(1, 1, 2))
    moving.observe(torch.tensor([[-2.0, 4.0]]).reshape(1, 1, 2))
    assert moving.min_val.tolist() == [-1.0] and moving.max_val.tolist() == [3.0]
    with pytest.raises(ValueError, match="channels after"):
        observer.observe(torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="channel dim"):
        observer.observe(torch.zeros(4))
    with pytest.raises(ValueError, match="averaging_constant"):
        ChannelMinMaxObserver(averaging_constant=0.0)


# ---------------------------------------------------------------- a pointwise conv reading per-channel int8


def test_pointwise_conv_with_per_channel_input_is_exact_integer_arithmetic():
    generator = torch.Generator().manual_seed(0)
    c_in, c_out = 12, 7
    spread = torch.linspace(0.2, 3.0, c_in).reshape(1, -1, 1, 1, 1)
    x = torch.randn(2, c_in, 3, 4, 5, generator=generator) * spread + 0.3
    conv = FusedConv3d(torch.randn(c_out, c_in, 1, 1, 1, generator=generator), torch.randn(c_out, generator=generator))
    qp = channel_activation_qparams(*_channel_ranges(x))
    module = QuantizedConv3d(conv, qp, None)
    assert (module.input_scale, module.input_zero_point) == (1.0, 0)  # what the kernel sees
    q = quantize(x, qp)
    out = module(q)
    # independently: the folded weight's int8 values, unfolded, applied to the dequantized input, plus the int32 bias
    # before the zero-point term (which the module folded into bias_int32)
    w_scale = module.weight_scale.double().reshape(-1, 1, 1, 1, 1)
    weight = module.weight_int8.double() * w_scale / qp.scale.double().reshape(1, -1, 1, 1, 1)
    zero_point_term = module.weight_int8.double().sum(dim=(2, 3, 4)) @ qp.zero_point.double()
    bias = (module.bias_int32.double() + zero_point_term) * module.dequant_scale.double()
    expected = F.conv3d(dequantize(q, qp).double(), weight) + bias.reshape(1, -1, 1, 1, 1)
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-5)
    assert _relative(out, conv(x)) < 0.02
    with pytest.raises(ValueError, match="unpadded pointwise"):
        QuantizedConv3d(FusedConv3d(torch.randn(c_in, 1, 3, 3, 3), torch.zeros(c_in), padding=1, groups=c_in), qp, None)
    with pytest.raises(ValueError, match="per-tensor input"):
        QuantizedLinear(nn.Linear(c_in, 3), qp, None)
    with pytest.raises(ValueError, match="do not fit"):
        QuantizedConv3d(FusedConv3d(torch.randn(3, c_in + 1, 1, 1, 1), torch.zeros(3)), qp, None)


def test_quantized_squeeze_excitation_per_channel_output():
    generator = torch.Generator().manual_seed(1)
    se = FusedSqueezeExcitation(nn.Linear(8, 4), nn.Linear(4, 8), "relu", "swish")
    in_qp = QParams(0.03, 3)
    q = quantize(torch.randn(2, 8, 3, 5, 5, generator=generator), in_qp)
    with torch.no_grad():
        y = se(dequantize(q, in_qp))
        out_qp = channel_activation_qparams(*_channel_ranges(y))
        module = QuantizedSqueezeExcitation(se, in_qp, out_qp)
        assert torch.equal(module(q), quantize(y, out_qp))
    assert isinstance(module.output_qparams, ChannelQParams)
    with pytest.raises(ValueError, match="need 8 channels"):
        QuantizedSqueezeExcitation(se, in_qp, ChannelQParams(torch.ones(3), torch.zeros(3, dtype=torch.int32)))


# ---------------------------------------------------------------- which tensors go per channel


class _SEModel(nn.Module):
    """conv -> SE -> Identity -> pointwise conv (optionally also reading the SE output as a residual / in float)."""

    def __init__(self, reader: str = "pointwise", channels: int = 8, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = FusedConv3d(torch.randn(channels, 3, 1, 1, 1, generator=generator), torch.zeros(channels), activation="relu")
        self.se = FusedSqueezeExcitation(nn.Linear(channels, 4), nn.Linear(4, channels), "relu", "swish")
        with torch.no_grad():  # very different gates per channel: ~1 for half of them, ~0.01 for the rest
            self.se.fc1.bias.copy_(torch.tensor([6.0, -4.6] * (channels // 2)))
        self.act = nn.Identity()
        # the reader amplifies the weakly gated channels (as trained convs after an SE can), so they matter
        project = torch.randn(5, channels, 1, 1, 1, generator=generator) * torch.tensor([1.0, 30.0] * (channels // 2)).reshape(1, -1, 1, 1, 1)
        self.project = FusedConv3d(project, torch.zeros(5))
        self.second = FusedConv3d(torch.randn(channels, channels, 1, 1, 1, generator=generator), torch.zeros(channels),
                                  adds_residual=reader == "residual")  # fmt: skip
        self.reader = reader

    def forward(self, x):
        y = self.act(self.se(self.conv(x)))
        if self.reader == "residual":
            return self.project(self.second(y, y))
        if self.reader == "float":
            return self.project(y) + y.amax()
        return self.project(y)


# (reader of the SE output, whether the SE output is per channel, how many tensors are: with the residual reader,
# `second`'s output, which only the pointwise `project` reads, is per channel instead)
@pytest.mark.parametrize("reader,expected,channel_tensors", [("pointwise", 1, 1), ("residual", 0, 1), ("float", 0, 0)])
def test_per_channel_only_where_every_reader_is_a_pointwise_conv_input(reader, expected, channel_tensors):
    model = _SEModel(reader).eval()
    prepared = prepare(model)
    assert len(per_channel_nodes(prepared.graph, dict(prepared.named_modules()))) == 0  # quantizers now sit between
    channel_observers = [m for m in prepared.modules() if isinstance(getattr(m, "observer", None), ChannelMinMaxObserver)]
    assert len(channel_observers) == channel_tensors
    int8_model = quantize_model(model, torch.randn(2, 3, 2, 6, 6))
    se = [m for m in int8_model.modules() if isinstance(m, QuantizedSqueezeExcitation)]
    assert len(se) == 1 and isinstance(se[0].output_qparams, ChannelQParams) == bool(expected)


def test_channel_strength_is_the_one_with_the_least_reader_error():
    model = _SEModel().eval()
    generator = torch.Generator().manual_seed(2)
    calibration = [torch.randn(4, 3, 2, 8, 8, generator=generator) for _ in range(8)]
    prepared = prepare(model)
    calibrate(prepared, calibration)
    observer = next(m.observer for m in prepared.modules() if isinstance(getattr(m, "observer", None), ChannelMinMaxObserver))
    with torch.no_grad():  # independently: the reader's output error for each candidate strength
        se_out = torch.cat([model.act(model.se(model.conv(b))) for b in calibration])
        exact = F.conv3d(se_out, model.project.weight)
        errors = {}
        for strength in CHANNEL_STRENGTHS:
            qp = channel_activation_qparams(observer.min_val, observer.max_val, strength)
            folded = model.project.weight * qp.scale.reshape(1, -1, 1, 1, 1)
            w_scale = folded.abs().reshape(folded.shape[0], -1).amax(dim=1).reshape(-1, 1, 1, 1, 1) / 127
            weight = torch.round(folded / w_scale) * w_scale / qp.scale.reshape(1, -1, 1, 1, 1)
            errors[strength] = float((F.conv3d(dequantize(quantize(se_out, qp), qp), weight) - exact).square().sum())
    chosen = choose_channel_strengths(prepared, calibration)
    assert list(chosen.values()) == [observer.strength] == [min(errors, key=errors.get)]
    assert len(set(round(e, 6) for e in errors.values())) > 1  # the candidates really differ


def test_per_channel_se_outputs_cut_the_int8_error_of_uneven_gates():
    model = _SEModel().eval()
    generator = torch.Generator().manual_seed(2)
    calibration = [torch.randn(4, 3, 2, 8, 8, generator=generator) for _ in range(8)]
    clips = torch.randn(4, 3, 2, 8, 8, generator=generator)  # not calibrated on
    with torch.no_grad():
        reference = model(clips)
        errors = {per_channel: _relative(quantize_model(model, calibration, per_channel=per_channel,
                                                        bias_correction=False)(clips), reference)
                  for per_channel in (False, True)}  # fmt: skip
    print(f"\nuneven SE gates: int8 relative error per tensor {errors[False]:.4f}, per channel {errors[True]:.4f}")
    assert errors[True] < 0.5 * errors[False]


def test_efficient_x3d_quantizes_every_se_output_per_channel():
    torch.manual_seed(0)
    model = create_x3d(expansion="XS", num_classes=5).eval()
    randomize_batchnorm(model, torch.Generator().manual_seed(0))
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 32, 32)).eval()
    se_count = sum(isinstance(m, FusedSqueezeExcitation) for m in deploy.modules())
    assert se_count > 0
    generator = torch.Generator().manual_seed(1)
    int8_model = quantize_model(deploy, [torch.randn(2, 3, 4, 32, 32, generator=generator)])
    per_channel_se = [m for m in int8_model.modules()
                      if isinstance(m, QuantizedSqueezeExcitation) and isinstance(m.output_qparams, ChannelQParams)]
    folded_convs = [m for m in int8_model.modules() if isinstance(m, QuantizedConv3d) and hasattr(m, "input_channel_scale")]
    per_channel_convs = [m for m in int8_model.modules()  # test_quantization_channel_conv.py: which ones
                         if isinstance(m, QuantizedConv3d) and isinstance(m.output_qparams, ChannelQParams)]
    assert len(per_channel_se) == se_count and len(folded_convs) == se_count + len(per_channel_convs)
    clips = torch.randn(3, 3, 4, 32, 32, generator=generator)
    with torch.no_grad():
        assert _relative(int8_model(clips), deploy(clips)) < 0.08
    off = quantize_model(deploy, [torch.randn(2, 3, 4, 32, 32, generator=generator)], per_channel=False)
    assert not any(isinstance(m.output_qparams, ChannelQParams) for m in off.modules() if isinstance(m, QuantizedSqueezeExcitation))


# ---------------------------------------------------------------- QAT with per-channel tensors


def test_qat_per_channel_layers_convert_to_int8_modules_with_the_same_arithmetic():
    """Layer by layer (so that rare 1-LSB rounding flips cannot cascade): each int8 SE / folded conv, given the int8
    form of its fake-quant twin's inputs, reproduces the twin's fake-quantized output within 1 LSB."""
    model = _SEModel(seed=3).eval()
    qat = prepare_qat(model)
    generator = torch.Generator().manual_seed(4)
    clips = torch.randn(4, 3, 2, 8, 8, generator=generator)
    optimizer = torch.optim.SGD(qat.parameters(), lr=0.01)
    for _ in range(2):
        loss = qat(clips).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    freeze_observers(qat)
    qat.eval()
    int8_model = convert_qat(qat)
    fake_project = next(m for m in qat.modules() if isinstance(m, FakeQuantConv3d) and m.out_channels == 5)
    int8_project = next(m for m in int8_model.modules() if isinstance(m, QuantizedConv3d) and hasattr(m, "input_channel_scale"))
    seen = {}
    fake_project.register_forward_hook(lambda m, inputs, output: seen.update(x=inputs[0], y=output))
    with torch.no_grad():
        qat(clips)
        input_qp = fake_project.input_qparams()
        assert isinstance(input_qp, ChannelQParams)
        q = quantize(seen["x"], input_qp)
        assert torch.equal(dequantize(q, input_qp), seen["x"])  # the twin's input is on the per-channel grid
        torch.testing.assert_close(int8_project(q), seen["y"], rtol=1e-5, atol=1e-5)
        se_int8 = next(m for m in int8_model.modules() if isinstance(m, QuantizedSqueezeExcitation))
        conv_out = qat.conv(clips)  # the SE's input (conv output, before its quantizer)
        conv_qp = se_int8.input_qparams
        fake_se_out = quantize(qat.se(dequantize(quantize(conv_out, conv_qp), conv_qp)), se_int8.output_qparams)
        difference = (se_int8(quantize(conv_out, conv_qp)).int() - fake_se_out.int()).abs()
        assert int(difference.max()) == 0


# ---------------------------------------------------------------- bias correction


class _DepthwiseModel(nn.Module):
    """ReLU'd (non-zero-mean) input -> 3x3x3 depthwise conv, whose few weights round to a visible mean shift."""

    def __init__(self, channels: int = 6, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.expand = FusedConv3d(torch.randn(channels, 3, 1, 1, 1, generator=generator), torch.rand(channels, generator=generator),
                                  activation="relu")  # fmt: skip
        self.depthwise = FusedConv3d(torch.randn(channels, 1, 3, 3, 3, generator=generator) * 0.3, torch.zeros(channels),
                                     padding=1, groups=channels)  # fmt: skip

    def forward(self, x):
        return self.depthwise(self.expand(x))


def test_weight_error_means_are_the_mean_output_shift_of_weight_rounding():
    model = _DepthwiseModel().eval()
    generator = torch.Generator().manual_seed(5)
    batches = [torch.randn(2, 3, 3, 6, 6, generator=generator) for _ in range(2)]
    prepared = prepare(model)
    calibrate(prepared, batches)
    shifts = weight_error_means(prepared, batches)
    assert set(shifts) == {"expand", "depthwise"}
    int8_model = convert(prepared)
    int8_depthwise = next(m for m in int8_model.modules() if isinstance(m, QuantizedConv3d) and m.groups > 1)
    weight = int8_depthwise.weight_int8.float() * int8_depthwise.weight_scale.reshape(-1, 1, 1, 1, 1)
    delta = weight - model.depthwise.weight.detach()
    with torch.no_grad():
        inputs = torch.cat([model.expand(b) for b in batches])
        expected = F.conv3d(inputs, delta, None, 1, 1, 1, model.depthwise.groups).mean(dim=(0, 2, 3, 4))
    torch.testing.assert_close(shifts["depthwise"], expected, rtol=1e-4, atol=1e-7)
    assert float(expected.abs().max()) > 0  # the test has something to measure


def test_bias_correction_removes_the_mean_output_error():
    model = _DepthwiseModel(seed=1).eval()
    generator = torch.Generator().manual_seed(6)
    calibration = (torch.randn(2, 3, 3, 6, 6, generator=generator) for _ in range(3))  # a one-shot iterator works
    corrected = quantize_model(model, calibration, bias_correction=True)
    calibration = [torch.randn(2, 3, 3, 6, 6, generator=torch.Generator().manual_seed(6)) for _ in range(3)]
    plain = quantize_model(model, calibration, bias_correction=False)
    clips = torch.randn(8, 3, 3, 6, 6, generator=generator)
    with torch.no_grad():
        reference = model(clips)
        mean_error = {name: float((m(clips) - reference).mean(dim=(0, 2, 3, 4)).abs().mean())
                      for name, m in (("plain", plain), ("corrected", corrected))}  # fmt: skip
    print(f"\nmean per-channel output bias: plain {mean_error['plain']:.5f}, corrected {mean_error['corrected']:.5f}")
    assert mean_error["corrected"] < 0.5 * mean_error["plain"]


# ---------------------------------------------------------------- calibration batches of very different scales


def test_quantize_model_warns_when_a_tensor_changes_scale_between_calibration_batches():
    model = _DepthwiseModel(seed=2).eval()
    generator = torch.Generator().manual_seed(7)
    stable = [torch.randn(2, 3, 3, 6, 6, generator=generator) for _ in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no warning for batches of one scale
        quantize_model(model, stable)
    prepared = prepare(model)
    calibrate(prepared, stable)
    spreads = [spread for _, spread, _, _ in unstable_ranges(prepared, factor=1.0)]
    assert spreads and max(spreads) < 5
    bimodal = stable[:3] + [stable[3] * 100.0]  # one batch 100x larger: every tensor of this ReLU model scales with it
    with pytest.warns(RuntimeWarning, match="change scale by more than 20x") as caught:
        quantize_model(model, bimodal, dynamic_ranges=False)  # by default these tensors would be dynamic
    assert "expand" in str(caught[0].message)
    prepared = prepare(model)
    calibrate(prepared, bimodal)
    name, spread, largest, median = unstable_ranges(prepared)[0]
    assert spread > 20 and largest == pytest.approx(spread * median)
