"""Per-channel output quantization of int8 convs: a conv whose output only unpadded pointwise convs read (X3D's last
block output, read by the head's conv_5) is quantized per channel, and its readers fold the channel scales in. The
torch reference (QuantizedConv3d), the per-layer native ops, native programs and their model files all keep it per
channel."""
import pytest
import torch
import torch.nn as nn

from pyvideo._native import native, using_isa
from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation
from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.accelerator.native import NativeQuantizedConv3d, compile_native, load_program, lower_quantized_to_native
from pyvideo.accelerator.quantization import (QParams, QuantizedConv3d, QuantizedLinear, convert_qat, prepare,
                                              prepare_qat, quantize, quantize_model)
from pyvideo.accelerator.quantization.graph_quantizer import per_channel_nodes
from pyvideo.accelerator.quantization.observers import ChannelMinMaxObserver
from pyvideo.accelerator.quantization.qparams import ChannelQParams, channel_activation_qparams
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d
from pyvideo.ops.quantized_conv3d import (pack_quantized_depthwise_weight, pack_quantized_weight, quantized_conv3d,
                                          quantized_depthwise_conv3d)

from ._util import randomize_batchnorm, relative_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _conv(c_in, c_out, kernel=1, depthwise=False, residual=False, activation="relu", seed=0):
    generator = torch.Generator().manual_seed(seed)
    shape = (c_out, 1 if depthwise else c_in, kernel, kernel, kernel)
    return FusedConv3d(torch.randn(shape, generator=generator) * 0.3, torch.randn(c_out, generator=generator) * 0.1,
                       padding=kernel // 2, groups=c_in if depthwise else 1, activation=activation,
                       adds_residual=residual)


def _uneven_channel_qparams(y: torch.Tensor) -> ChannelQParams:
    dims = (0, 2, 3, 4)
    return channel_activation_qparams(y.amin(dims), y.amax(dims))


def _reference_pair(conv, input_qp, shape, residual_qp=None, seed=1):
    """(QuantizedConv3d with per-channel output qparams from its float output's channel ranges, int8 input, int8
    residual or None)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator) * 2
    q = quantize(x, input_qp)
    out_channels = conv.weight.shape[0]
    residual = None
    if residual_qp is not None:
        out_shape = (shape[0], out_channels, *shape[2:])
        residual = quantize(torch.randn(out_shape, generator=generator), residual_qp)
    float_out = QuantizedConv3d(conv, input_qp, None, residual_qp)(q, residual)
    # stretch the channels' ranges apart, as a trained block output's (up to ~5x there)
    scale = torch.linspace(0.2, 1.0, out_channels).reshape(1, -1, 1, 1, 1)
    return QuantizedConv3d(conv, input_qp, _uneven_channel_qparams(float_out * scale), residual_qp), q, residual


# ---------------------------------------------------------------- the torch reference


def test_per_channel_output_is_each_channels_own_quantization_of_the_float_result():
    conv = _conv(6, 9, kernel=3, residual=True, activation="swish")
    input_qp, residual_qp = QParams(0.04, -3), QParams(0.03, 5)
    module, q, residual = _reference_pair(conv, input_qp, (2, 6, 3, 5, 4), residual_qp)
    float_out = QuantizedConv3d(conv, input_qp, None, residual_qp)(q, residual)
    out_qp = module.output_qparams
    assert isinstance(out_qp, ChannelQParams) and float(out_qp.scale.max() / out_qp.scale.min()) > 2
    assert torch.equal(module(q, residual), quantize(float_out, out_qp))
    for c in (0, 8):  # channel c is channel c's own per-tensor quantization
        own = QParams(float(out_qp.scale[c]), int(out_qp.zero_point[c]))
        assert torch.equal(module(q, residual)[:, c], quantize(float_out[:, c], own))
    assert "output_scale" in dict(module.named_buffers())


def test_per_channel_output_qparams_must_match_the_output_channels():
    conv = _conv(4, 6)
    with pytest.raises(ValueError, match=r"per-channel output qparams need 6 channels, got \(5,\)"):
        QuantizedConv3d(conv, QParams(0.1, 0), ChannelQParams(torch.full((5,), 0.1), torch.zeros(5, dtype=torch.int32)))
    with pytest.raises(TypeError, match="per-tensor outputs only"):  # a linear's channels are its last dim
        QuantizedLinear(nn.Linear(4, 6), QParams(0.1, 0),
                        ChannelQParams(torch.full((6,), 0.1), torch.zeros(6, dtype=torch.int32)))


# ---------------------------------------------------------------- which tensors are chosen


class _Chain(nn.Module):
    """conv_a -> (reader) where reader is: a pointwise conv ("pointwise"), a pointwise conv that also adds it as its
    residual ("residual"), a padded 3x3x3 conv ("padded"), a depthwise conv ("depthwise"), or two pointwise convs
    ("two"); "from_depthwise": a depthwise conv's output read by a pointwise conv (kept per tensor)."""

    def __init__(self, reader):
        super().__init__()
        self.reader = reader
        self.conv_a = _conv(3, 8, seed=1)
        self.act = nn.Identity()
        self.pw = _conv(8, 8, residual=reader == "residual", seed=2)
        self.pw2 = _conv(8, 5, seed=3)
        self.dense = _conv(8, 5, kernel=3, seed=4)
        self.dw = _conv(8, 8, kernel=3, depthwise=True, seed=5)

    def forward(self, x):
        y = self.act(self.conv_a(x))
        if self.reader == "pointwise":
            return self.pw(y)
        if self.reader == "residual":
            return self.pw(y, y)
        if self.reader == "padded":
            return self.dense(y)
        if self.reader == "depthwise":
            return self.dw(y)
        if self.reader == "from_depthwise":
            return self.pw(self.dw(y))
        return self.pw(y) + self.pw2(y).sum(dim=1, keepdim=True)


