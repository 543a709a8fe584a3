"""The native layer's packaging contract: libvideo.so links neither libtorch nor libpython; _C links libvideo."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyvideo
from pyvideo import _native

PACKAGE_DIR = Path(pyvideo.__file__).resolve().parent


def _needed(library: Path):
    """DT_NEEDED entries of a shared object (readelf -d), i.e. what it links directly."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) not installed")
    out = subprocess.run(["readelf", "-d", str(library)], check=True, capture_output=True, text=True).stdout
    return [line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines() if "(NEEDED)" in line]


def test_libvideo_links_no_torch_and_no_python():
    libvideo = PACKAGE_DIR / "libvideo.so"
    assert libvideo.exists()
    needed = _needed(libvideo)
    assert needed, "readelf found no dependencies at all"
    forbidden = [n for n in needed if n.startswith(("libtorch", "libc10", "libpython"))]
    assert forbidden == [], f"libvideo.so must stay free of torch/Python, links {forbidden}"
    # and nothing it resolves at load time pulls them in either
    ldd = subprocess.run(["ldd", str(libvideo)], capture_output=True, text=True).stdout
    assert "libtorch" not in ldd and "libpython" not in ldd and "libc10" not in ldd


def test_extension_links_libvideo():
    ext = next(PACKAGE_DIR.glob("_C*.so"))
    assert "libvideo.so" in _needed(ext)


def test_build_info_reports_isa_and_ffmpeg():
    info = _native.build_info()
    assert info["version"] == pyvideo.__version__
    assert "scalar" in info["isa_compiled"].split(",")
    assert info["isa_active"] in info["isa_supported"].split(",")
    assert info["ffmpeg"] != ""


def test_l2_cache_size_detected_and_overridden():
    """The L2 size the kernels block by (blocked_reduction's threshold): detected (0 only where no source knows it),
    and PYVIDEO_L2_BYTES overrides it, read at load in a fresh process."""
    assert int(_native.build_info()["l2_cache_bytes"]) >= 0
    code = "from pyvideo import _native; print(_native.build_info()['l2_cache_bytes'])"
    for text, want in (("2M", 2 << 20), ("768K", 768 << 10), ("131072", 131072)):
        env = dict(os.environ, PYVIDEO_L2_BYTES=text)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        assert int(out.stdout.strip()) == want


def test_cli_info_prints_build(capsys):
    from pyvideo.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "ISA active" in out and "FFmpeg" in out and "CUDA" in out and "L2 cache" in out
    assert f"int8 kernels  : {_native.native().qconv3d_variant()}" in out


def test_cli_info_says_when_byte_dot_products_are_left_out():
    env = dict(os.environ, PYVIDEO_VNNI="0")
    out = subprocess.run([sys.executable, "-m", "pyvideo", "info"], capture_output=True, text=True, timeout=120,
                         env=env)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if "int8 kernels" in line)
    assert "without a byte dot-product instruction" in line and "PYVIDEO_VNNI=0" in line


def test_python_m_pyvideo_runs():
    result = subprocess.run([sys.executable, "-m", "pyvideo", "info"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"pyvideo {pyvideo.__version__}" in result.stdout
