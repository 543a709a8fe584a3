"""AMX-INT8 pointwise convs (CPUs and OSes that allow AMX; skipped elsewhere): PYVIDEO_AMX switches them in and out
of the kernel table, a pointwise conv on AMX matches the pure-torch int8 reference within 1 LSB, and the whole int8
X3D program gives the same bits with AMX on and off (the AMX kernel computes the exact int32 sums of the VNNI one and
runs the same requantization)."""
import os
import subprocess
import sys

import pytest
import torch

from pyvideo._native import native
from pyvideo.accelerator.deployable import FusedConv3d
from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.accelerator.native import NativeQuantizedConv3d, compile_native
from pyvideo.accelerator.quantization import quantize_model
from pyvideo.accelerator.quantization.int8_modules import QuantizedConv3d
from pyvideo.accelerator.quantization.qparams import QParams
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

from ._util import randomize_batchnorm

AMX = "amx_int8" in native().cpu_features().split() and "avx512" in native().supported_isas()
pytestmark = pytest.mark.skipif(
    not AMX, reason=f"no AMX-INT8 usable here (CPU features: {native().cpu_features()}; needs AMX-TILE/AMX-INT8, "
                    "OS tile state and the Linux permission)")


@pytest.fixture
def amx_switch():
    """set(on): refill the kernel table with AMX allowed or not; the environment and table are restored after."""
    saved_env, saved_isa = os.environ.get("PYVIDEO_AMX"), native().get_isa()

    def set_amx(on):
        os.environ["PYVIDEO_AMX"] = "1" if on else "0"
        native().set_isa("avx512")

    yield set_amx
    if saved_env is None:
        os.environ.pop("PYVIDEO_AMX", None)
    else:
        os.environ["PYVIDEO_AMX"] = saved_env
    native().set_isa(saved_isa)


def test_switch_selects_the_dense_variant(amx_switch):
    amx_switch(True)
    assert native().qconv3d_variant() == "amx+avx512vnni"
    amx_switch(False)
    assert native().qconv3d_variant() == "avx512vnni"


def test_environment_at_startup_turns_amx_off():
    code = "from pyvideo._native import native; print(native().qconv3d_variant())"
    for value, expected in (("0", "avx512vnni"), ("1", "amx+avx512vnni")):
        env = dict(os.environ, PYVIDEO_AMX=value, PYVIDEO_ISA="avx512")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected


@pytest.mark.parametrize("ci,co,residual,activation", [(54, 24, True, "identity"), (24, 54, False, "relu"),
                                                       (108, 17, False, "hswish"), (7, 40, True, "swish")])
def test_pointwise_conv_on_amx_matches_reference(amx_switch, ci, co, residual, activation):
    g = torch.Generator().manual_seed(ci * 1000 + co)
    weight = torch.randn(co, ci, 1, 1, 1, generator=g) / ci ** 0.5
    conv = FusedConv3d(weight, torch.randn(co, generator=g) * 0.1, (1, 1, 1), (0, 0, 0), activation=activation,
                       adds_residual=residual)
    reference = QuantizedConv3d(conv, QParams(0.02, 3), QParams(0.03, -5), QParams(0.025, 7) if residual else None)
    fast = NativeQuantizedConv3d(reference)
    # 2 x 3 x 9 x 19 = 1026 positions: AMX's 32-row panels end in a partial one, and C_in / C_out have tails
    x = torch.randint(-128, 128, (2, ci, 3, 9, 19), generator=g, dtype=torch.int8)
    r = torch.randint(-128, 128, (2, co, 3, 9, 19), generator=g, dtype=torch.int8) if residual else None
    amx_switch(True)
    got = fast(x, r)
    amx_switch(False)
    vnni = fast(x, r)
    expected = reference(x, r)
    assert torch.equal(got, vnni)
    diff = (got.int() - expected.int()).abs()
    assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01


def test_int8_program_is_bit_identical_with_and_without_amx(amx_switch):
    torch.manual_seed(0)
    model = randomize_batchnorm(create_x3d(expansion="XS", num_classes=10), torch.Generator().manual_seed(1)).eval()
    x = torch.randn(1, 3, 4, 64, 64)
    deploy = convert_to_deployable_form(model, x)
    program = compile_native(quantize_model(deploy, [torch.randn(1, 3, 4, 64, 64) for _ in range(2)]))
    outputs = []
    with torch.no_grad():
        for on in (True, False, True):
            amx_switch(on)
            outputs.append(program(x))
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])
    assert outputs[0].abs().sum() > 0
