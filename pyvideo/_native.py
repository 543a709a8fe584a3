"""The bridge to pyvideo's native layer (``pyvideo._C`` over ``libvideo.so``).

Tensors cross the boundary through DLPack without copies: native functions read and write the very storage of
the tensors passed in (they must be C-contiguous CPU tensors of the dtype the function names; anything else is a
``ValueError``). Native results come back as DLPack capsules that :func:`from_dlpack` adopts without copying.
"""
import contextlib
import os

import torch

try:
    from pyvideo import _C
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    _C = None
    _IMPORT_ERROR = error
else:
    _IMPORT_ERROR = None


def native():
    """The ``pyvideo._C`` module, or an ImportError that says how to build it."""
    if _C is None:
        raise ImportError(
            "pyvideo's native extension pyvideo._C is not available "
            f"({_IMPORT_ERROR}); build it with `make build` or install with `pip install .`"
        ) from _IMPORT_ERROR
    return _C


def from_dlpack(capsule) -> torch.Tensor:
    """Adopt a DLPack capsule produced by the native layer as a torch tensor (zero copy)."""
    return torch.utils.dlpack.from_dlpack(capsule)


def num_threads() -> int:
    """Threads native kernels use: torch's intra-op setting, so ``torch.set_num_threads`` governs both."""
    return max(1, torch.get_num_threads())


@contextlib.contextmanager
def using_isa(name: str, byte_dot: bool = True):
    """Temporarily force a kernel ISA level ("scalar", "avx2", "avx512", "neon"); for tests and benchmarks.

    ``byte_dot=False`` also leaves the byte dot-product instructions (AVX512-VNNI, AVX-VNNI, ARM dotprod) and AMX out
    of the int8 kernels, as ``PYVIDEO_VNNI=0`` does at startup: the level then runs the int8 kernels of CPUs without
    them (Skylake-SP at ``avx512``, Zen 1-3 at ``avx2``, Cortex-A53 at ``neon``)."""
    lib = native()
    previous = lib.get_isa()
    saved = os.environ.get("PYVIDEO_VNNI")
    if not byte_dot:
        os.environ["PYVIDEO_VNNI"] = "0"
    try:
        lib.set_isa(name)  # the table reads PYVIDEO_VNNI when it is filled
    finally:
        _restore_env("PYVIDEO_VNNI", saved)
    try:
        yield
    finally:
        lib.set_isa(previous)


def _restore_env(name: str, value):
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


# int8 dense variants (qconv3d_variant()) without a byte dot-product instruction: there an int8 multiply-add costs
# about an fp32 FMA, so int8 gains little over fp32 (whole X3D programs 0.96-1.05x fp32's speed on a Zen 1 with AVX2,
# 1.2x on a Zen 4 with its VNNI left out; docs/notes/accelerator.md).
NO_BYTE_DOT_VARIANTS = ("avx2", "avx512", "neon", "scalar")


def int8_kernel_description(variant: str = None) -> str:
    """Which int8 dense kernels run (``variant``, default: the active table's) and what to expect of them there."""
    variant = variant or native().qconv3d_variant()
    if variant in NO_BYTE_DOT_VARIANTS:
        return (f"{variant}, kernels without a byte dot-product instruction (x86 VNNI or AMX, ARM dotprod): int8 gains "
                f"little speed over fp32 here, and keeps its 4x smaller model and weights")
    return f"{variant} (byte dot products)"


def int8_kernel_note(variant: str = None) -> str:
    """int8_kernel_description as the line `pyvideo demo` prints under its table."""
    return f"int8 kernels: {int8_kernel_description(variant)}"


def build_info() -> dict:
    """The native build's description as a dict (version, compiler, ISA levels, FFmpeg, ...)."""
    lines = native().build_info().strip().splitlines()
    info = dict(line.split("=", 1) for line in lines)
    info["isa_active"] = native().get_isa()
    info["PYVIDEO_ISA"] = os.environ.get("PYVIDEO_ISA", "")
    return info
