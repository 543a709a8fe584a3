"""Max pooling in native programs (the MaxPool3d after a ResNet stem, and I3D's stage-1 pool): the Program step
against F.max_pool3d bit for bit (padding, NaN; int8 codes too), and ResNets whose compiled program now runs past the
stem pool through the whole network, fp32 and int8 (whose pools run on int8 codes), also after a save / load round
trip."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo._native import native
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import (NativeProgram, compile_native, load_program, lower_quantized_to_native,
                                        lower_to_native)
from pyvideo.accelerator.quantization import QParams, QuantizedMaxPool, quantize_model
from pyvideo.accelerator.quantization.qparams import dequantize, quantize
from pyvideo.models.resnet import create_resnet

from ._util import PooledHead, randomize_batchnorm, relative_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _same(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Equal values (torch.equal) with NaN exactly where the other has NaN."""
    nan = want.isnan()
    return got.shape == want.shape and torch.equal(got.isnan(), nan) and \
        torch.equal(got.masked_fill(nan, 0), want.masked_fill(nan, 0))


def _single_pool_program(channels, kernel, stride, padding) -> NativeProgram:
    p = native().Program()
    x = p.set_input(channels)
    p.set_outputs([p.max_pool(x, kernel=kernel, stride=stride, padding=padding)], ["ncthw"])
    return NativeProgram(p)


# a ResNet stem's window, I3D's stage-1 pool, a padded cube, and kernels 1-3 / strides 1-2 with mixed paddings
WINDOWS = [([1, 3, 3], [1, 2, 2], [0, 1, 1]), ([2, 1, 1], [2, 1, 1], [0, 0, 0]), ([3, 3, 3], [2, 2, 2], [1, 1, 1]),
           ([2, 3, 1], [1, 1, 2], [1, 0, 0]), ([3, 2, 2], [2, 1, 1], [0, 1, 0])]


@pytest.mark.parametrize("kernel,stride,padding", WINDOWS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_program_max_pool_is_torchs_max_pool(kernel, stride, padding, channels_last):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 17, 5, 9, 11, generator=g) - 1.0  # mostly negative: padding taken as 0 would show
    x[0, 3, 2, 4, 5] = float("nan")
    x[1, 0, 0, 0, 0] = float("nan")  # at a corner, next to the padding
    x[1, 5, 4, 8, 10] = float("inf")
    x[0, 16, 1, 1, 1] = float("-inf")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    program = _single_pool_program(17, kernel, stride, padding)
    (got,) = program(x)
    want = F.max_pool3d(x.contiguous(), kernel, stride, padding)
    assert got.isnan().any()  # the NaNs reached the outputs
    assert _same(got, want)


def test_program_max_pool_nan_anywhere_in_a_window():
    """A NaN at each position of a 3x3 window (with larger values and +inf around it) gives NaN, as torch."""
    for position in range(9):
        x = torch.arange(9, dtype=torch.float32).reshape(1, 1, 1, 3, 3).repeat(1, 4, 1, 1, 1)
        x[0, 1].view(-1)[position] = float("nan")
        x[0, 2].view(-1)[position] = float("nan")
        x[0, 2].view(-1)[(position + 4) % 9] = float("inf")
        (got,) = _single_pool_program(4, [1, 3, 3], [1, 1, 1], [0, 0, 0])(x)
        want = F.max_pool3d(x, [1, 3, 3], 1)
        assert _same(got, want) and got[0, 1].isnan().all() and got[0, 2].isnan().all()
        assert got[0, 0].item() == 8 and got[0, 3].item() == 8


