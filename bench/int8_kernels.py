#!/usr/bin/env python
"""Benchmark: pyvideo's native int8 conv3d kernels vs its native fp32 kernels, layer by layer, on the convolutions
of X3D-XS (batch 1, 3x4x160x160 input; --model s: X3D-S, the same layers on 13 frames), at 1 and 2 threads.

Both sides run through the pyvideo._C bindings on channels-last buffers prepared once and handed over as DLPack
capsules made once (no layout copies, no torch op dispatch, no per-call __dlpack__), so the ratio is the kernels'
own. Variants are timed interleaved (fp32 sample, int8 sample, repeat; each sample loops ~2 ms). Each side keeps
its fastest sample by default: on a shared machine the other samples measure the neighbours as much as the kernel
(--stat median for the median). Per layer it prints fp32 / int8 time (>1: int8 is faster); per layer kind, the ratio
of the summed times weighted by how often the layer occurs in X3D-XS; and the geometric mean over layers.

    .venv/bin/python bench/int8_kernels.py [--threads 1 2] [--repeat 25] [--stat min|median] [--model xs|s]
                                           [--activation swish] [--kinds depthwise pointwise spatial] [--amx]

--amx (CPUs with AMX-INT8): instead of fp32 vs int8, the int8 dense kernels with AMX tiles turned off
(PYVIDEO_AMX=0: AVX512-VNNI) vs on, per pointwise and spatial layer, then the whole int8 X3D program
(compile_native(quantize_model(deploy))) off vs on, outputs checked equal; printed ratios are off / on (>1: AMX is
faster). The switch is flipped between samples (outside the timed loops) by refilling the kernel table.

--programs: instead of the layers, the model's whole compile_native programs, fp32 against int8 (random weights,
int8 calibrated on two random clips), the median of interleaved runs and each program's time by step kind.
"""
import argparse
import math
import os
import statistics
import time

import torch
from torch.utils.dlpack import to_dlpack

from pyvideo import _native
from pyvideo.benchmarks import machine