@pytest.mark.parametrize("reader,chosen", [("pointwise", True), ("two", True), ("residual", False), ("padded", False),
                                           ("depthwise", False), ("from_depthwise", False)])
def test_a_conv_output_is_per_channel_only_where_unpadded_pointwise_convs_alone_read_it(reader, chosen):
    model = _Chain(reader).eval()
    from pyvideo.accelerator.deployable.graph import DeployTracer

    graph = DeployTracer().trace(model)
    modules = dict(model.named_modules())
    names = {node.target for node in per_channel_nodes(graph, modules)}
    assert ("conv_a" in names) == chosen
    generator = torch.Generator().manual_seed(0)
    int8_model = quantize_model(model, [torch.randn(2, 3, 2, 6, 6, generator=generator) for _ in range(2)],
                                dynamic_ranges=False)
    per_channel = [m for m in int8_model.modules()
                   if isinstance(m, QuantizedConv3d) and isinstance(m.output_qparams, ChannelQParams)]
    assert len(per_channel) == int(chosen)
    clips = torch.randn(2, 3, 2, 6, 6, generator=generator)
    with torch.no_grad():
        assert relative_error(int8_model(clips), model(clips)) < 0.05
    off = quantize_model(model, [clips], per_channel=False, dynamic_ranges=False)
    assert not any(isinstance(m.output_qparams, ChannelQParams) for m in off.modules() if isinstance(m, QuantizedConv3d))


@pytest.fixture(scope="module")
def x3d_xs():
    torch.manual_seed(0)
    model = create_x3d(expansion="XS", num_classes=5).eval()
    randomize_batchnorm(model, torch.Generator().manual_seed(0))
    return convert_to_deployable_form(model, torch.randn(1, 3, 4, 32, 32)).eval()


