"""The built libvideo keeps ISA-specific instructions inside ISA-specific code.

libvideo compiles each kernel file with its own instruction-set flags (AVX2, AVX-512, VNNI, AMX; ARM dotprod, i8mm)
and picks a variant at run time. An inline function or template that several of those files instantiate (a
std::vector method, a shared header's helper) is a single weak symbol in the library, and the linker keeps one of
the copies. Were that the AVX-512 file's copy, every caller would run AVX-512 instructions, and the library would
crash with SIGILL on CPUs without them (std::vector<int>::assign from the AMX file was such a copy; CMakeLists.txt
now links the baseline objects first and the others by rising ISA). This test disassembles the weak symbols of the
x86 library whose names carry no ISA-specific type and require instructions that every ISA file's callers have:
every flagged file has AVX2 (so AVX2 is allowed: a copy from one of them is only called by them; baseline files,
linked first, keep their own copies), not all have AVX-512 or VNNI. (On ARM64 the cortex-a53 run of `make
test-arm64` executes the library on a CPU without the dotprod files' instructions.)
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import pyvideo

X86_LIB = Path(pyvideo.__file__).resolve().parent / "libvideo.so"

# Names of the vector wrappers (kernels/cpu/simd.h, int8/dot_simd.h) and ISA kernels: a symbol naming one is only
# called by code of that ISA.
ISA_NAMES = re.compile(r"Avx2|Avx512|AvxVnni|Amx|amx|avx2|avx512|avxvnni|Neon|neon|Dot|i8mm")
# x86: AVX-512 (zmm registers, mask registers, the EVEX-only x/ymm16-31, embedded broadcasts) and VNNI dot products.
X86_EXTENDED = re.compile(r"%zmm\d+|%k[1-7]\b|%[xy]mm(1[6-9]|2\d|3[01])\b|\{1to\d+\}|\svpdp[bw][us]s?d")


def weak_symbol_code(lib: Path, nm: str, objdump: str):
    """{demangled name: [instruction lines]} of the library's weak function symbols."""
    out = subprocess.run([nm, "-C", "--defined-only", str(lib)], capture_output=True, text=True, check=True).stdout
    weak = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in ("W", "w"):
            weak[int(parts[0], 16)] = parts[2]
    code, current = {}, None
    dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True,
                         check=True).stdout
    for line in dis.splitlines():
        head = re.match(r"^([0-9a-f]+) <", line)
        if head:
            current = weak.get(int(head.group(1), 16))
            if current is not None:
                code.setdefault(current, [])
        elif current is not None and line.strip():
            code[current].append(line)
    return code


def offenders(code, pattern):
    return {name: [l.strip() for l in lines if pattern.search(l)][:3] for name, lines in code.items()
            if not ISA_NAMES.search(name) and any(pattern.search(l) for l in lines)}


@pytest.mark.skipif(not X86_LIB.exists() or shutil.which("objdump") is None or shutil.which("nm") is None,
                    reason="needs the built x86 libvideo.so and binutils")
def test_x86_shared_weak_symbols_are_baseline():
    import platform
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86-64 library only")
    code = weak_symbol_code(X86_LIB, "nm", "objdump")
    # the check sees ISA code where it is expected: the AVX-512 VNNI dense kernel's template uses zmm registers
    vnni = [n for n in code if "qconv3d_simd<pyvideo::kernels::simd::Avx512Vnni" in n]
    assert vnni and any(X86_EXTENDED.search(l) for n in vnni for l in code[n])
    bad = offenders(code, X86_EXTENDED)
    assert not bad, f"weak symbols shared across ISA files hold AVX-512 / VNNI instructions: {bad}"