# (kind, name, count in X3D-XS, C_in, C_out, (T, H, W), kernel, stride, padding); depthwise layers have C_in == C_out.
X3D_XS_LAYERS = [
    ("spatial", "stem 1x3x3 s2", 1, 3, 24, (4, 160, 160), (1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ("depthwise", "stem 5x1x1", 1, 24, 24, (4, 80, 80), (5, 1, 1), (1, 1, 1), (2, 0, 0)),
    ("pointwise", "s1 a 24->54", 1, 24, 54, (4, 80, 80), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("depthwise", "s1 b s2", 1, 54, 54, (4, 80, 80), (3, 3, 3), (1, 2, 2), (1, 1, 1)),
    ("pointwise", "s1 c 54->24", 3, 54, 24, (4, 40, 40), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("spatial", "s1 proj s2", 1, 24, 24, (4, 80, 80), (1, 1, 1), (1, 2, 2), (0, 0, 0)),
    ("pointwise", "s1 a 24->54", 2, 24, 54, (4, 40, 40), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("depthwise", "s1 b", 2, 54, 54, (4, 40, 40), (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    ("pointwise", "s2 a 24->108", 1, 24, 108, (4, 40, 40), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("depthwise", "s2 b s2", 1, 108, 108, (4, 40, 40), (3, 3, 3), (1, 2, 2), (1, 1, 1)),
    ("pointwise", "s2 c 108->48", 5, 108, 48, (4, 20, 20), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("spatial", "s2 proj s2", 1, 24, 48, (4, 40, 40), (1, 1, 1), (1, 2, 2), (0, 0, 0)),
    ("pointwise", "s2 a 48->108", 4, 48, 108, (4, 20, 20), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("depthwise", "s2 b", 4, 108, 108, (4, 20, 20), (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    ("pointwise", "s3 a 48->216", 1, 48, 216, (4, 20, 20), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("depthwise", "s3 b s2", 1, 216, 216, (4, 20, 20), (3, 3, 3), (1, 2, 2), (1, 1, 1)),
    ("pointwise", "s3 c 216->96", 11, 216, 96, (4, 10, 10), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("spatial", "s3 proj s2", 1, 48, 96, (4, 20, 20), (1, 1, 1), (1, 2, 2), (0, 0, 0)),
    ("pointwise", "s3 a 96->216", 10, 96, 216, (4, 10, 10), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("depthwise", "s3 b", 10, 216, 216, (4, 10, 10), (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    ("pointwise", "s4 a 96->432", 1, 96, 432, (4, 10, 10), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("depthwise", "s4 b s2", 1, 432, 432, (4, 10, 10), (3, 3, 3), (1, 2, 2), (1, 1, 1)),
    ("pointwise", "s4 c 432->192", 7, 432, 192, (4, 5, 5), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("spatial", "s4 proj s2", 1, 96, 192, (4, 10, 10), (1, 1, 1), (1, 2, 2), (0, 0, 0)),
    ("pointwise", "s4 a 192->432", 6, 192, 432, (4, 5, 5), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("depthwise", "s4 b", 6, 432, 432, (4, 5, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    ("pointwise", "head 192->432", 1, 192, 432, (4, 5, 5), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
    ("pointwise", "head 432->2048", 1, 432, 2048, (1, 1, 1), (1, 1, 1), (1, 1, 1), (0, 0, 0)),
]


def out_size(size, kernel, stride, padding):
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, padding))


ACTIVATIONS = {"identity": 0, "relu": 1, "swish": 2, "hswish": 3, "sigmoid": 4}


def make_calls(kind, ci, co, size, kernel, stride, padding, activation=None):
    """(fp32 call, int8 call) on random data of this layer's shape; both write into preallocated outputs. The
    activation (a code of ACTIVATIONS) defaults to identity for depthwise layers and relu for the others."""
    act = activation if activation is not None else (0 if kind == "depthwise" else 1)
    lib = _native.native()
    g = torch.Generator().manual_seed(0)
    # Every tensor goes in as a DLPack capsule made here, once: the bindings read a capsule without consuming it, so
    # one serves every call. Passed as tensors, each call paid Tensor.__dlpack__ per argument (~3 us each here), more
    # for int8's five tensors than fp32's three, which skewed the small layers' ratios (the ops themselves pass
    # torch.utils.dlpack.to_dlpack capsules, ~10x cheaper).
    to = out_size(size, kernel, stride, padding)
    x_f = torch.randn((1, *size, ci), generator=g)
    x_q = torch.randint(-128, 128, (1, *size, ci), generator=g, dtype=torch.int8)
    y_f = torch.empty((1, *to, co))
    y_q = torch.empty((1, *to, co), dtype=torch.int8)
    bias_f = torch.randn(co, generator=g)
    bias_q = torch.randint(-1000, 1000, (co,), generator=g, dtype=torch.int32)
    bias_qf = bias_q.float()
    dequant = torch.full((co,), 1e-4)
    stride, padding = list(stride), list(padding)
    x_f, x_q, y_f, y_q, bias_f, bias_q, bias_qf, dequant = map(
        to_dlpack, (x_f, x_q, y_f, y_q, bias_f, bias_q, bias_qf, dequant))
    if kind == "depthwise":
        w_f = to_dlpack(torch.randn((*kernel, co), generator=g))
        w_q = to_dlpack(torch.randint(-127, 128, (*kernel, co), generator=g, dtype=torch.int8))

        def fp32(threads):
            lib.dwconv3d_fused_f32_ndhwc(x_f, w_f, bias_f, None, y_f, stride, padding, act, threads)

        def int8(threads):
            lib.qdwconv3d_ndhwc(x_q, w_q, bias_q, bias_qf, dequant, None, y_q, stride, padding, 3, 1.0, 0, act,
                                0.05, 0, threads)
    else:
        w_f = to_dlpack(torch.randn((*kernel, ci, co), generator=g))
        w_q = torch.randint(-127, 128, (*kernel, (ci + 3) // 4, co, 4), generator=g, dtype=torch.int8)
        w_sum = to_dlpack(w_q.to(torch.int32).sum(dim=(0, 1, 2, 3, 5)).to(torch.int32))
        w_q = to_dlpack(w_q)

        def fp32(threads):
            lib.conv3d_f32_ndhwc(x_f, w_f, bias_f, None, y_f, stride, padding, act, threads)

        def int8(threads):
            lib.qconv3d_ndhwc(x_q, w_q, w_sum, bias_q, dequant, None, y_q, stride, padding, 3, 1.0, 0, act, 0.05, 0,
                              threads)
    return fp32, int8


def time_pair(calls, threads, repeat, stat, setups=None):
    """Seconds per call of each callable (`stat` over samples), timed interleaved; each sample loops ~2 ms.
    setups[i] (untimed) runs before every sample of calls[i]."""
    setups = setups or [lambda: None] * len(calls)
    for c, setup in zip(calls, setups):
        setup()
        c(threads)
    loops = []
    for c, setup in zip(calls, setups):
        setup()
        t0 = time.perf_counter()
        c(threads)
        loops.append(max(1, int(2e-3 / max(time.perf_counter() - t0, 1e-7))))
    samples = [[] for _ in calls]
    for _ in range(repeat):
        for c, n, s, setup in zip(calls, loops, samples, setups):
            setup()
            t0 = time.perf_counter()
            for _ in range(n):
                c(threads)
            s.append((time.perf_counter() - t0) / n)
    return [stat(s) for s in samples]


def use_amx(on):
    """Refill the kernel table with AMX allowed or not (PYVIDEO_AMX is read at every fill)."""
    os.environ["PYVIDEO_AMX"] = "1" if on else "0"
    _native.native().set_isa("avx512")


def amx_main(args, layers, stat):
    lib = _native.native()
    if "amx_int8" not in lib.cpu_features().split() or "avx512" not in lib.supported_isas():
        raise SystemExit(f"--amx needs a CPU (and OS) with AMX-INT8; this one has: {lib.cpu_features()}")
    use_amx(True)
    print(f"int8 dense with AMX: {lib.qconv3d_variant()}; without: ", end="")
    use_amx(False)
    print(lib.qconv3d_variant())
    setups = [lambda: use_amx(False), lambda: use_amx(True)]
    header = (f"{'kind':10} {'layer':15} {'CixTxHxW':15} {'Co':>5} {'x':>3} {'thr':>3} {'vnni ms':>8} {'amx ms':>8} "
              f"{'vnni/amx':>8}")
    print(f"per-layer time: {args.stat} of {args.repeat} interleaved samples\n{header}\n{'-' * len(header)}")
    for threads in args.threads:
        totals = [0.0, 0.0]
        for kind, name, count, ci, co, size, kernel, stride, padding in layers:
            if kind == "depthwise":
                continue
            _, int8 = make_calls(kind, ci, co, size, kernel, stride, padding,
                                 None if args.activation is None else ACTIVATIONS[args.activation])
            off, on = time_pair([int8, int8], threads, args.repeat, stat, setups)
            totals[0] += count * off
            totals[1] += count * on
            print(f"{kind:10} {name:15} {ci}x{'x'.join(map(str, size)):12} {co:5d} {count:3d} {threads:3d} "
                  f"{off * 1e3:8.3f} {on * 1e3:8.3f} {off / on:7.2f}x")
        print(f"  {threads} thr  dense layers weighted by count: vnni {totals[0] * 1e3:.2f} ms  amx "
              f"{totals[1] * 1e3:.2f} ms  ratio {totals[0] / totals[1]:.2f}x (includes each call's ~3 us in the "
              f"binding)")
    program_main(args, setups)


def x3d_programs(model_size):
    """A clip, X3D's deploy form (random weights, seed 0) and its int8 compile_native program (calibrated on two
    random clips): what --amx's and --programs' whole-program timings run."""
    from pyvideo.accelerator.deployment import convert_to_deployable_form
    from pyvideo.accelerator.native import compile_native
    from pyvideo.accelerator.quantization import quantize_model
    from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

    shape = (1, 3, 4 if model_size == "xs" else 13, 160, 160)
    torch.manual_seed(0)
    model = create_x3d(expansion=model_size.upper()).eval()
    x = torch.randn(*shape)
    deploy = convert_to_deployable_form(model, x).eval()
    return x, deploy, compile_native(quantize_model(deploy, [torch.randn(*shape) for _ in range(2)]))


def profiled_run(program, x, best, keep=lambda kind: True):
    """Runs a compile_native program once with profiling on; folds its seconds per step kind (kinds passing `keep`)
    into `best` as minima over runs."""
    native_program = program.native_program.program
    native_program.set_profiling(True)
    program(x)
    native_program.set_profiling(False)
    totals = {}
    for step in native_program.last_profile():
        if keep(step["kind"]):
            totals[step["kind"]] = totals.get(step["kind"], 0.0) + step["seconds"]
    for kind, seconds in totals.items():
        best[kind] = min(best.get(kind, seconds), seconds)


def program_main(args, setups):
    """The whole int8 program, AMX off vs on: median of interleaved runs, and the outputs compared."""
    x, _, program = x3d_programs(args.model)
    previous = torch.get_num_threads()
    for threads in args.threads:
        torch.set_num_threads(threads)
        outputs, samples = [], [[], []]
        with torch.no_grad():
            for setup in setups:
                setup()
                outputs.append(program(x))
            for _ in range(args.repeat):
                for setup, s in zip(setups, samples):
                    setup()
                    t0 = time.perf_counter()
                    program(x)
                    s.append(time.perf_counter() - t0)
        off, on = (statistics.median(s) for s in samples)
        print(f"  {threads} thr  whole X3D-{args.model.upper()} int8 program (median of {args.repeat}): vnni "
              f"{off * 1e3:.2f} ms  amx {on * 1e3:.2f} ms  ratio {off / on:.2f}x  outputs equal: "
              f"{torch.equal(outputs[0], outputs[1])}")
        # the program's own per-step timings: its dense int8 steps (pointwise and others), best of the repeats
        dense = [{}, {}]
        with torch.no_grad():
            for _ in range(args.repeat):
                for setup, kinds in zip(setups, dense):
                    setup()
                    profiled_run(program, x, kinds,
                                 lambda kind: kind.startswith("quantized_conv/") and "depthwise" not in kind)
        for kind in sorted(dense[0]):
            print(f"  {threads} thr    {kind:26} steps (best of {args.repeat}): vnni {dense[0][kind] * 1e3:.2f} ms  "
                  f"amx {dense[1][kind] * 1e3:.2f} ms  ratio {dense[0][kind] / dense[1][kind]:.2f}x")
    torch.set_num_threads(previous)
    use_amx(True)


def programs_main(args):
    """--programs: the model's whole fp32 and int8 compile_native programs, timed interleaved (median), then each
    program's time by step kind (its own profile, best of the repeats)."""
    from pyvideo.accelerator.native import compile_native

    x, deploy, int8 = x3d_programs(args.model)
    programs = {"fp32": compile_native(deploy), "int8": int8}
    previous = torch.get_num_threads()
    for threads in args.threads:
        torch.set_num_threads(threads)
        samples = {name: [] for name in programs}
        kinds = {name: {} for name in programs}
        with torch.no_grad():
            for program in programs.values():
                program(x)
            for _ in range(args.repeat):
                for name, program in programs.items():
                    t0 = time.perf_counter()
                    program(x)
                    samples[name].append(time.perf_counter() - t0)
            for name, program in programs.items():
                for _ in range(args.repeat):
                    profiled_run(program, x, kinds[name])
        fp32_s, int8_s = (statistics.median(samples[name]) for name in programs)
        print(f"  {threads} thr  whole X3D-{args.model.upper()} programs (median of {args.repeat}): fp32 "
              f"{fp32_s * 1e3:.2f} ms  int8 {int8_s * 1e3:.2f} ms  ratio {fp32_s / int8_s:.2f}x")
        for name in programs:
            steps = sorted(kinds[name].items(), key=lambda kv: -kv[1])
            print(f"  {threads} thr    {name} by step kind (best of {args.repeat}): "
                  + ", ".join(f"{kind} {seconds * 1e3:.2f}" for kind, seconds in steps if seconds >= 1e-4))
    torch.set_num_threads(previous)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--stat", choices=["min", "median"], default="min")
    parser.add_argument("--kinds", nargs="+", default=["depthwise", "pointwise", "spatial"])
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default=None,
                        help="one fused activation for every layer (default: identity for depthwise, relu else)")
    parser.add_argument("--model", choices=["xs", "s"], default="xs",
                        help="X3D-XS (4 frames) or X3D-S (13 frames: every layer's T is 13)")
    parser.add_argument("--amx", action="store_true", help="AMX off vs on instead of fp32 vs int8 (see above)")
    parser.add_argument("--programs", action="store_true",
                        help="the model's whole fp32 and int8 native programs instead of its layers")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    lib = _native.native()
    print(f"kernel ISA: {lib.get_isa()}  int8 dense: {lib.qconv3d_variant()}  (cpu: {lib.cpu_features()})")
    frames = 4 if args.model == "xs" else 13
    layers = [(kind, name, count, ci, co, (frames if size[0] > 1 else 1, *size[1:]), kernel, stride, padding)
              for kind, name, count, ci, co, size, kernel, stride, padding in X3D_XS_LAYERS if kind in args.kinds]
    model = f"X3D-{args.model.upper()}"
    stat = min if args.stat == "min" else statistics.median
    if args.amx:
        return amx_main(args, layers, stat)
    if args.programs:
        return programs_main(args)
    print(f"per-layer time: {args.stat} of {args.repeat} interleaved samples")
    header = (f"{'kind':10} {'layer':15} {'CixTxHxW':15} {'Co':>5} {'x':>3} {'thr':>3} {'fp32 ms':>8} {'int8 ms':>8} "
              f"{'fp32/int8':>9}")
    print(header)
    print("-" * len(header))
    for threads in args.threads:
        ratios, totals = [], {}
        for kind, name, count, ci, co, size, kernel, stride, padding in layers:
            calls = make_calls(kind, ci, co, size, kernel, stride, padding,
                               None if args.activation is None else ACTIVATIONS[args.activation])
            fp32_s, int8_s = time_pair(calls, threads, args.repeat, stat)
            ratios.append(fp32_s / int8_s)
            f, q = totals.get(kind, (0.0, 0.0))
            totals[kind] = (f + count * fp32_s, q + count * int8_s)
            dims = f"{ci}x{size[0]}x{size[1]}x{size[2]}"
            print(f"{kind:10} {name:15} {dims:15} {co:5d} {count:3d} {threads:3d} {fp32_s * 1e3:8.3f} "
                  f"{int8_s * 1e3:8.3f} {fp32_s / int8_s:8.2f}x")
        for kind, (f, q) in totals.items():
            print(f"  {threads} thr  {kind:10} {model} total: fp32 {f * 1e3:7.2f} ms  int8 {q * 1e3:7.2f} ms  "
                  f"ratio {f / q:.2f}x")
        f_all = sum(f for f, _ in totals.values())
        q_all = sum(q for _, q in totals.values())
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        fp32_call, int8_call = [], []
        for kind in ("depthwise", "pointwise"):
            # a 1-voxel layer: what a call costs besides the kernel's work (argument checks, dispatch)
            f, q = time_pair(make_calls(kind, 4, 4, (1, 1, 1), (1, 1, 1), (1, 1, 1), (0, 0, 0)), threads, args.repeat,
                             stat)
            fp32_call.append(f"{kind} {f * 1e6:.1f}")
            int8_call.append(f"{kind} {q * 1e6:.1f}")
        print(f"  {threads} thr  per-call overhead (us, 1-voxel layer): fp32 {', '.join(fp32_call)}; "
              f"int8 {', '.join(int8_call)}")
        print(f"  {threads} thr  all conv layers: fp32 {f_all * 1e3:7.2f} ms  int8 {q_all * 1e3:7.2f} ms  "
              f"ratio {f_all / q_all:.2f}x   geomean over layers {geomean:.2f}x")


if __name__ == "__main__":
    main()