def test_x3d_quantizes_its_last_block_output_per_channel(x3d_xs):
    """X3D: every SE output and the last block's output (read by the head's conv_5 alone). No other block output
    (the next block adds it as its residual), and no depthwise output (kept per tensor by choice)."""
    prepared = prepare(x3d_xs)
    channel = [name for name, m in prepared.named_modules()
               if isinstance(getattr(m, "observer", None), ChannelMinMaxObserver)]
    se_count = sum(isinstance(m, FusedSqueezeExcitation) for m in x3d_xs.modules())
    assert len(channel) == se_count + 1
    generator = torch.Generator().manual_seed(1)
    calibration = [torch.randn(2, 3, 4, 32, 32, generator=generator) for _ in range(2)]
    int8_model = quantize_model(x3d_xs, calibration)
    convs = [(name, m) for name, m in int8_model.named_modules() if isinstance(m, QuantizedConv3d)]
    per_channel = [(name, m.kind) for name, m in convs if isinstance(m.output_qparams, ChannelQParams)]
    last_block = f"s5_pathway0_res{max(int(n.split('res')[1].split('_')[0]) for n, _ in convs if n.startswith('s5'))}"
    assert per_channel == [(f"{last_block}_layers_conv_2_kernel_int8", "pointwise")]
    folded = [name for name, m in convs if hasattr(m, "input_channel_scale")]
    assert len(folded) == se_count + 1 and folded[-1].startswith("head")  # every reader folds the scales in
    clips = torch.randn(3, 3, 4, 32, 32, generator=generator)
    with torch.no_grad():
        assert relative_error(int8_model(clips), x3d_xs(clips)) < 0.08


def test_qat_converts_the_conv_output_per_channel_with_the_same_arithmetic():
    model = _Chain("pointwise").eval()
    qat = prepare_qat(model)
    generator = torch.Generator().manual_seed(4)
    clips = torch.randn(4, 3, 2, 6, 6, generator=generator)
    optimizer = torch.optim.SGD(qat.parameters(), lr=0.01)
    for _ in range(2):
        optimizer.zero_grad()
        qat(clips).square().mean().backward()
        optimizer.step()
    qat.eval()
    with torch.no_grad():
        fake = qat(clips)
    int8_model = convert_qat(qat)
    assert sum(isinstance(m, QuantizedConv3d) and isinstance(m.output_qparams, ChannelQParams)
               for m in int8_model.modules()) == 1
    with torch.no_grad():
        assert relative_error(int8_model(clips), fake) < 0.02


# ---------------------------------------------------------------- native per-layer ops


@pytest.mark.parametrize("level", native().supported_isas())
@pytest.mark.parametrize("kind,residual,activation,shape", [
    ("pointwise", False, "relu", (2, 13, 3, 5, 7)),
    ("pointwise", True, "identity", (1, 40, 2, 5, 5)),
    ("depthwise", True, "swish", (2, 19, 3, 6, 5)),
    ("dense", False, "hswish", (1, 6, 3, 4, 9)),
])
def test_native_per_layer_conv_keeps_per_channel_outputs_within_one_lsb(level, kind, residual, activation, shape):
    c_in = shape[1]
    c_out = c_in if kind == "depthwise" or residual else 21
    conv = _conv(c_in, c_out, kernel=1 if kind == "pointwise" else 3, depthwise=kind == "depthwise",
                 residual=residual, activation=activation, seed=c_in)
    reference, q, res = _reference_pair(conv, QParams(0.05, -7), shape, QParams(0.03, 2) if residual else None)
    lowered = NativeQuantizedConv3d(reference)
    assert torch.equal(lowered.output_scales, reference.output_scale)
    with torch.no_grad(), using_isa(level):
        got, expected = lowered(q, res), reference(q, res)
    diff = (got.int() - expected.int()).abs()
    assert got.dtype == torch.int8 and got.shape == expected.shape
    assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01
    # per tensor with the widest channel's qparams is something else: each channel's own are used
    wide = int(reference.output_scale.argmax())
    lowered.output_scales = lowered.output_zero_points = None
    lowered.output_scale = float(reference.output_scale[wide])
    lowered.output_zero_point = int(reference.output_zero_point[wide])
    with torch.no_grad(), using_isa(level):
        assert not torch.equal(lowered(q, res), got)


def test_lower_quantized_to_native_keeps_per_channel_conv_outputs():
    model = _Chain("pointwise").eval()
    generator = torch.Generator().manual_seed(0)
    int8_model = quantize_model(model, [torch.randn(2, 3, 2, 6, 6, generator=generator) for _ in range(2)])
    lowered = lower_quantized_to_native(int8_model)
    per_channel = [m for m in lowered.modules() if isinstance(m, NativeQuantizedConv3d) and m.output_scales is not None]
    assert len(per_channel) == 1
    clips = torch.randn(2, 3, 2, 6, 6, generator=generator)
    with torch.no_grad():
        assert relative_error(lowered(clips), int8_model(clips)) < 0.01


