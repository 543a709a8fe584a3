"""compile_native: deploy-form and int8 models as one native program, against the per-layer native lowering."""
import copy
import zlib

import pytest
import torch
import torch.nn as nn

from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import (
    NativeConv3d,
    NativeProgram,
    compile_native,
    load_program,
    lower_quantized_to_native,
    lower_to_native,
)
from pyvideo.accelerator.native.conv import NativeLinear
from pyvideo.accelerator.quantization import FloatLinear, QuantizedLinear, quantize_model
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

from ._util import make_plain_model, randomize_batchnorm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _relative(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def efficient_x3d():
    torch.manual_seed(0)
    model = create_x3d(expansion="XS", num_classes=7).eval()
    example = torch.randn(1, 3, 4, 48, 48)
    deploy = convert_to_deployable_form(model, example)
    calibration = [torch.randn(2, 3, 4, 48, 48) for _ in range(2)]
    # quantize_model's default (the classifier in float) and the all-int8 model
    return deploy, quantize_model(deploy, calibration), quantize_model(deploy, calibration, float_classifier=False)


@pytest.mark.parametrize("shape", [(1, 3, 4, 48, 48), (2, 3, 3, 37, 29)])
def test_fp32_program_equals_the_per_layer_lowering(efficient_x3d, shape):
    deploy, _, _ = efficient_x3d
    compiled = compile_native(deploy)
    programs = [m for m in compiled.modules() if isinstance(m, NativeProgram)]
    assert len(programs) == 1 and programs[0].program.num_steps >= 100  # every conv, SE, pool and the classifier
    assert programs[0].layouts == ["vector"]  # the head's permute/Linear/mean run natively too: logits come out
    assert not any(isinstance(m, (FusedConv3d, nn.Linear)) for m in compiled.modules())
    x = torch.randn(shape)
    with torch.no_grad():
        assert _relative(compiled(x), lower_to_native(deploy)(x)) < 1e-5
        assert _relative(compiled(x), deploy(x)) < 1e-4


@pytest.mark.parametrize("shape", [(1, 3, 4, 48, 48), (2, 3, 3, 37, 29)])
@pytest.mark.parametrize("all_int8", [False, True])
def test_int8_program_equals_the_per_layer_int8_lowering_exactly(efficient_x3d, shape, all_int8):
    int8 = efficient_x3d[2 if all_int8 else 1]
    compiled = compile_native(int8)
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.equal(compiled(x), lower_quantized_to_native(int8)(x))


@pytest.mark.parametrize("shape", [(1, 3, 4, 48, 48), (2, 3, 3, 37, 29)])
def test_int8_program_with_a_float_classifier(efficient_x3d, shape):
    """quantize_model's default keeps the classifier in float: the layer before it returns float32, the program
    runs the classifier as an fp32 step (and the per-layer lowering on the same kernel: NativeLinear, the same bits,
    see above), the torch int8 model with F.linear."""
    _, int8, all_int8 = efficient_x3d
    assert isinstance(int8.get_submodule("projection_model"), FloatLinear)
    assert isinstance(all_int8.get_submodule("projection_model_int8"), QuantizedLinear)
    compiled = compile_native(int8)
    program = next(m for m in compiled.modules() if isinstance(m, NativeProgram))
    steps = program.extra_repr().splitlines()
    assert "float output" in steps[-3] and steps[-2].strip().startswith("v") and "= conv(" in steps[-2]
    assert not any(isinstance(m, nn.Linear) for m in compiled.modules())  # the classifier ran natively too
    assert isinstance(lower_quantized_to_native(int8).get_submodule("projection_model"), NativeLinear)
    x = torch.randn(shape)
    with torch.no_grad():
        logits = compiled(x)
        assert _relative(logits, int8(x)) < 1e-2  # the torch reference: the native int8 layers' 1-LSB differences
        assert not torch.equal(logits, compile_native(all_int8)(x))  # the classifier's int8 weight rounding is gone


def test_transmuted_plain_model_fp32_and_int8():
    torch.manual_seed(0)
    model = randomize_batchnorm(make_plain_model(num_classes=6), torch.Generator().manual_seed(0)).eval()
    transmuted = copy.deepcopy(model)
    transmute_model(transmuted)
    deploy = convert_to_deployable_form(transmuted, torch.randn(1, 3, 4, 16, 16))
    int8 = quantize_model(deploy, torch.randn(4, 3, 4, 16, 16))
    x = torch.randn(3, 3, 5, 13, 11)
    with torch.no_grad():
        assert _relative(compile_native(deploy)(x), model(x)) < 1e-4
        assert torch.equal(compile_native(int8)(x), lower_quantized_to_native(int8)(x))


def test_thread_count_does_not_change_results(efficient_x3d):
    _, int8, _ = efficient_x3d
    deploy = efficient_x3d[0]
    compiled, compiled_int8 = compile_native(deploy), compile_native(int8)
    x = torch.randn(1, 3, 4, 40, 40)
    results = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                results.append((compiled(x), compiled_int8(x)))
    finally:
        torch.set_num_threads(previous)
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-6, atol=1e-7)
    assert torch.equal(results[0][1], results[1][1])


