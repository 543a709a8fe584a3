"""Conv -> depthwise fusion in compile_native programs (C++ runtime): EfficientX3d-XS with every X3D expansion conv
and the stem's spatial conv fused into their depthwise convs gives exactly what the separate steps give (every ISA
level, 1 and 2 threads), both match the deploy model; so does a vanilla x3d_xs through the transmuter; the default
rule fuses only the large downsampling pairs and the large stem; model files loaded back fuse too; compile_native's
switch and the program's turn it off."""
import pytest
import torch

from pyvideo._native import native, using_isa
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import compile_native, load_program
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

from ._util import randomize_batchnorm, relative_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FUSED = "conv/pointwise>depthwise"
STEM = "conv/dense>depthwise"  # X3D's stem: conv_xy (1x3x3, stride (1, 2, 2)) -> conv_t (5x1x1 depthwise)


@pytest.fixture(scope="module")
def deploy():
    torch.manual_seed(0)
    model = create_x3d(expansion="XS", num_classes=7).eval()
    return convert_to_deployable_form(model, torch.randn(1, 3, 4, 64, 64))


def _kinds(program, x):
    """Step kinds of one profiled run of the NativeProgram `program`, and its logits."""
    program.program.set_profiling(True)
    with torch.no_grad():
        out = program(x)[0]
    kinds = [step["kind"] for step in program.program.last_profile()]
    program.program.set_profiling(False)
    return kinds, out


@pytest.mark.parametrize("level", native().supported_isas())
@pytest.mark.parametrize("shape", [(1, 3, 4, 64, 64), (2, 3, 3, 37, 29)])
def test_every_pair_fused_equals_unfused_exactly(deploy, level, shape):
    torch.manual_seed(1)
    x = torch.randn(shape)
    fused = compile_native(deploy).native_program
    fused.program.set_fuse_pointwise_depthwise(True, every_pair=True)
    unfused = compile_native(deploy, fuse_pointwise_depthwise=False).native_program
    with using_isa(level):
        plain_kinds, want = _kinds(unfused, x)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            kinds, got = _kinds(fused, x)
            assert torch.equal(got, want)
    torch.set_num_threads(1)
    # Every X3D block's expansion conv (26 blocks in XS, 15 of them with a squeeze-excitation reading the depthwise
    # conv's row sums) is fused into its depthwise conv, and the stem's dense conv into the temporal depthwise conv.
    assert plain_kinds.count("conv/depthwise+sums") == 15 and plain_kinds.count("conv/depthwise") == 12
    assert plain_kinds[:2] == ["conv/dense", "conv/depthwise"]
    assert kinds.count(FUSED + "+sums") == 15 and kinds.count(FUSED) == 11 and kinds[0] == STEM
    assert not any(kind.startswith("conv/depthwise") for kind in kinds)
    assert len(kinds) == len(plain_kinds) - 27
    with torch.no_grad():
        assert relative_error(want, deploy(x)) < 1e-4


def test_default_rule_fuses_the_large_downsampling_pairs(deploy):
    compiled = compile_native(deploy)
    program = compiled.native_program
    assert program.program.fuse_pointwise_depthwise
    small_kinds, _ = _kinds(program, torch.randn(1, 3, 4, 64, 64))
    assert not any(">depthwise" in kind for kind in small_kinds)
    # At 160x160 the pointwise outputs of the two first stride-2 blocks are 5.5 MB and 2.8 MB: those two are fused,
    # and so is the stem (its conv output is 4 x 80 x 80 x 24 floats, 2.3 MB).
    x = torch.randn(1, 3, 4, 160, 160)
    kinds, got = _kinds(program, x)
    assert sum(kind.startswith(FUSED) for kind in kinds) == 2 and kinds[0] == STEM
    _, want = _kinds(compile_native(deploy, fuse_pointwise_depthwise=False).native_program, x)
    assert torch.equal(got, want)