def test_native_per_channel_arguments_are_checked():
    conv = _conv(8, 8)
    reference, q, _ = _reference_pair(conv, QParams(0.05, 0), (1, 8, 2, 3, 3))
    packed, sums = pack_quantized_weight(reference.weight_int8)
    scales, zero_points = reference.output_scale, reference.output_zero_point
    args = (q, packed, sums, reference.bias_int32, reference.dequant_scale, None, [1, 1, 1], [0, 0, 0], 0, 1.0, 0, 1,
            1.0, 0)
    assert torch.equal(quantized_conv3d(*args, scales, zero_points), NativeQuantizedConv3d(reference)(q))
    with pytest.raises(ValueError, match="must have 8 entries"):
        quantized_conv3d(*args, scales[:7], zero_points[:7])
    with pytest.raises(ValueError, match="go together"):
        quantized_conv3d(*args, scales, None)
    with pytest.raises(ValueError, match="must have dtype float32, got float64"):
        quantized_conv3d(*args, scales.double(), zero_points)
    with pytest.raises(ValueError, match="must have dtype int32, got int64"):
        quantized_conv3d(*args, scales, zero_points.long())
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        broken = scales.clone()
        broken[3] = bad
        with pytest.raises(ValueError, match="quantized conv3d: channel 3 output quantization needs a positive finite"):
            quantized_conv3d(*args, broken, zero_points)
    broken = zero_points.clone()
    broken[6] = 128
    with pytest.raises(ValueError, match=r"channel 6 output quantization .*\(got scale .*, zero point 128\)"):
        quantized_conv3d(*args, scales, broken)
    # The per-tensor qparams: an infinite output scale used to pass and requantize everything to the zero point.
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="quantized conv3d: output quantization needs a positive finite scale"):
            quantized_conv3d(*args[:12], bad, 0)
        with pytest.raises(ValueError, match="quantized conv3d: residual quantization needs a positive finite scale"):
            quantized_conv3d(q, *args[1:5], q, *args[6:9], bad, 0, *args[11:])
    with pytest.raises(ValueError, match=r"output quantization .*\(got scale .*, zero point -129\)"):
        quantized_conv3d(*args[:12], 1.0, -129)
    with pytest.raises(ValueError, match=r"the input zero point must be in \[-128, 127\] \(got 128\)"):
        quantized_conv3d(*args[:8], 128, *args[9:])
    depthwise = pack_quantized_depthwise_weight(torch.ones(8, 1, 1, 1, 1, dtype=torch.int8))
    with pytest.raises(ValueError, match="quantized conv3d: output quantization needs a positive finite scale"):
        quantized_depthwise_conv3d(q, depthwise, reference.bias_int32, reference.dequant_scale, None, [1, 1, 1],
                                   [0, 0, 0], 0, 1.0, 0, 1, float("inf"), 0)
    with pytest.raises(ValueError, match="must have 8 entries"):
        quantized_depthwise_conv3d(q, depthwise, reference.bias_int32, reference.dequant_scale, None, [1, 1, 1],
                                   [0, 0, 0], 0, 1.0, 0, 1, 1.0, 0, scales[:4], zero_points[:4])


def test_fake_implementations_take_per_channel_arguments():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q = torch.empty(2, 8, 3, 5, 5, dtype=torch.int8)
        packed, sums = torch.empty(1, 1, 1, 2, 6, 4, dtype=torch.int8), torch.empty(6, dtype=torch.int32)
        scales, zero_points = torch.empty(6), torch.empty(6, dtype=torch.int32)
        out = quantized_conv3d(q, packed, sums, torch.empty(6, dtype=torch.int32), torch.empty(6), None, [1, 1, 1],
                               [0, 0, 0], 0, 1.0, 0, 1, 1.0, 0, scales, zero_points)
        assert out.dtype == torch.int8 and tuple(out.shape) == (2, 6, 3, 5, 5)


# ---------------------------------------------------------------- native programs and model files


