"""Native programs with several inputs: SlowFast (one clip per pathway) compiled into one program with a concat step
for each pathway fusion and for its pooled head; the Program's add_input / concat through the binding; a model whose
graph takes two tensors as separate arguments; model files of such programs; the errors."""
import copy

import pytest
import torch
import torch.nn as nn

from pyvideo._native import native
from pyvideo.accelerator.deployable import FusedConv3d
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import NativeProgram, compile_native, load_program, lower_to_native
from pyvideo.models.slowfast import create_slowfast

from ._util import randomize_batchnorm, relative_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _clips(batch, t_slow, size, alpha=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(batch, 3, t_slow, *size, generator=g), torch.rand(batch, 3, alpha * t_slow, *size, generator=g)]


@pytest.fixture(scope="module")
def slowfast():
    """(original, deploy form) of a small SlowFast-18 with random BatchNorm statistics."""
    torch.manual_seed(0)
    model = create_slowfast(model_depth=18, stem_dim_outs=(16, 2), model_num_class=5, head_pool=nn.AdaptiveAvgPool3d)
    model = randomize_batchnorm(model, torch.Generator().manual_seed(0)).eval()
    transmuted = copy.deepcopy(model)
    transmute_model(transmuted)
    return model, convert_to_deployable_form(transmuted, _clips(1, 2, (32, 32)))


def test_slowfast_compiles_into_one_program_with_two_inputs(slowfast):
    model, deploy = slowfast
    compiled = compile_native(deploy)
    program = compiled.native_program.program
    assert program.num_inputs == 2 and program.inputs_channels == [3, 3]
    steps = program.describe()
    # four pathway fusions and the head's pooled pathways are concat steps; every conv runs in the program
    assert steps.count("concat(") == 5 and "max_pool" in steps
    assert not any(isinstance(m, FusedConv3d) for m in compiled.modules())
    per_layer = lower_to_native(deploy)
    with torch.no_grad():
        for clips in (_clips(1, 2, (32, 32)), _clips(2, 4, (40, 36), seed=1), _clips(1, 1, (24, 24), seed=2)):
            want = model(clips)
            got = compiled(clips)
            assert got.shape == want.shape
            assert relative_error(got, want) < 1e-5
            assert relative_error(got, per_layer(clips)) < 1e-5
            assert torch.equal(compiled(tuple(clips)), got)  # a tuple of clips as well


def test_slowfast_program_model_file_round_trip(slowfast, tmp_path):
    _, deploy = slowfast
    compiled = compile_native(deploy)
    path = tmp_path / "slowfast.pvp"
    compiled.native_program.save(path)
    loaded = load_program(path)
    assert loaded.program.num_inputs == 2
    clips = _clips(2, 2, (32, 28), seed=3)
    with torch.no_grad():
        want = compiled.native_program(clips)
        got = loaded(clips)
        assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want))
        assert all(torch.equal(a, b) for a, b in zip(loaded(*clips), want))  # the clips as separate arguments


def test_slowfast_program_errors(slowfast):
    _, deploy = slowfast
    compiled = compile_native(deploy)
    clips = _clips(1, 2, (32, 32))
    with pytest.raises(ValueError, match="takes 2 inputs"):
        compiled.native_program(clips[0])
    with pytest.raises(ValueError, match="takes 2 inputs"):
        compiled.native_program(clips + [clips[0]])
    # a fast clip that is not alpha times the slow one: the pathway fusion's concat names the mismatch
    with pytest.raises(ValueError, match="concat.*differ"):
        compiled.native_program([clips[0], torch.rand(1, 3, 16, 32, 32)])
    with pytest.raises(ValueError, match="channels"):
        compiled.native_program([clips[0], torch.rand(1, 4, 8, 32, 32)])


def test_program_concat_and_inputs_through_the_binding():
    p = native().Program()
    a, b = p.set_input(3), p.add_input(5)
    assert (a, b, p.num_inputs, p.inputs_channels) == (0, 1, 2, [3, 5])
    both = p.concat(a, b)
    p.set_outputs([both, p.concat(both, a)], ["ncthw", "ncthw"])
    program = NativeProgram(p)
    x, y = torch.randn(2, 3, 4, 5, 6), torch.randn(2, 5, 4, 5, 6)
    first, second = program(x, y)
    assert torch.equal(first, torch.cat([x, y], 1))
    assert torch.equal(second, torch.cat([x, y, x], 1))
    # channels-last inputs are read in place: the same results
    first_cl, _ = program(x.contiguous(memory_format=torch.channels_last_3d),
                          y.contiguous(memory_format=torch.channels_last_3d))
    assert torch.equal(first_cl, first)
    with pytest.raises(ValueError, match="before any step"):
        p.add_input(2)
    with pytest.raises(ValueError, match="float32"):
        q = native().Program()
        x_in = q.set_input(2)
        q.concat(x_in, q.quantize(x_in, 0.5, 0))
    with pytest.raises(ValueError, match="differ"):
        program(x, torch.randn(2, 5, 3, 5, 6))