def test_program_max_pool_errors():
    p = native().Program()
    x = p.set_input(4)
    with pytest.raises(ValueError, match="half its kernel"):
        p.max_pool(x, kernel=[1, 3, 3], stride=[1, 1, 1], padding=[0, 2, 1])  # torch refuses it too
    with pytest.raises(ValueError, match="kernel sizes and strides"):
        p.max_pool(x, kernel=[1, 0, 3], stride=[1, 1, 1], padding=[0, 0, 0])
    dynamic = p.dynamic_quantize(x)  # per-sample qparams: not a value a max pool step keeps
    with pytest.raises(ValueError, match="dynamically quantized"):
        p.max_pool(dynamic, kernel=[1, 1, 1], stride=[1, 1, 1], padding=[0, 0, 0])
    pooled = p.max_pool(x, kernel=[4, 1, 1], stride=[1, 1, 1], padding=[1, 0, 0])
    p.set_outputs([pooled], ["ncthw"])
    program = NativeProgram(p)
    assert program(torch.randn(1, 4, 2, 3, 3))[0].shape == (1, 4, 1, 3, 3)  # 4 <= 2 + 2*1
    with pytest.raises(ValueError, match="larger than"):
        program(torch.randn(1, 4, 1, 3, 3))  # T = 1: 4 > 1 + 2*1, refused, not read out of bounds


@pytest.mark.parametrize("kernel,stride,padding", WINDOWS)
def test_program_max_pool_on_int8_codes(kernel, stride, padding):
    """quantize -> max_pool on the int8 value: the codes' max pool (F.max_pool3d on them as floats), in the same
    qparams; mostly negative inputs, many clamped to -128, so padding taken as anything but -inf would show."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 17, 5, 9, 11, generator=g) * 4 - 3
    p = native().Program()
    v = p.set_input(17)
    p.set_outputs([p.max_pool(p.quantize(v, 0.05, 7), kernel=kernel, stride=stride, padding=padding)], ["ncthw"])
    (got,) = NativeProgram(p)(x)
    codes = quantize(x, QParams(0.05, 7))
    assert (codes == -128).float().mean() > 0.15
    want = F.max_pool3d(codes.float(), kernel, stride, padding).to(torch.int8)
    assert got.dtype == torch.int8 and torch.equal(got, want)


def test_quantized_max_pool_module():
    """The int8 model's max pool: int8 codes in, the same qparams out, equal to quantizing the float max pool of the
    dequantized input (exact: quantization is monotone); float inputs pass through the pool. Volumes above 127
    elements per channel, which torch's own int8 max pool refuses."""
    pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    module = QuantizedMaxPool(pool)
    qp = QParams(0.02, -5)
    x = torch.randn(2, 6, 4, 15, 13)
    codes = quantize(x, qp)
    got = module(codes)
    assert got.dtype == torch.int8
    assert torch.equal(got, quantize(pool(dequantize(codes, qp)), qp))
    assert torch.equal(module(x), pool(x))
    with pytest.raises(ValueError, match="return_indices"):
        QuantizedMaxPool(nn.MaxPool3d(2, return_indices=True))


@pytest.mark.parametrize("pool,native_pool", [(nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), True),
                                              (nn.MaxPool3d(2), True),  # stride None: the kernel
                                              (nn.MaxPool3d(3, dilation=2), False),
                                              (nn.MaxPool3d(3, 2, ceil_mode=True), False),
                                              (nn.MaxPool3d((1, 3, 3), 1, padding=(0, 1, 1), return_indices=True),
                                               False)])
def test_compile_native_takes_the_max_pools_it_can(pool, native_pool):
    torch.manual_seed(0)
    model = PooledHead(pool).eval()
    transmute_model(model)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 5, 9, 9)).eval()
    compiled = compile_native(deploy)
    described = compiled.native_program.program.describe()
    assert ("max_pool" in described) == native_pool
    assert described.count("conv") == (2 if native_pool else 1)  # the prefix ends before an unsupported pool
    x = torch.randn(2, 3, 6, 11, 13)
    with torch.no_grad():
        assert relative_error(compiled(x), deploy(x)) < 1e-5


