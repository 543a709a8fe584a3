"""Fixed-kernel average pools (the heads of vanilla X3D and ResNet): the int8 module, the quantizer's choice, and
native programs that run through them, so a transmuted vanilla X3D compiles into one program from input to logits."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo._native import native
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import NativeProgram, compile_native, load_program, lower_quantized_to_native
from pyvideo.accelerator.quantization import QParams, QuantizedAvgPool3d, quantize_model
from pyvideo.accelerator.quantization.qparams import dequantize, quantize
from pyvideo.models.x3d import create_x3d

from ._util import PooledHead, randomize_batchnorm, relative_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_int8(*shape, generator):
    return torch.randint(-128, 128, shape, generator=generator, dtype=torch.int16).to(torch.int8)


@pytest.mark.parametrize("kernel,stride", [((2, 3, 3), (1, 2, 1)), ((4, 5, 5), (1, 1, 1)), (3, None)])
def test_quantized_avg_pool_is_the_dequantized_pool(kernel, stride):
    g = torch.Generator().manual_seed(1)
    q = _random_int8(2, 5, 6, 9, 8, generator=g)
    pool = nn.AvgPool3d(kernel, stride=stride)
    in_qp, out_qp = QParams(0.04, -9), QParams(0.013, 4)
    reference = pool(dequantize(q, in_qp).double()).float()  # the real-valued pool of the dequantized input
    as_float = QuantizedAvgPool3d(pool, in_qp, None)(q)
    assert as_float.dtype == torch.float32 and as_float.shape == reference.shape
    assert relative_error(as_float, reference) < 1e-6
    as_int8 = QuantizedAvgPool3d(pool, in_qp, out_qp)(q)
    assert as_int8.dtype == torch.int8
    assert torch.equal(as_int8, quantize(as_float, out_qp))
    # within one step of the exact value's quantization (a float32 mean next to a rounding tie may round apart)
    assert (as_int8.int() - quantize(reference, out_qp).int()).abs().max() <= 1


def test_quantized_avg_pool_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="without padding"):
        QuantizedAvgPool3d(nn.AvgPool3d(3, padding=1), QParams(0.1, 0), None)
    with pytest.raises(ValueError, match="without padding"):
        QuantizedAvgPool3d(nn.AvgPool3d(3, ceil_mode=True), QParams(0.1, 0), None)
    pool = QuantizedAvgPool3d(nn.AvgPool3d(2), QParams(0.1, 0), None)
    with pytest.raises(TypeError, match="int8"):
        pool(torch.zeros(1, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="5-D"):
        pool(torch.zeros(2, 2, 2, 2, dtype=torch.int8))


@pytest.mark.parametrize("pool,int8", [(nn.AvgPool3d((2, 3, 3), stride=1), True),
                                       (nn.AvgPool3d(3, padding=1), False),
                                       (nn.AvgPool3d(2, ceil_mode=True), False)])
def test_the_quantizer_takes_unpadded_pools_into_int8(pool, int8):
    torch.manual_seed(0)
    model = PooledHead(pool).eval()
    transmute_model(model)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 8, 8))
    quantized = quantize_model(deploy, [torch.randn(2, 3, 4, 8, 8)])
    kinds = {type(m) for m in quantized.modules()}
    assert (QuantizedAvgPool3d in kinds) == int8
    assert (nn.AvgPool3d in kinds) == (not int8)  # an unsupported pool stays a float op
    x = torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        got, want = quantized(x), deploy(x)
        assert float((got - want).norm() / want.norm()) < 0.03  # int8 tracks the float model


@pytest.fixture(scope="module")
def vanilla_x3d():
    """A small vanilla X3D (plain nn.Conv3d, a 4x2x2 AvgPool3d head for 4x64x64 clips) through the transmuter."""
    torch.manual_seed(0)
    model = create_x3d(input_clip_length=4, input_crop_size=64, model_num_class=10, depth_factor=1.0,
                       width_factor=1.0, head_dim_out=64)
    model = randomize_batchnorm(model, torch.Generator().manual_seed(1)).eval()
    transmuted = copy.deepcopy(model)
    transmute_model(transmuted)
    deploy = convert_to_deployable_form(transmuted, torch.randn(1, 3, 4, 64, 64)).eval()
    int8 = quantize_model(deploy, [torch.randn(2, 3, 4, 64, 64) for _ in range(2)])
    return model, deploy, int8


def _only_the_program_runs(compiled) -> bool:
    modules = [n for n in compiled.graph.nodes if n.op == "call_module"]
    return len(modules) == 1 and isinstance(compiled.get_submodule(modules[0].target), NativeProgram)


# 4x64x64: the head pool covers the whole map; 2x3x5x96x128: 2x2x3 pooled positions, averaged by the output pool
SHAPES = [(1, 3, 4, 64, 64), (2, 3, 5, 96, 128)]


@pytest.mark.parametrize("shape", SHAPES)
def test_vanilla_x3d_runs_as_one_fp32_program(vanilla_x3d, shape):
    model, deploy, _ = vanilla_x3d
    assert any(type(m) is nn.AvgPool3d for m in deploy.modules())
    compiled = compile_native(deploy)
    assert _only_the_program_runs(compiled)  # pools, head convs, the Linear and the output pool included
    x = torch.randn(shape)
    with torch.no_grad():
        got = compiled(x)
        assert got.shape == (shape[0], 10)
        assert relative_error(got, model(x)) < 1e-4


@pytest.mark.parametrize("shape", SHAPES)
def test_vanilla_x3d_runs_as_one_int8_program_exactly(vanilla_x3d, shape):
    _, _, int8 = vanilla_x3d
    assert any(isinstance(m, QuantizedAvgPool3d) for m in int8.modules())
    compiled = compile_native(int8)
    assert _only_the_program_runs(compiled)
    x = torch.randn(shape)
    with torch.no_grad():
        got = compiled(x)
        # the same kernels layer by layer, bit for bit, up to the head's output pool: after the float classifier it
        # averages the logits in float, natively in the program and with torch's AdaptiveAvgPool3d layer by layer
        per_layer = lower_quantized_to_native(int8)(x)
        assert float((got - per_layer).norm() / per_layer.norm()) < 1e-6
        reference = int8(x)  # the torch int8 reference: native kernels may differ by 1 LSB next to rounding ties
        assert float((got - reference).norm() / reference.norm()) < 0.02


def test_model_files_keep_the_pools(vanilla_x3d, tmp_path):
    _, deploy, int8 = vanilla_x3d
    x = torch.randn(*SHAPES[1])
    for model in (deploy, int8):
        program = compile_native(model).native_program
        assert "avg_pool" in program.program.describe()
        program.save(tmp_path / "x3d.pvp")
        loaded = load_program(tmp_path / "x3d.pvp")
        with torch.no_grad():
            for a, b in zip(program(x), loaded(x)):
                assert torch.equal(a, b)


def test_program_pool_steps_against_torch():
    """The steps through the Program API: fp32 against F.avg_pool3d, int8 against QuantizedAvgPool3d."""
    kernel, stride = [2, 3, 2], [1, 2, 3]
    p = native().Program()
    x = p.set_input(6)
    pooled = p.avg_pool(x, kernel=kernel, stride=stride)
    q = p.quantize(x, 0.05, 2)
    q_pooled = p.quantized_avg_pool(q, kernel=kernel, stride=stride, input_scale=0.05, input_zero_point=2,
                                    output_scale=0.02, output_zero_point=-3)
    p.set_outputs([pooled, q_pooled], ["ncthw", "ncthw"])
    program = NativeProgram(p)
    x = torch.randn(2, 6, 5, 9, 13)
    got, got_q = program(x)
    assert relative_error(got, F.avg_pool3d(x, kernel, stride)) < 1e-6
    module = QuantizedAvgPool3d(nn.AvgPool3d(kernel, stride), QParams(0.05, 2), QParams(0.02, -3))
    assert torch.equal(got_q, module(quantize(x, QParams(0.05, 2))))


def test_program_pool_errors():
    p = native().Program()
    x = p.set_input(4)
    with pytest.raises(ValueError, match="int8 input"):
        p.quantized_avg_pool(x, kernel=[1, 1, 1], stride=[1, 1, 1], input_scale=0.1, input_zero_point=0,
                             output_scale=None, output_zero_point=0)
    with pytest.raises(ValueError, match="kernel sizes and strides"):
        p.avg_pool(x, kernel=[0, 1, 1], stride=[1, 1, 1])
    pooled = p.avg_pool(x, kernel=[2, 2, 2], stride=[1, 1, 1])
    p.set_outputs([pooled], ["ncthw"])
    with pytest.raises(ValueError, match="larger than"):
        NativeProgram(p)(torch.randn(1, 4, 1, 5, 5))  # T = 1 < kernel 2: refused, not read out of bounds


def test_qat_keeps_the_pool_in_int8():
    """prepare_qat -> train -> convert_qat gives the same int8 pool module, and the program runs it natively."""
    from pyvideo.accelerator.quantization import convert_qat, prepare_qat

    torch.manual_seed(0)
    model = PooledHead(nn.AvgPool3d((2, 3, 3), stride=(1, 2, 1))).eval()
    transmute_model(model)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 9, 9))
    qat = prepare_qat(deploy)
    optimizer = torch.optim.SGD(qat.parameters(), lr=1e-3)
    for _ in range(2):
        loss = qat(torch.randn(2, 3, 4, 9, 9)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    int8 = convert_qat(qat)
    pools = [m for m in int8.modules() if isinstance(m, QuantizedAvgPool3d)]
    assert len(pools) == 1 and pools[0].kernel_size == (2, 3, 3) and pools[0].stride == (1, 2, 1)
    compiled = compile_native(int8)
    # the pool and the last conv (an int8 conv with a float output: the model's logits) run in the program
    assert _only_the_program_runs(compiled)
    assert "float output" in compiled.native_program.program.describe()
    x = torch.randn(2, 3, 5, 11, 9)
    with torch.no_grad():
        # the per-layer lowering leaves the float-output conv to the torch reference module; with an identity
        # activation its float(acc) * dequant_scale is the kernel's arithmetic exactly
        assert torch.equal(compiled(x), lower_quantized_to_native(int8)(x))