@pytest.mark.parametrize("threads", [1, 3])
def test_quantized_concat_equals_quantized_cat_on_every_code(threads):
    """The quantized_concat step (a lookup table per input) against QuantizedCat's float32 arithmetic, on every int8
    code of both inputs: requantized to other qparams, copied where an input has the output's qparams, and
    dequantized to float32."""
    from pyvideo.accelerator.quantization import QuantizedCat
    from pyvideo.accelerator.quantization.qparams import QParams, quantize

    ca, cb, shape = 37, 19, (2, 3, 4, 5)
    first, second = QParams(0.0371, -7), QParams(0.25, 12)
    # "halves": twice the second input's (power-of-two) scale, so its odd centred codes fall on exact halves, which
    # round to even
    outputs = {"requantized": QParams(0.113, 3), "copied": first, "float": None, "halves": QParams(0.5, -1)}
    g = torch.Generator().manual_seed(0)
    codes = []
    for c in (ca, cb):
        code = torch.randint(-128, 128, (shape[0], c) + shape[1:], generator=g)
        code.view(-1)[:256] = torch.arange(-128, 128)  # every code occurs
        codes.append(code)
    floats = [(code - qp.zero_point).float() * qp.scale for code, qp in zip(codes, (first, second))]
    p = native().Program()
    a, b = p.set_input(ca), p.add_input(cb)
    qa, qb = p.quantize(a, first.scale, first.zero_point), p.quantize(b, second.scale, second.zero_point)
    values = [p.quantized_concat(qa, qb, first.scale, first.zero_point, second.scale, second.zero_point,
                                 None if out is None else out.scale, 0 if out is None else out.zero_point)
              for out in outputs.values()]
    p.set_outputs(values, ["ncthw"] * len(values))
    program = NativeProgram(p)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = program(*floats)
    finally:
        torch.set_num_threads(previous)
    quantized = [quantize(f, qp) for f, qp in zip(floats, (first, second))]
    assert all(torch.equal(q, code.to(torch.int8)) for q, code in zip(quantized, codes))
    for (name, out), result in zip(outputs.items(), got):
        want = QuantizedCat([first, second], out, dim=1)(*quantized)
        assert result.dtype == want.dtype and torch.equal(result, want), name
    assert torch.equal(got[1][:, :ca], quantized[0])  # the copied input


class _TwoArguments(nn.Module):
    """A deploy-form network whose forward takes two tensors (not a list): relu(conv_a(a)) and conv_b(b) joined."""

    def __init__(self, conv_a: nn.Module, conv_b: nn.Module, head: nn.Module):
        super().__init__()
        self.conv_a, self.conv_b, self.head = conv_a, conv_b, head

    def forward(self, a, b):
        return self.head(torch.cat([self.conv_a(a), self.conv_b(b)], dim=1))


def test_a_model_with_two_tensor_arguments(slowfast):
    _, deploy = slowfast
    convs = [m for m in deploy.modules() if isinstance(m, FusedConv3d)]
    # the slow stem (3 -> 16 channels, 1x7x7, stride (1, 2, 2)), the fast-to-slow fusion conv (2 -> 4 channels, 7x1x1,
    # temporal stride 4) and the first res2 conv reading their concatenation (20 -> 64 channels)
    stem_slow, fusion, head = convs[0], convs[2], convs[3]
    assert (stem_slow.out_channels + fusion.out_channels, head.in_channels) == (20, 20)
    model = _TwoArguments(stem_slow, fusion, head).eval()
    compiled = compile_native(model)
    assert compiled.native_program.program.inputs_channels == [3, 2]
    a, b = torch.rand(2, 3, 4, 20, 20), torch.rand(2, 2, 16, 10, 10)
    with torch.no_grad():
        assert relative_error(compiled(a, b), model(a, b)) < 1e-5


@pytest.mark.parametrize("output", [(0.037, -5), (0.21, 100), None])
def test_quantized_concat_step_equals_quantized_cat(output):
    """The int8 concat step against QuantizedCat's torch reference, bit for bit: random codes, input qparams of very
    different scales (one input saturates the output range), int8 or float32 output; at two shapes in one program."""
    from pyvideo.accelerator.quantization import QParams, QuantizedCat

    first, second = QParams(0.05, 3), QParams(0.9, -20)
    module = QuantizedCat([first, second], None if output is None else QParams(*output), dim=1)
    p = native().Program()
    a_in, b_in = p.set_input(6), p.add_input(17)
    a = p.quantize(a_in, first.scale, first.zero_point)
    b = p.quantize(b_in, second.scale, second.zero_point)
    cat = p.quantized_concat(a, b, first_scale=first.scale, first_zero_point=first.zero_point,
                             second_scale=second.scale, second_zero_point=second.zero_point,
                             output_scale=None if output is None else output[0],
                             output_zero_point=0 if output is None else output[1])
    p.set_outputs([a, b, cat], ["ncthw", "ncthw", "ncthw"])
    program = NativeProgram(p)
    assert ("float output" in p.describe()) == (output is None)
    g = torch.Generator().manual_seed(1)
    for shape in ((2, 3, 4, 5), (1, 1, 7, 9)):
        x, y = torch.randn(shape[0], 6, *shape[1:], generator=g) * 4, torch.randn(shape[0], 17, *shape[1:], generator=g) * 60
        qa, qb, got = program(x, y)
        want = module(qa, qb)
        assert got.dtype == want.dtype and torch.equal(got, want)
    with pytest.raises(ValueError, match="int8"):
        p2 = native().Program()
        x_in = p2.set_input(2)
        p2.quantized_concat(x_in, x_in, first_scale=0.1, first_zero_point=0, second_scale=0.1, second_zero_point=0,
                            output_scale=0.1)
    with pytest.raises(ValueError, match="quantization needs a positive finite scale"):
        p.quantized_concat(a, b, first_scale=0.0, first_zero_point=0, second_scale=0.1, second_zero_point=0,
                           output_scale=0.1)
