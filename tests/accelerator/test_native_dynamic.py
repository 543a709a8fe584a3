"""Dynamic (per-sample) int8 ranges in native programs: compile_native turns a model quantized with
``dynamic_ranges`` into one program whose dynamic_quantize steps feed int8 steps with per-sample qparams."""
import pytest
import torch

from pyvideo.accelerator.native import NativeProgram, compile_native, load_program
from pyvideo.accelerator.quantization import QuantizedConv3d, QuantizedSqueezeExcitation, quantize_model

from .test_quantization import _deployed_x3d
from .test_quantization_dynamic import _linear_chain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _only_the_program_runs(compiled) -> bool:
    modules = [n for n in compiled.graph.nodes if n.op == "call_module"]
    return len(modules) == 1 and isinstance(compiled.get_submodule(modules[0].target), NativeProgram)


def _relative(a, b):
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def dynamic_x3d():
    """EfficientX3d-XS with every eligible tensor dynamic (the input, conv outputs, SE outputs, the pooled head)."""
    deploy = _deployed_x3d(seed=4)
    generator = torch.Generator().manual_seed(8)
    calibration = [torch.randn(2, 3, 4, 32, 32, generator=generator) for _ in range(3)]
    int8 = quantize_model(deploy, calibration, dynamic_ranges=0)
    return deploy, int8


def test_dynamic_x3d_runs_as_one_program_close_to_the_reference(dynamic_x3d):
    deploy, int8 = dynamic_x3d
    assert any(m.dynamic_input for m in int8.modules() if isinstance(m, QuantizedSqueezeExcitation))
    assert any(m.dynamic_residual for m in int8.modules() if isinstance(m, QuantizedConv3d))
    compiled = compile_native(int8)
    assert _only_the_program_runs(compiled)
    description = compiled.native_program.program.describe()
    assert "dynamic_quantize" in description
    generator = torch.Generator().manual_seed(9)
    scales = torch.tensor([1.0, 0.02, 4.0]).reshape(3, 1, 1, 1, 1)  # clips far outside the calibration scale too
    x = torch.randn(3, 3, 4, 32, 32, generator=generator) * scales
    with torch.no_grad():
        got, reference, fp32 = compiled(x), int8(x), deploy(x)
        # per-sample ranges: each clip's result does not depend on the rest of its batch, natively too
        assert torch.equal(torch.cat([compiled(x[n:n + 1]) for n in range(3)]), got)
    for n in range(3):
        # the same arithmetic as the torch reference (native kernels may differ by 1 LSB next to rounding ties)
        assert _relative(got[n], reference[n]) < 0.02
        assert _relative(got[n], fp32[n]) < 0.05


def test_dynamic_program_model_file_round_trip(dynamic_x3d, tmp_path):
    _, int8 = dynamic_x3d
    program = compile_native(int8).native_program
    program.save(tmp_path / "dynamic.pvp")
    loaded = load_program(tmp_path / "dynamic.pvp")
    x = torch.randn(2, 3, 5, 40, 36, generator=torch.Generator().manual_seed(3))  # another shape than calibrated
    with torch.no_grad():
        for a, b in zip(program(x), loaded(x)):
            assert torch.equal(a, b)


def test_dynamic_chain_equals_the_reference_on_small_and_large_clips():
    """Convs, a global pool and a Linear with dynamic inputs, run natively: close to the torch reference for clips
    100x apart in scale (where a static range would leave the small ones a handful of levels)."""
    model = _linear_chain()
    generator = torch.Generator().manual_seed(1)
    calibration = [torch.randn(2, 3, 4, 16, 16, generator=generator) for _ in range(3)]
    int8 = quantize_model(model, calibration, bias_correction=False, dynamic_ranges=0)
    compiled = compile_native(int8)
    assert _only_the_program_runs(compiled)
    x = torch.randn(4, 3, 4, 16, 16, generator=generator) * torch.tensor([1.0, 0.01, 3.0, 0.01]).reshape(4, 1, 1, 1, 1)
    with torch.no_grad():
        got, reference, fp32 = compiled(x), int8(x), model(x)
    for n in range(4):
        assert _relative(got[n], reference[n]) < 1e-2 and _relative(got[n], fp32[n]) < 0.05


def test_non_finite_input_is_a_clear_error():
    model = _linear_chain()
    int8 = quantize_model(model, [torch.randn(1, 3, 4, 16, 16) for _ in range(3)], dynamic_ranges=0)
    compiled = compile_native(int8)
    x = torch.randn(2, 3, 4, 16, 16)
    x[1, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        compiled(x)
    with pytest.raises(ValueError, match="non-finite"):
        int8(x)