def test_int8_program_on_threads_equals_the_per_layer_lowering_on_a_batch(efficient_x3d):
    # With 2 and 3 threads the int8 Linear step's (row, output) items split into chunks that start and end inside
    # rows (3 clips x 7 classes); the per-layer lowering's Linear is torch's exact integer path, independent of it.
    _, int8, _ = efficient_x3d
    compiled, per_layer = compile_native(int8), lower_quantized_to_native(int8)
    x = torch.randn(3, 3, 4, 40, 40)
    previous = torch.get_num_threads()
    try:
        for threads in (2, 3):
            torch.set_num_threads(threads)
            with torch.no_grad():
                assert torch.equal(compiled(x), per_layer(x)), threads
    finally:
        torch.set_num_threads(previous)


def test_every_input_memory_layout_gives_the_same_bits(efficient_x3d):
    # Contiguous [N, C, T, H, W] input goes to the runtime as is (it copies it to channels-last, or an int8 program
    # quantizes it straight into channels-last int8, with static or dynamic qparams), channels_last_3d memory is read
    # in place, any other strides are made contiguous first: the same results whichever.
    deploy, int8, _ = efficient_x3d
    dynamic = quantize_model(deploy, [torch.randn(2, 3, 4, 48, 48) * s for s in (1, 10, 0.1)], dynamic_ranges=0)
    assert "dynamic_quantize(v0)" in compile_native(dynamic).native_program.program.describe()
    big = torch.randn(2, 3, 8, 40, 44)
    views = {
        "contiguous": big[:, :, ::2].contiguous(),
        "channels_last_3d": big[:, :, ::2].contiguous(memory_format=torch.channels_last_3d),
        "strided": big[:, :, ::2],
    }
    assert not views["strided"].is_contiguous() and views["channels_last_3d"].permute(0, 2, 3, 4, 1).is_contiguous()
    for model in (compile_native(deploy), compile_native(int8), compile_native(dynamic)):
        with torch.no_grad():
            results = {name: model(x) for name, x in views.items()}
        for name, result in results.items():
            assert torch.equal(result, results["contiguous"]), name
    program = compile_native(deploy).native_program.program
    with pytest.raises(ValueError, match="layout must be"):
        program.run(torch.utils.dlpack.to_dlpack(views["contiguous"]), 1, "nchwt")