def test_loaded_model_files_fuse_too(deploy, tmp_path):
    x = torch.randn(2, 3, 3, 37, 29)
    program = compile_native(deploy, fuse_pointwise_depthwise=False).native_program
    path = tmp_path / "xs.pvp"
    program.save(path)
    loaded = load_program(path)
    assert loaded.program.fuse_pointwise_depthwise  # the setting is the runtime's, not the file's
    loaded.program.set_fuse_pointwise_depthwise(True, every_pair=True)
    kinds, got = _kinds(loaded, x)
    assert sum(kind.startswith(FUSED) for kind in kinds) == 26 and kinds[0] == STEM
    _, want = _kinds(program, x)
    assert torch.equal(got, want)


def test_the_switch_turns_fusion_off(deploy):
    x = torch.randn(1, 3, 4, 64, 64)
    program = compile_native(deploy, fuse_pointwise_depthwise=False).native_program
    assert not program.program.fuse_pointwise_depthwise
    kinds, want = _kinds(program, x)
    assert not any(">depthwise" in kind for kind in kinds)
    program.program.set_fuse_pointwise_depthwise(True, every_pair=True)
    kinds, got = _kinds(program, x)
    assert sum(">depthwise" in kind for kind in kinds) == 27 and torch.equal(got, want)
    program.program.set_fuse_pointwise_depthwise(False, every_pair=True)  # off wins over every_pair
    kinds, _ = _kinds(program, x)
    assert not any(">depthwise" in kind for kind in kinds)


def test_vanilla_x3d_xs_stem_fused_equals_unfused():
    hub = pytest.importorskip("pyvideo.models.hub")
    torch.manual_seed(8)
    model = randomize_batchnorm(hub.x3d_xs(), torch.Generator().manual_seed(9))
    transmute_model(model)
    x = torch.randn(1, 3, 4, 160, 160)  # the head's 4x5x5 pool needs the full 160 crop
    deploy = convert_to_deployable_form(model, x)
    unfused = compile_native(deploy, fuse_pointwise_depthwise=False).native_program
    plain_kinds, want = _kinds(unfused, x)
    assert plain_kinds[:2] == ["conv/dense", "conv/depthwise"]
    compiled = compile_native(deploy)  # default rule: the stem's conv output is 2.3 MB, it is fused
    default, every = compiled.native_program, compile_native(deploy).native_program
    every.program.set_fuse_pointwise_depthwise(True, every_pair=True)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for program in (default, every):
            kinds, got = _kinds(program, x)
            assert kinds[0] == STEM and torch.equal(got, want)
    torch.set_num_threads(1)
    with torch.no_grad():
        assert relative_error(compiled(x), deploy(x)) < 1e-4


def test_profiled_multiply_adds_are_the_networks():
    """bench/accelerator.py's fp32 roofline divides the profile's multiply-adds by the machine's matmul peak: they must
    be every conv's and the classifier's, counted once (fused pairs included), whatever the fusion. The squeeze-
    excitations' two small layers on pooled vectors are the only ones the gate step does not count."""
    torch.manual_seed(2)
    x = torch.randn(2, 3, 3, 37, 29)
    model = create_x3d(expansion="XS", num_classes=7).eval()
    counted = {}

    def hook(module, _inputs, out):
        per_output = module.weight.numel() // module.weight.shape[0]  # (C_in / groups) x kernel taps, or in_features
        counted[module] = out.numel() * per_output

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.Linear))]
    with torch.no_grad():
        model(x)
    for handle in hooks:
        handle.remove()
    in_se = {id(m) for se in model.modules() if type(se).__name__ == "SqueezeExcitation" for m in se.modules()}
    want = sum(macs for module, macs in counted.items() if id(module) not in in_se)
    assert 0 < sum(macs for module, macs in counted.items() if id(module) in in_se) < want / 100
    deployed = convert_to_deployable_form(model, torch.randn(1, 3, 4, 64, 64))
    for fuse in (True, False):
        program = compile_native(deployed, fuse_pointwise_depthwise=fuse).native_program
        program.program.set_fuse_pointwise_depthwise(fuse, every_pair=fuse)
        program.program.set_profiling(True)
        with torch.no_grad():
            program(x)
        profile = program.program.last_profile()
        assert any(FUSED in step["kind"] for step in profile) == fuse
        assert sum(step["macs"] for step in profile) == want