def test_program_runs_the_per_channel_conv_and_its_model_file_keeps_it(x3d_xs, tmp_path):
    generator = torch.Generator().manual_seed(1)
    calibration = [torch.randn(2, 3, 4, 32, 32, generator=generator) for _ in range(2)]
    int8_model = quantize_model(x3d_xs, calibration)
    compiled = compile_native(int8_model)
    programs = [m for m in compiled.modules() if hasattr(m, "program")]
    assert len(programs) == 1
    described = programs[0].program.describe()
    conv_lines = [line for line in described.splitlines() if "quantized_conv" in line]
    per_channel = sum(isinstance(m, QuantizedConv3d) and isinstance(m.output_qparams, ChannelQParams)
                      for m in int8_model.modules())
    assert per_channel >= 1 and sum("per-channel output" in line for line in conv_lines) == per_channel
    clips = torch.randn(3, 3, 4, 32, 32, generator=generator)
    with torch.no_grad():
        torch_logits, native_logits = int8_model(clips), compiled(clips)
    assert relative_error(native_logits, torch_logits) < 0.01
    path = tmp_path / "x3d_int8.pvp"
    programs[0].save(str(path))
    loaded = load_program(str(path))
    assert loaded.program.describe() == described
    with torch.no_grad():
        direct = programs[0](clips)
        again = loaded(clips)
    assert all(torch.equal(a, b) for a, b in zip(direct, again))
    data = path.read_bytes()
    assert int.from_bytes(data[8:12], "little") >= 9  # format version 9 on: per-channel conv outputs
    older = tmp_path / "x3d_int8_v8.pvp"  # version 8's layout: the same, without version 10's trailing checksum
    older.write_bytes(data[:8] + (8).to_bytes(4, "little") + data[12:-4])
    with pytest.raises(ValueError, match="before format version 9"):
        load_program(str(older))


def test_program_builder_takes_per_channel_conv_qparams_and_refuses_bad_ones():
    conv = _conv(8, 6)
    reference, q, _ = _reference_pair(conv, QParams(0.05, 0), (1, 8, 2, 3, 3))
    packed, sums = pack_quantized_weight(reference.weight_int8)
    program = native().Program()
    x = program.set_input(8)
    qx = program.quantize(x, 0.05, 0)
    common = dict(depthwise=False, kernel=[1, 1, 1], stride=[1, 1, 1], padding=[0, 0, 0], out_channels=6,
                  weight=packed, weight_sum=sums, bias=reference.bias_int32, dequant_scale=reference.dequant_scale,
                  input_scale=0.05, input_zero_point=0, residual=-1, residual_scale=1.0, residual_zero_point=0,
                  activation=1)
    with pytest.raises(TypeError, match="a float and an int .* or a float32 and an int32 tensor"):
        program.quantized_conv(qx, **common, output_scale=reference.output_scale, output_zero_point=3)
    with pytest.raises(ValueError, match="per-channel output scales has 5 values, expected 6"):
        program.quantized_conv(qx, **common, output_scale=reference.output_scale[:5],
                               output_zero_point=reference.output_zero_point[:5])
    value = program.quantized_conv(qx, **common, output_scale=reference.output_scale,
                                   output_zero_point=reference.output_zero_point)
    # A residual's qparams are checked like every other tensor's (an infinite scale used to pass).
    residual_args = dict(common, residual=value)
    for bad in (float("inf"), 0.0, float("nan")):
        with pytest.raises(ValueError, match="program: residual quantization needs a positive finite scale"):
            program.quantized_conv(qx, **dict(residual_args, residual_scale=bad), output_scale=0.1,
                                   output_zero_point=0)
    with pytest.raises(ValueError, match=r"program: residual quantization .*zero point 300\)"):
        program.quantized_conv(qx, **dict(residual_args, residual_zero_point=300), output_scale=0.1,
                               output_zero_point=0)
    program.set_outputs([value], ["ncthw"])
    from pyvideo.accelerator.native.program import NativeProgram

    x_float = torch.randn(1, 8, 2, 3, 3, generator=torch.Generator().manual_seed(1)) * 2
    (got,) = NativeProgram(program)(x_float)
    expected = reference(quantize(x_float, QParams(0.05, 0)))
    assert int((got.int() - expected.int()).abs().max()) <= 1