def test_the_source_model_is_not_modified(efficient_x3d):
    deploy, _, _ = efficient_x3d
    before = {k: v.clone() for k, v in deploy.state_dict().items()}
    compile_native(deploy)
    after = deploy.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_errors_are_clear(efficient_x3d):
    deploy, _, _ = efficient_x3d
    compiled = compile_native(deploy)
    with pytest.raises(TypeError, match="nn.Module"):
        compile_native("model")
    with pytest.raises(ValueError, match="does not start with a layer that runs natively"):
        compile_native(nn.Sequential(nn.Conv3d(3, 4, 3, dilation=2)))

    class ListInput(nn.Module):  # like SlowFast: one clip per pathway, checked with isinstance (a Proxy is no list)
        def __init__(self):
            super().__init__()
            self.conv = FusedConv3d(torch.randn(4, 3, 1, 1, 1), torch.randn(4))

        def forward(self, clips):
            if not isinstance(clips, list):
                raise TypeError("expects a list of clips")
            return self.conv(clips[0])

    with pytest.raises(RuntimeError, match="torch.fx-traceable.*TypeError: expects a list.*lower_to_native"):
        compile_native(ListInput())
    model, clips = ListInput(), [torch.randn(1, 3, 2, 5, 5)]  # its convs still run natively, one op each
    with torch.no_grad():
        expected = model(clips)
        per_layer = lower_to_native(model)
        assert isinstance(per_layer.conv, NativeConv3d)
        torch.testing.assert_close(per_layer(clips), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="5-D"):
        compiled(torch.randn(3, 4, 48, 48))
    with pytest.raises(TypeError, match="float32"):
        compiled(torch.randn(1, 3, 4, 48, 48, dtype=torch.float64))
    with pytest.raises(ValueError, match="has 4 channels, expected 3"):
        compiled(torch.randn(1, 4, 4, 48, 48))
    small = compile_native(convert_to_deployable_form(nn.Sequential(nn.Conv3d(3, 4, (1, 5, 5))).eval(),
                                                      torch.randn(1, 3, 2, 8, 8)))
    with pytest.raises(ValueError, match="larger than its padded input"):
        small(torch.randn(1, 3, 2, 3, 8))



def test_non_finite_inputs(efficient_x3d):
    """A NaN or inf in a clip: fp32 programs and the per-layer lowering give NaN logits where the deploy model (torch)
    does (ReLU keeps a NaN, as torch.relu does; it once turned it into 0 and gave finite logits); int8 programs, the
    int8 reference model and its per-layer lowering refuse it with a ValueError (no int8 code stands for a NaN; a
    static quantize step saturated it to -128). The other clips of a batch are unaffected in fp32."""
    deploy, int8, _ = efficient_x3d
    fp32_program, lowered = compile_native(deploy), lower_to_native(deploy)
    int8_program, int8_lowered = compile_native(int8), lower_quantized_to_native(int8)
    x = torch.randn(2, 3, 4, 48, 48)
    for value in (float("nan"), float("inf"), -float("inf")):
        bad = x.clone()
        bad[0, 1, 2, 20, 30] = value
        with torch.no_grad():
            want = deploy(bad)
            assert torch.isnan(want[0]).all() and torch.isfinite(want[1]).all()
            for model in (fp32_program, lowered):
                got = model(bad)
                assert torch.equal(torch.isnan(got), torch.isnan(want))
                assert _relative(got[1:], want[1:]) < 1e-4
            for model in (int8_program, int8_lowered, int8):
                with pytest.raises(ValueError, match="non-finite"):
                    model(bad)
    with torch.no_grad():  # every value NaN
        assert torch.isnan(fp32_program(torch.full_like(x, float("nan")))).all()


