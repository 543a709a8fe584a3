"""Kernel dispatch: the best level by default, PYVIDEO_ISA forces one, bad values are clear errors; PYVIDEO_VNNI=0
(or using_isa(..., byte_dot=False)) gives every level the int8 kernels of CPUs without a byte dot product."""
import os
import subprocess
import sys

import pytest

from pyvideo._native import native, using_isa

SUPPORTED = native().supported_isas()


def _isa_in_subprocess(value, **extra_env):
    env = dict(os.environ, PYVIDEO_ISA=value, **extra_env)
    code = "from pyvideo._native import native; print(native().get_isa(), native().qconv3d_variant())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_default_is_best_supported_level():
    if os.environ.get("PYVIDEO_ISA"):
        pytest.skip("PYVIDEO_ISA is set for this run")
    assert native().get_isa() == SUPPORTED[-1]


@pytest.mark.parametrize("level", SUPPORTED)
def test_env_var_forces_level(level):
    result = _isa_in_subprocess(level)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == level


@pytest.mark.parametrize("level", SUPPORTED)
def test_vnni_env_var_off_gives_the_levels_own_int8_kernels(level):
    # PYVIDEO_VNNI=0: the level's int8 dense variant is the level itself (avx512: the emulated dot on 16 lanes, not
    # avx512vnni / amx), whatever the CPU has beyond it
    result = _isa_in_subprocess(level, PYVIDEO_VNNI="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [level, level]


def test_using_isa_without_byte_dot_restores_the_table_and_environment():
    before, variant, env = native().get_isa(), native().qconv3d_variant(), os.environ.get("PYVIDEO_VNNI")
    for level in SUPPORTED:
        with using_isa(level, byte_dot=False):
            assert (native().get_isa(), native().qconv3d_variant()) == (level, level)
        assert os.environ.get("PYVIDEO_VNNI") == env
    assert (native().get_isa(), native().qconv3d_variant()) == (before, variant)
    with pytest.raises(ValueError, match="sse9"):
        with using_isa("sse9", byte_dot=False):
            pass
    assert os.environ.get("PYVIDEO_VNNI") == env
    assert (native().get_isa(), native().qconv3d_variant()) == (before, variant)


def test_env_var_with_unknown_level_is_a_clear_error():
    result = _isa_in_subprocess("sse9")
    assert result.returncode != 0
    assert "PYVIDEO_ISA" in result.stderr and "sse9" in result.stderr


def test_unsupported_level_is_refused():
    other = "neon" if "avx2" in native().compiled_isas() else "avx2"
    with pytest.raises(ValueError, match=other):
        native().set_isa(other)


def test_using_isa_restores_previous_level():
    before = native().get_isa()
    with using_isa("scalar"):
        assert native().get_isa() == "scalar"
    assert native().get_isa() == before