@pytest.fixture(scope="module")
def small_resnet():
    """A narrow ResNet-50 (stem width 8: stages 32..256 wide) with the stem MaxPool3d (1x3x3, stride 1x2x2, padding
    0x1x1) and an I3D-style stage-1 MaxPool3d (2x1x1), for 8x64x64 clips; fp32 deploy form and int8."""
    threads = torch.get_num_threads()  # module scope: set up before the per-test one_torch_thread fixture
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_resnet(model_depth=50, stem_dim_out=8, model_num_class=10, stage1_pool=nn.MaxPool3d,
                          head_pool_kernel_size=(4, 2, 2), dropout_rate=0.0)
    model = randomize_batchnorm(model, torch.Generator().manual_seed(1)).eval()
    assert sum(type(m) is nn.MaxPool3d for m in model.modules()) == 2
    transmuted = copy.deepcopy(model)
    transmute_model(transmuted)
    deploy = convert_to_deployable_form(transmuted, torch.randn(1, 3, 8, 64, 64)).eval()
    int8 = quantize_model(deploy, [torch.randn(2, 3, 8, 64, 64)])
    torch.set_num_threads(threads)
    return model, deploy, int8


# 8x64x64: the head pool covers the last map; 2x3x10x80x96: a second batch size and T/H/W (2x2x2 pooled positions)
SHAPES = [(1, 3, 8, 64, 64), (2, 3, 10, 80, 96)]


def _runs_past_the_stem_pool(described: str) -> bool:
    lines = described.splitlines()
    pools = [i for i, line in enumerate(lines) if "max_pool" in line]
    return len(pools) == 2 and sum("conv" in line for line in lines[pools[0]:]) > 10


@pytest.mark.parametrize("shape", SHAPES)
def test_resnet_compiles_through_its_max_pools(small_resnet, shape):
    model, deploy, _ = small_resnet
    compiled = compile_native(deploy)
    assert _runs_past_the_stem_pool(compiled.native_program.program.describe())
    modules = [n for n in compiled.graph.nodes if n.op == "call_module"]
    assert len(modules) == 1  # the whole network, head included, is the program
    x = torch.randn(shape)
    with torch.no_grad():
        got = compiled(x)
        assert got.shape == (shape[0], 10)
        assert relative_error(got, lower_to_native(deploy)(x)) < 1e-4
        assert relative_error(got, model(x)) < 1e-4


@pytest.mark.parametrize("shape", SHAPES)
def test_int8_resnet_runs_its_max_pools_on_int8(small_resnet, shape):
    """quantize_model runs MaxPool3d on the int8 codes of the conv before it (QuantizedMaxPool, the conv's qparams
    kept), so the program pools int8 values: no float conv output, no quantize step after the pools; the same
    results as the per-layer lowering and the torch reference."""
    _, _, int8 = small_resnet
    assert sum(type(m) is QuantizedMaxPool for m in int8.modules()) == 2
    compiled = compile_native(int8)
    described = compiled.native_program.program.describe()
    assert _runs_past_the_stem_pool(described)
    lines = described.splitlines()
    defined = {line.split(" = ")[0]: line for line in lines if " = " in line}
    pools = [line for line in lines if "max_pool(" in line]
    for line in pools:  # each pool reads an int8 conv output
        source = line.split("max_pool(")[1].split(")")[0]
        assert "quantized_conv(" in defined[source], (line, defined[source])
    assert sum("= quantize(" in line for line in lines[:lines.index(pools[-1]) + 2]) == 1  # only the input's
    x = torch.randn(shape)
    with torch.no_grad():
        got = compiled(x)
        # bit for bit up to the head's output pool, which averages the float classifier's logits (natively in the
        # program, with torch's pool layer by layer)
        per_layer = lower_quantized_to_native(int8)(x)
        assert float((got - per_layer).norm() / per_layer.norm()) < 1e-6
        reference = int8(x)
        assert float((got - reference).norm() / reference.norm()) < 0.02


def test_model_files_keep_the_max_pools(small_resnet, tmp_path):
    _, deploy, int8 = small_resnet
    x = torch.randn(*SHAPES[1])
    for model in (deploy, int8):
        program = compile_native(model).native_program
        program.save(tmp_path / "resnet.pvp")
        loaded = load_program(tmp_path / "resnet.pvp")
        assert loaded.program.describe() == program.program.describe()
        assert _runs_past_the_stem_pool(loaded.program.describe())
        with torch.no_grad():
            for a, b in zip(program(x), loaded(x)):
                assert torch.equal(a, b)