def test_an_empty_batch_gives_empty_outputs(efficient_x3d):
    """A batch of 0 clips runs as the torch model would: outputs with batch 0 and the shapes of a real batch, from
    programs and from the per-layer native ops (convs, depthwise convs, squeeze-excitations, pools, fp32 and int8;
    an empty tensor's strides and null data once made them fail)."""
    for model in efficient_x3d[:2]:
        program = compile_native(model).native_program
        with torch.no_grad():
            empty, one = program(torch.randn(0, 3, 4, 48, 48)), program(torch.randn(1, 3, 4, 48, 48))
        assert [tuple(e.shape) for e in empty] == [(0, *o.shape[1:]) for o in one]
        assert all(e.dtype == o.dtype for e, o in zip(empty, one))
    deploy, int8, _ = efficient_x3d
    # X3D's head reshapes to [N, -1], which torch refuses for N = 0: the stages before it
    stages = lambda model: nn.Sequential(*[getattr(model, f"s{i}") for i in range(1, 6)])
    plain = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 8, 3, padding=1, groups=8),
                          nn.MaxPool3d(2), nn.AvgPool3d(2)).eval()
    plain_deploy = convert_to_deployable_form(plain, torch.randn(1, 3, 4, 16, 16))
    plain_int8 = quantize_model(plain_deploy, [torch.randn(1, 3, 4, 16, 16)])
    cases = [(stages(deploy), stages(lower_to_native(deploy)), (3, 4, 48, 48)),
             (plain_deploy, lower_to_native(plain_deploy), (3, 4, 16, 16)),
             (plain_int8, lower_quantized_to_native(plain_int8), (3, 4, 16, 16)),
             (plain_int8, compile_native(plain_int8), (3, 4, 16, 16))]
    for reference, native_model, clip in cases:
        with torch.no_grad():
            want, got = reference(torch.randn(0, *clip)), native_model(torch.randn(0, *clip))
        assert got.shape == want.shape and got.shape[0] == 0 and got.dtype == want.dtype
    # the int8 X3D (a traced graph) runs its int8 layers, SEs included, up to its head, which has no empty form: an
    # exception (torch's reshape error; the per-layer classifier's shape check), not a crash
    for model in (int8, lower_quantized_to_native(int8)):
        with pytest.raises((RuntimeError, ValueError), match="reshape tensor of 0 elements|larger than padded input"):
            with torch.no_grad():
                model(torch.randn(0, 3, 4, 48, 48))

def test_model_files_round_trip(efficient_x3d, tmp_path):
    deploy, int8, _ = efficient_x3d
    x = torch.randn(2, 3, 3, 37, 29)
    for model in (deploy, int8):
        program = compile_native(model).native_program
        path = tmp_path / "model.pvp"
        program.save(path)
        loaded = load_program(path)
        assert loaded.layouts == program.layouts and loaded.program.num_steps == program.program.num_steps
        with torch.no_grad():
            assert torch.equal(loaded(x)[0], program(x)[0])


def _sealed(data: bytes) -> bytes:
    """A model file's bytes with the trailing CRC-32 (format version 10 on) set to match the rest: a patched file
    that reaches the loader's field checks instead of failing its checksum."""
    return data[:-4] + zlib.crc32(data[:-4]).to_bytes(4, "little")


