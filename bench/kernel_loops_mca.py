"""Static throughput estimates of the conv kernels' innermost loops, per CPU model, with llvm-mca.

For CPUs at hand there are timings (bench/int8_kernels.py, bench/conv3d_layers.py); for the others -- ARM cores above
all, which no session has had -- this is the next best thing. Each kernel source is compiled to assembly as the build
compiles it (-O3, the file's ISA flags; aarch64 with the cross compiler), the hottest self-loop of the named register
tile is cut out (the basic block that branches back to its own label and does the most multiply-adds), and llvm-mca
simulates it on each CPU model: cycles per iteration, hence multiply-adds per cycle. Ratios between kernels on one
CPU model are the useful output (int8 against fp32, one int8 form against another).

What it does not see: cache misses (every load hits L1), the epilogue, the loops around the tile, threads, and the
models' own inaccuracies. Check it against a timing where there is one: on an AMD Zen 1 (AVX2, no VNNI)
bench/int8_kernels.py measured int8/fp32 0.66x for X3D-XS's dense layers (LLVM 14 has no Zen 1 model of its own:
its `znver1` gives `znver2`'s numbers, 15.3 fp32 multiply-adds per cycle, where bench/mac_throughput.py measures
about 8 on that Zen 1).

    python bench/kernel_loops_mca.py            # every kernel whose compiler is installed, on every CPU model
    python bench/kernel_loops_mca.py --arch aarch64 --show-loop "int8 NEON"

Needs llvm-mca (LLVM 14 or later; Debian: apt install llvm, not among the Makefile's packages) and, for ARM,
aarch64-linux-gnu-g++ (which the Makefile installs). Without llvm-mca it says so and exits 0, so `make bench` runs on.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Kernel:
    name: str
    arch: str  # "aarch64" or "x86_64"
    source: str
    function: str  # regex over the mangled names of the functions to search (tile instantiations, or their callers
    # where GCC inlined the tiles)
    cpus: tuple  # llvm-mca -mcpu values that have the instructions
    baseline: str = ""  # the fp32 kernel of the same vector width, to compare with


ARM_V80 = ("cortex-a53", "cortex-a72", "cortex-a55", "cortex-a76")
ARM_DOT = ("cortex-a55", "cortex-a76")  # dotprod: ARMv8.2 cores
X86_AVX2 = ("znver2", "skylake", "icelake-server")
X86_VNNI = ("icelake-server",)

# Mangled names: qconv3d_tile<I, MR, NV, QSource, Full>: QSourceE1 = folded (ARM's main path), E2 = prepped (x86's;
# E4 = prepped_split, plain AVX2's for layers up to 256 KB of weights, which the AVX2 entry finds as its hottest loop);
# Lb1E = Full (ARM tiles whose vectors are all whole). gemm_tile<V, MR, NV, Tail>: MR >= 2 (MR = 1 is the GEMV of a
# head), Lb0E = no tail.
FP32_TILE = r"gemm_tileINS0_4simd\w+ELi([2-9]|\d\d)ELi\d+ELb0EEEv"
KERNELS = [
    Kernel("fp32 NEON", "aarch64", "kernels/cpu/conv3d/conv3d_neon.cpp", FP32_TILE, ARM_V80),
    Kernel("int8 NEON (sdot emulated)", "aarch64", "kernels/cpu/int8/qconv3d_neon.cpp",
           r"qconv3d_tile.*QSourceE1ELb1EEEv", ARM_V80, "fp32 NEON"),
    Kernel("int8 dotprod", "aarch64", "kernels/cpu/int8/qconv3d_neondot.cpp", r"qconv3d_tile.*QSourceE1ELb1EEEv",
           ARM_DOT, "fp32 NEON"),
    # The same tile with a partial last vector: the lane-count branch in its loop, as every tile had it before the
    # twenty-second session. Since the twenty-third only layers narrower than a tile run it (a layer's last tile is
    # moved back to end at its last channel: whole vectors).
    Kernel("int8 dotprod, partial-lane tile", "aarch64", "kernels/cpu/int8/qconv3d_neondot.cpp",
           r"qconv3d_tile.*QSourceE1ELb0EEEv", ARM_DOT, "fp32 NEON"),
    Kernel("fp32 depthwise NEON", "aarch64", "kernels/cpu/dwconv3d/dwconv3d_neon.cpp", r".", ARM_V80),
    Kernel("int8 depthwise NEON (sdot emulated)", "aarch64", "kernels/cpu/int8/qdwconv3d_neon.cpp",
           r"qdw_blockINS0_4simd8NeonMullELb0E", ARM_V80, "fp32 depthwise NEON"),
    Kernel("int8 depthwise dotprod", "aarch64", "kernels/cpu/int8/qdwconv3d_neondot.cpp",
           r"qdw_blockINS0_4simd7NeonDotELb0E", ARM_DOT, "fp32 depthwise NEON"),
    Kernel("fp32 AVX2", "x86_64", "kernels/cpu/conv3d/conv3d_avx2.cpp", FP32_TILE, X86_AVX2),
    Kernel("int8 AVX2 (vpdpbusd emulated)", "x86_64", "kernels/cpu/int8/qconv3d_avx2.cpp",
           r"qconv3d_(simd|columns|remainder|tile)I\w*Avx2Dot", X86_AVX2, "fp32 AVX2"),
    Kernel("fp32 depthwise AVX2", "x86_64", "kernels/cpu/dwconv3d/dwconv3d_avx2.cpp", r".", X86_AVX2),
    # Since the twenty-fourth session the AVX2 int8 depthwise conv runs the fp32 loop nest on widened rows
    # (qdwconv3d_rows.h): its hottest loop is fp32's, instantiated in its own file (its requantizing pass, cut out by
    # the function name here, would otherwise count as the loop: the swish polynomial's FMAs).
    Kernel("int8 depthwise AVX2 (widened rows)", "x86_64", "kernels/cpu/int8/qdwconv3d_avx2.cpp", r"column_block",
           X86_AVX2, "fp32 depthwise AVX2"),
    Kernel("fp32 AVX-512", "x86_64", "kernels/cpu/conv3d/conv3d_avx512.cpp", FP32_TILE, X86_VNNI),
    Kernel("int8 AVX-512 VNNI", "x86_64", "kernels/cpu/int8/qconv3d_avx512vnni.cpp",
           r"qconv3d_(simd|columns|remainder|tile)I\w*Avx512Vnni", X86_VNNI, "fp32 AVX-512"),
]

COMPILERS = {"aarch64": "aarch64-linux-gnu-g++", "x86_64": "g++"}
MCA = None  # the llvm-mca executable, found by main()
TRIPLES = {"aarch64": "aarch64-linux-gnu", "x86_64": "x86_64-linux-gnu"}

# Multiply-adds per instruction (one output lane's products count one each).
MACS = [
    (re.compile(r"^\s*sdot\s+v\d+\.4s"), 16),
    (re.compile(r"^\s*smull2?\s+v\d+\.8h"), 8),
    (re.compile(r"^\s*fmla\s+v\d+\.4s"), 4),
    (re.compile(r"^\s*vpdpbusds?\s.*%zmm"), 64),
    (re.compile(r"^\s*vpdpbusds?\s.*%ymm"), 32),
    (re.compile(r"^\s*vpmaddwd\s.*%ymm"), 16),
    (re.compile(r"^\s*vfmadd\d+ps\s.*%zmm"), 16),
    (re.compile(r"^\s*vfmadd\d+ps\s.*%ymm"), 8),
]
STACK = {"aarch64": re.compile(r"\[sp[,\]]"), "x86_64": re.compile(r"\(%rsp\)|\(%rbp\)")}


def macs_of(line):
    return next((n for pattern, n in MACS if pattern.search(line)), 0)


def isa_flags(source):
    """The ISA flags the build gives `source`: CMakeLists.txt's ISA_FLAGS_<suffix> for the suffix ending the file's
    stem (kernels/cpu/int8/qconv3d_neondot.cpp: neondot), ${...} references expanded; none for a baseline file."""
    table = {}
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        for line in f:
            m = re.match(r"\s*set\(ISA_FLAGS_(\w+)\s*(.*?)\)\s*(#.*)?$", line)
            if m:
                table[m.group(1)] = m.group(2)

    def expand(text):
        words = []
        for word in text.split():
            ref = re.fullmatch(r"\$\{ISA_FLAGS_(\w+)\}", word)
            words += expand(table[ref.group(1)]) if ref else [word.strip('"')]
        return [w for w in words if w]

    suffix = re.search(r"_([a-z0-9]+)$", os.path.splitext(os.path.basename(source))[0])
    return expand(table[suffix.group(1)]) if suffix and suffix.group(1) in table else []


def compile_to_asm(kernel, work):
    out = os.path.join(work, os.path.basename(kernel.source) + ".s")
    cmd = [COMPILERS[kernel.arch], "-std=c++17", "-O3", "-DNDEBUG", "-I", ROOT, *isa_flags(kernel.source), "-S",
           "-o", out, os.path.join(ROOT, kernel.source)]
    subprocess.run(cmd, check=True)
    return out


def blocks(asm_path):
    """(function, label, instructions) for every basic block that starts at a local label."""
    fn, label, body = None, None, []
    for raw in open(asm_path):
        line = raw.strip()
        symbol = re.match(r"^([A-Za-z_][\w.$]*):", line)
        local = re.match(r"^(\.L\w+):", line)
        if symbol or local:
            if label:
                yield fn, label, body
            fn = symbol.group(1) if symbol else fn
            label, body = (local.group(1) if local else None), []
        elif line and not line.startswith((".", "//", "#")):
            body.append(line)
    if label:
        yield fn, label, body


STORES = {"aarch64": re.compile(r"^(st[1-4r]|stp|stur)\w*\s"),
          "x86_64": re.compile(r"^v?mov\w*\s.*,\s*-?\w*\(%")}


def hottest_block(asm_path, function, arch):
    """The basic block with the most multiply-adds, among those that store nothing outside the stack (the tiles'
    reduction loops keep their sums in registers; the epilogues that store them, and whose activation polynomials
    also multiply-add, are left out), in a function whose name matches `function`: (function, instructions)."""
    pattern = re.compile(function)
    best = (0, None, [])
    for fn, _, body in blocks(asm_path):
        if not (fn and body and pattern.search(fn)):
            continue
        if any(STORES[arch].match(line) and not STACK[arch].search(line) for line in body):
            continue
        macs = sum(macs_of(line) for line in body)
        if macs > best[0] or (macs == best[0] and macs and len(body) < len(best[2])):
            best = (macs, fn, body)
    return best[1], best[2]


def mca_cycles(arch, cpu, body, work):
    path = os.path.join(work, "loop.s")
    with open(path, "w") as f:
        f.write("\n".join(body) + "\n")
    result = subprocess.run([MCA, f"-mtriple={TRIPLES[arch]}", f"-mcpu={cpu}", "-iterations=500", path],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "llvm-mca failed")
    iterations = int(re.search(r"^Iterations:\s+(\d+)", result.stdout, re.M).group(1))
    cycles = int(re.search(r"^Total Cycles:\s+(\d+)", result.stdout, re.M).group(1))
    return cycles / iterations


def main():
    global MCA
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=sorted(COMPILERS), action="append", help="only these (default: all)")
    parser.add_argument("--show-loop", metavar="KERNEL", help="print the loop cut out of this kernel's assembly")
    args = parser.parse_args()
    MCA = shutil.which("llvm-mca") or shutil.which("llvm-mca-14")
    if not MCA:
        print("skipped: llvm-mca is not installed (Debian: apt install llvm)")
        return
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for kernel in KERNELS:
            if args.arch and kernel.arch not in args.arch:
                continue
            if not shutil.which(COMPILERS[kernel.arch]):
                print(f"skipped {kernel.name}: no {COMPILERS[kernel.arch]}", file=sys.stderr)
                continue
            fn, body = hottest_block(compile_to_asm(kernel, work), kernel.function, kernel.arch)
            if not body:
                print(f"skipped {kernel.name}: no loop found in {kernel.function}", file=sys.stderr)
                continue
            macs = sum(macs_of(line) for line in body)
            stack = sum(1 for line in body if STACK[kernel.arch].search(line))
            if args.show_loop and args.show_loop == kernel.name:
                print(f"{kernel.name}: {fn}\n  " + "\n  ".join(body))
            for cpu in kernel.cpus:
                cycles = mca_cycles(kernel.arch, cpu, body, work)
                rows.append((cpu, kernel.name, len(body), macs, stack, cycles, macs / cycles))
    print("| CPU model | kernel (hottest loop) | instructions | multiply-adds | stack accesses | cycles | MACs/cycle |")
    print("|---|---|---|---|---|---|---|")
    for cpu, name, n, macs, stack, cycles, rate in sorted(rows, key=lambda r: (r[0], r[1])):
        print(f"| {cpu} | {name} | {n} | {macs} | {stack} | {cycles:.1f} | {rate:.1f} |")
    print()
    rate = {(cpu, name): r for cpu, name, *_, r in rows}
    for kernel in KERNELS:
        for cpu in kernel.cpus:
            if kernel.baseline and (cpu, kernel.name) in rate and (cpu, kernel.baseline) in rate:
                print(f"{cpu}: {kernel.name} / {kernel.baseline}: "
                      f"{rate[cpu, kernel.name] / rate[cpu, kernel.baseline]:.2f}x multiply-adds per cycle")


if __name__ == "__main__":
    main()