def test_malformed_model_files_are_clear_errors(efficient_x3d, tmp_path):
    program = compile_native(efficient_x3d[0]).native_program
    path = tmp_path / "model.pvp"
    program.save(path)
    data = path.read_bytes()
    assert int.from_bytes(data[8:12], "little") >= 10 and int.from_bytes(data[-4:], "little") == zlib.crc32(data[:-4])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1  # one bit of a weight: no field check could see it, the checksum does
    cases = {
        "missing.pvp": None,
        "empty.pvp": b"",
        "foreign.pvp": b"GIF89a" + data[6:],
        "truncated.pvp": data[: len(data) // 2],
        "version.pvp": data[:8] + (99).to_bytes(4, "little") + data[12:],
        "trailing.pvp": data + b"x",
        "flipped.pvp": bytes(flipped),
        "trailing_sealed.pvp": _sealed(data[:-4] + b"x" + data[-4:]),
        # the first step's kind, after the magic, version, input count, input channels and step count
        "kind.pvp": _sealed(data[:28] + (77).to_bytes(4, "little") + data[32:]),
    }
    messages = {"missing.pvp": "cannot open", "empty.pvp": "truncated", "foreign.pvp": "bad magic",
                "truncated.pvp": "truncated or corrupt", "version.pvp": "version 99", "trailing.pvp": "checksum mismatch",
                "flipped.pvp": "checksum mismatch", "trailing_sealed.pvp": "unexpected data",
                "kind.pvp": "unknown step kind 77"}
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=messages[name]):
            load_program(tmp_path / name)
    (tmp_path / "a_directory.pvp").mkdir()  # opens, then fails to read (std::ios_base::failure leaked before)
    with pytest.raises(ValueError, match="cannot read program file"):
        load_program(tmp_path / "a_directory.pvp")
    corrupt = bytearray(data)
    corrupt[85:93] = (2**40).to_bytes(8, "little")  # the first step's temporal padding
    (tmp_path / "corrupt.pvp").write_bytes(_sealed(bytes(corrupt)))
    with pytest.raises(ValueError, match="program file .*padding"):
        load_program(tmp_path / "corrupt.pvp")


def _step_kinds(compiled) -> list:
    return [line.split(" = ")[1].split("(")[0] for line in compiled.native_program.program.describe().splitlines()]


def _check_fused_squeeze_excitation(deploy, shapes, tmp_path):
    """compile_native fuses every fp32 SE (gate step + gated pointwise conv, row sums from the depthwise conv) and
    equals the per-layer lowering, the unfused program and the deploy model, per sample, and after a file round trip."""
    fused, unfused = compile_native(deploy), compile_native(deploy, fuse_squeeze_excitation=False)
    kinds, plain_kinds = _step_kinds(fused), _step_kinds(unfused)
    se_count = plain_kinds.count("squeeze_excitation")
    assert se_count > 0 and "squeeze_excitation_gate" not in plain_kinds
    assert kinds.count("squeeze_excitation_gate") == se_count and "squeeze_excitation" not in kinds
    description = fused.native_program.program.describe()
    assert description.count("row sums") == se_count and description.count("gate=v") == se_count
    lowered = lower_to_native(deploy)
    path = tmp_path / "fused.pvp"
    fused.native_program.save(path)
    loaded = load_program(path)
    for shape in shapes:
        x = torch.randn(shape)  # different clips in one batch: each sample has its own gates
        with torch.no_grad():
            got = fused(x)
            assert _relative(got, lowered(x)) < 1e-5
            assert _relative(got, unfused(x)) < 1e-5
            assert _relative(got, deploy(x)) < 1e-4
            for i in range(shape[0]):
                assert _relative(got[i:i + 1], fused(x[i:i + 1])) < 1e-5
            program_out = fused.native_program(x)[0]
            assert torch.equal(loaded(x)[0], program_out)


def test_fused_squeeze_excitation_efficient_x3d(efficient_x3d, tmp_path):
    _check_fused_squeeze_excitation(efficient_x3d[0], [(2, 3, 4, 48, 48), (2, 3, 3, 37, 29)], tmp_path)


def test_fused_squeeze_excitation_transmuted_x3d_xs(tmp_path):
    from pyvideo.models import hub

    torch.manual_seed(3)
    model = randomize_batchnorm(hub.x3d_xs(), torch.Generator().manual_seed(4)).eval()
    transmute_model(model)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 160, 160))
    # The head's fixed 4x5x5 pool needs >= 160 pixels; 5x161x163 gives it a 2x2x2 output (pooled natively too).
    _check_fused_squeeze_excitation(deploy, [(2, 3, 4, 160, 160), (2, 3, 5, 161, 163)], tmp_path)


def test_squeeze_excitation_with_other_readers_stays_separate():
    """An SE whose output also feeds a residual is not fused (its output must exist)."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = FusedConv3d(torch.randn(6, 1, 3, 3, 3), torch.randn(6), padding=1, groups=6)
            self.se = FusedSqueezeExcitation(nn.Linear(6, 3), nn.Linear(3, 6), "relu", "swish")
            self.pw = FusedConv3d(torch.randn(6, 6, 1, 1, 1), torch.randn(6), adds_residual=True)

        def forward(self, x):
            y = self.se(self.dw(x))
            return self.pw(y, y)

    model = Block().eval()
    compiled = compile_native(model)
    assert "squeeze_excitation" in _step_kinds(compiled) and "squeeze_excitation_gate" not in _step_kinds(compiled)
    x = torch.randn(2, 6, 3, 5, 7)
    with torch.no_grad():
        assert _relative(compiled(x), model(x)) < 1e-5


def _with_per_channel_se_outputs(int8, calibration):
    """``int8`` with every QuantizedSqueezeExcitation's output quantized per channel, each channel's qparams from the
    range of its float output on ``calibration`` (``channel_activation_qparams``)."""
    from pyvideo.accelerator.deployable.graph import replace_submodule
    from pyvideo.accelerator.quantization.int8_modules import QuantizedSqueezeExcitation
    from pyvideo.accelerator.quantization.qparams import channel_activation_qparams, dequantize

    model = copy.deepcopy(int8)
    ranges, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, QuantizedSqueezeExcitation):
            def record(module, inputs, output, name=name):
                y = module.se(dequantize(inputs[0], module.input_qparams))
                ranges[name] = (y.amin((0, 2, 3, 4)), y.amax((0, 2, 3, 4)))
            hooks.append(module.register_forward_hook(record))
    with torch.no_grad():
        model(calibration)
    for hook in hooks:
        hook.remove()
    for name, (lo, hi) in ranges.items():
        module = model.get_submodule(name)
        replace_submodule(model, name, QuantizedSqueezeExcitation(module.se, module.input_qparams,
                                                                  channel_activation_qparams(lo, hi)))
    return model, len(ranges)


def test_int8_program_with_per_channel_se_outputs(efficient_x3d, tmp_path):
    """EfficientX3d-XS with per-channel SE outputs: the program (and its model file) equals the per-layer lowering bit
    for bit."""
    model, count = _with_per_channel_se_outputs(efficient_x3d[1], torch.randn(2, 3, 4, 48, 48))
    assert count > 0
    compiled = compile_native(model)
    description = compiled.native_program.program.describe()
    from pyvideo.accelerator.quantization.int8_modules import QuantizedConv3d
    from pyvideo.accelerator.quantization.qparams import ChannelQParams

    convs = sum(isinstance(m, QuantizedConv3d) and isinstance(m.output_qparams, ChannelQParams) for m in model.modules())
    assert convs >= 1  # quantize_model's per-channel conv outputs (the last block's) are kept too
    assert description.count("per-channel output") == count + convs
    path = tmp_path / "per_channel.pvp"
    compiled.native_program.save(path)
    loaded = load_program(path)
    x = torch.randn(2, 3, 3, 37, 29)
    with torch.no_grad():
        got = compiled(x)
        assert torch.equal(got, lower_quantized_to_native(model)(x))
        assert torch.equal(loaded(x)[0], compiled.native_program(x)[0])
        assert not torch.equal(got, compile_native(efficient_x3d[1])(x))  # the per-channel qparams are used


def test_program_per_channel_se_equals_the_reference_module():
    """quantize -> per-channel int8 SE as a program: its int8 output equals QuantizedSqueezeExcitation within 1 LSB."""
    from pyvideo.accelerator.quantization.int8_modules import QuantizedSqueezeExcitation, QuantizeTensor
    from pyvideo.accelerator.quantization.qparams import QParams, channel_activation_qparams, dequantize

    torch.manual_seed(5)
    se = FusedSqueezeExcitation(nn.Linear(27, 6), nn.Linear(6, 27), "relu", "swish").eval()
    input_qparams = QParams(0.04, -5)
    x = torch.randn(2, 27, 3, 9, 11) * 2
    with torch.no_grad():
        y = se(dequantize(QuantizeTensor(input_qparams)(x), input_qparams))
    reference = QuantizedSqueezeExcitation(se, input_qparams,
                                           channel_activation_qparams(y.amin((0, 2, 3, 4)), y.amax((0, 2, 3, 4))))
    model = nn.Sequential(QuantizeTensor(input_qparams), reference).eval()
    compiled = compile_native(model)
    assert "per-channel output" in compiled.native_program.program.describe()
    with torch.no_grad():
        got, expected = compiled(x), model(x)
    diff = (got.int() - expected.int()).abs()
    assert got.dtype == torch.int8 and got.shape == expected.shape
    assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01


def test_program_per_channel_se_builder_errors():
    from pyvideo._native import native

    p = native().Program()
    q = p.quantize(p.set_input(6), 0.1, 0)
    w0, w1 = torch.randn(2, 6), torch.randn(6, 2)
    scales, zero_points = torch.full((6,), 0.05), torch.zeros(6, dtype=torch.int32)

    def step(scale, zero_point):
        return p.quantized_squeeze_excitation(q, w0, None, w1, None, 1, 2, 0.1, 0, scale, zero_point)

    assert step(scales, zero_points) == 2 and step(0.05, 3) == 3
    with pytest.raises(ValueError, match="per-channel output scales has 5 values, expected 6"):
        step(scales[:5], zero_points)
    with pytest.raises(ValueError, match="channel 1 output quantization needs a positive finite scale"):
        step(torch.tensor([0.1, -1.0, 0.1, 0.1, 0.1, 0.1]), zero_points)
    with pytest.raises(ValueError, match=r"channel 4 output quantization .*\[-128, 127\]"):
        step(scales, torch.tensor([0, 0, 0, 0, 300, 0], dtype=torch.int32))
    with pytest.raises(ValueError, match="int32"):
        step(scales, zero_points.long())
    with pytest.raises(TypeError, match="a float and an int .* or a float32 and an int32 tensor"):
        step(scales, 3)


class _Flip(nn.Module):
    """An op the programs do not have: the program stops before it and the layers after it run in torch."""

    def forward(self, x):
        return torch.flip(x, dims=[-1])


def test_an_int8_squeeze_excitation_left_to_torch_runs_natively():
    """The layers after a program run as the per-layer lowering runs them. An int8 squeeze-excitation among them was
    replaced by its native op, and then the float SE inside it by the fp32 op (the walk visited every named module,
    the replaced ones' included), so the compiled model raised AttributeError (found by the random-model sweep)."""
    from pyvideo.accelerator.native.quantized import NativeQuantizedSqueezeExcitation
    from pyvideo.models.accelerator.mobile_cpu.residual_blocks import X3dBottleneckBlock

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 8, 1), nn.BatchNorm3d(8), nn.ReLU(), _Flip(),
                          X3dBottleneckBlock(8, 16, 8, se_ratio=0.25)).eval()
    randomize_batchnorm(model, torch.Generator().manual_seed(1))
    x = torch.randn(2, 3, 3, 9, 11)
    with torch.no_grad():
        transmute_model(model)
        deploy = convert_to_deployable_form(model, x)
        int8 = quantize_model(deploy, [torch.randn(2, 3, 3, 9, 11) for _ in range(2)], dynamic_ranges=False)
        compiled = compile_native(int8)
        assert any(isinstance(m, NativeQuantizedSqueezeExcitation) for m in compiled.modules())
        assert torch.equal(compiled(x), lower_quantized_to_native(int8)(x))
        fp32 = compile_native(deploy)
        assert _relative(fp32(x), deploy(x)) < 1e-5
