#!/usr/bin/env python
"""Benchmark: pyvideo's native fp32 conv3d kernels on the conv layers of X3D-XS (T=4) and X3D-S (T=13), 160x160
input, batch 1 (and, with --model Slow-R50, Slow-R50's at 8x224x224: stem, 1x1x1, 1x3x3 "spatial" and 3x1x1 "temporal"
convs; with --model SlowFast-fast, SlowFast-R50's fast pathway at 32x224x224, 8 to 256 channels): the pointwise 1x1x1 convs (bias + ReLU epilogue, the "+res" ones with the fused residual add), the
stride-(1,2,2) 1x1x1 shortcut projections, the 1x3x3 stride-(1,2,2) stem conv (3 -> 24 channels) and the 3x3x3
depthwise convs (bias, no activation), each kernel called directly (no op dispatch).

Per layer and thread count it prints, for each variant, a low percentile (--percentile, default the 20th) of all call
times over the interleaved rounds; on a shared machine a median catches preempted calls. One thread is timed in the
calling thread's CPU time, more threads in wall time. Variants:
  pyvideo      the native kernel on channels-last tensors, output allocated per call as torch does (epilogue included)
  torch_cl     F.conv3d on channels_last_3d tensors (oneDNN; conv + bias only, no epilogue)
  matmul       torch.matmul of the same [M, K] x [K, N] (pointwise layers only)
plus the native kernel's share of a 1024x1024 matmul's GFLOP/s (the practical peak) and of the bandwidth of a tensor
copy with the layer's memory footprint (input + output). With --baseline DIR, another build of pyvideo (e.g.
/work/main) runs the same layers in a child process, interleaved round by round with this one, and `speed-up` is
baseline time / this build's time.

With --int8, the int8 dense kernel instead (pyvideo._C.qconv3d_ndhwc: the VNNI / AVX-VNNI / sdot variant or, on
CPUs with AMX-INT8, AMX where it pays; PYVIDEO_AMX=0 keeps AMX out, in the --baseline child too) on the same layers
(depthwise ones left out) with random int8 codes, a residual where the layer has one and ReLU, against the fp32
kernel on the layer: columns int8 / fp32 ms and their ratio, and with --baseline the speed-up over the other build's
int8 kernel. int8 outputs are preallocated (the fp32 column allocates, as above); each layer's int8 result is first
checked against a float64 reference of the integer arithmetic (at most 1 LSB apart).

    .venv/bin/python bench/conv3d_layers.py [--threads 1 2] [--rounds 5] [--baseline /work/main] [--only pointwise]
    PYVIDEO_AMX=0 .venv/bin/python bench/conv3d_layers.py --int8 --model Slow-R50 [--baseline DIR]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F

from pyvideo._native import native
from pyvideo.ops.conv3d import pack_conv3d_weight, pack_depthwise_weight
from pyvideo.ops.quantized_conv3d import pack_quantized_weight
from pyvideo.benchmarks import machine

IDENTITY, RELU = 0, 1


@dataclass(frozen=True)
class Layer:
    model: str
    kind: str  # pointwise | projection | stem | depthwise
    ci: int
    t: int
    h: int
    w: int
    co: int
    kernel: Tuple[int, int, int] = (1, 1, 1)
    stride: Tuple[int, int, int] = (1, 1, 1)
    padding: Tuple[int, int, int] = (0, 0, 0)
    residual: bool = False

    def out_size(self):
        return [(n + 2 * p - k) // s + 1 for n, k, s, p in zip((self.t, self.h, self.w), self.kernel, self.stride,
                                                                   self.padding)]

    @property
    def groups(self) -> int:
        return self.ci if self.kind == "depthwise" else 1

    def flops(self) -> float:
        return 2.0 * self.ci * self.co / self.groups * math.prod(self.out_size()) * math.prod(self.kernel)

    def label(self) -> str:
        res = " +res" if self.residual else ""
        k = "" if self.kind == "pointwise" else f" {self.kind}"
        if self.kind == "depthwise":
            return f"{self.ci}x{self.t}x{self.h}x{self.w} depthwise" + (" stride2" if self.stride[1] == 2 else "")
        s2 = " s2" if self.stride[1] == 2 and self.kind != "projection" else ""
        return f"{self.ci}x{self.t}x{self.h}x{self.w}->{self.co}{res}{k}{s2}"


def x3d_layers(model: str, t: int) -> List[Layer]:
    """The distinct dense conv layers of X3D at 160x160: stage widths 24/48/96/192, inner widths 54/108/216/432."""
    layers = [Layer(model, "stem", 3, t, 160, 160, 24, (1, 3, 3), (1, 2, 2), (0, 1, 1))]
    c_in, h = 24, 80
    for c, inner in ((24, 54), (48, 108), (96, 216), (192, 432)):
        layers.append(Layer(model, "pointwise", c_in, t, h, h, inner))  # first block's conv_a, before the stride
        layers.append(Layer(model, "projection", c_in, t, h, h, c, stride=(1, 2, 2)))
        h = (h - 1) // 2 + 1
        layers.append(Layer(model, "pointwise", inner, t, h, h, c, residual=True))  # conv_c + shortcut + ReLU
        layers.append(Layer(model, "pointwise", c, t, h, h, inner))  # conv_a of the following blocks
        c_in = c
    layers.append(Layer(model, "pointwise", 432, 1, 1, 1, 2048))  # head: pooled features -> 2048
    h = 80
    for inner in (54, 108, 216, 432):  # conv_b: 3x3x3 depthwise, stride (1,2,2) in the first block of a stage
        layers.append(Layer(model, "depthwise", inner, t, h, h, inner, (3, 3, 3), (1, 2, 2), (1, 1, 1)))
        h = (h - 1) // 2 + 1
        layers.append(Layer(model, "depthwise", inner, t, h, h, inner, (3, 3, 3), (1, 1, 1), (1, 1, 1)))
    return layers


def slow_r50_layers(t: int = 8) -> List[Layer]:
    """The distinct conv layers of Slow-R50 (ResNet-50 with temporal 3x1x1 conv_a in res4/res5) at 224x224: the 1x7x7
    stem, then per stage the first block's conv_a (from the stage input), its strided 1x3x3 conv_b and shortcut
    projection, the later blocks' conv_a / conv_b, and conv_c with the residual add. res4/res5's weights (1.6-9.4 MB)
    take the fp32 kernel's blocked loop nest (Conv3dShape::blocked_reduction)."""
    model = "Slow-R50"
    layers = [Layer(model, "stem", 3, t, 224, 224, 64, (1, 7, 7), (1, 2, 2), (0, 3, 3))]
    c_in, h = 64, 56
    for inner, out, temporal, stride in ((64, 256, False, 1), (128, 512, False, 2), (256, 1024, True, 2),
                                         (512, 2048, True, 2)):
        ka, pa = ((3, 1, 1), (1, 0, 0)) if temporal else ((1, 1, 1), (0, 0, 0))
        kind_a = "temporal" if temporal else "pointwise"
        ho = (h - 1) // stride + 1
        layers.append(Layer(model, kind_a, c_in, t, h, h, inner, ka, padding=pa))  # first block's conv_a
        layers.append(Layer(model, "spatial", inner, t, h, h, inner, (1, 3, 3), (1, stride, stride), (0, 1, 1)))
        layers.append(Layer(model, "projection", c_in, t, h, h, out, stride=(1, stride, stride)))
        layers.append(Layer(model, kind_a, out, t, ho, ho, inner, ka, padding=pa))  # later blocks' conv_a
        if stride != 1:
            layers.append(Layer(model, "spatial", inner, t, ho, ho, inner, (1, 3, 3), (1, 1, 1), (0, 1, 1)))
        layers.append(Layer(model, "pointwise", inner, t, ho, ho, out, residual=True))  # conv_c + shortcut + ReLU
        c_in, h = out, ho
    return layers


def make_tensors(layer: Layer):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, layer.ci, layer.t, layer.h, layer.w, generator=g)
    fan_in = layer.ci // layer.groups * math.prod(layer.kernel)
    w = torch.randn(layer.co, layer.ci // layer.groups, *layer.kernel, generator=g) / math.sqrt(fan_in)
    b = torch.randn(layer.co, generator=g)
    out = [1, layer.co] + layer.out_size()
    r = torch.randn(*out, generator=g) if layer.residual else None
    return x, w, b, r


def activation(layer: Layer) -> int:
    """X3D's: ReLU after the dense convs; the depthwise conv is followed by squeeze-excitation, so no activation."""
    return IDENTITY if layer.kind == "depthwise" else RELU


class Native:
    """The native kernel on one layer with preallocated channels-last tensors."""

    def __init__(self, layer: Layer):
        x, w, b, r = make_tensors(layer)
        self.layer, self.x, self.b = layer, x.permute(0, 2, 3, 4, 1).contiguous(), b
        if layer.kind == "depthwise":
            self.w, self.fn = pack_depthwise_weight(w), native().dwconv3d_fused_f32_ndhwc
        else:
            self.w, self.fn = pack_conv3d_weight(w), native().conv3d_f32_ndhwc
        self.r = None if r is None else r.permute(0, 2, 3, 4, 1).contiguous()
        self.out_shape = [1] + layer.out_size() + [layer.co]

    def __call__(self, threads: int):
        # A fresh output per call, as F.conv3d allocates one (its page faults are part of a layer's cost).
        y = torch.empty(self.out_shape)
        self.fn(self.x, self.w, self.b, self.r, y, list(self.layer.stride), list(self.layer.padding),
                activation(self.layer), threads)
        return y


class NativeInt8:
    """The int8 dense kernel on one layer: random int8 codes (input zero point 3), int8 weights, per-channel dequant
    scales, ReLU, the residual (zero point 0) where the layer has one; preallocated channels-last buffers."""

    INPUT_ZERO_POINT, OUTPUT_SCALE, OUTPUT_ZERO_POINT, RESIDUAL_SCALE = 3, 0.05, -2, 0.1

    def __init__(self, layer: Layer):
        g = torch.Generator().manual_seed(0)
        self.layer = layer
        self.x = torch.randint(-128, 128, (1, layer.t, layer.h, layer.w, layer.ci), dtype=torch.int8, generator=g)
        self.w = torch.randint(-127, 128, (layer.co, layer.ci, *layer.kernel), dtype=torch.int8, generator=g)
        self.packed, self.sums = pack_quantized_weight(self.w)
        self.bias = torch.randint(-5000, 5000, (layer.co,), dtype=torch.int32, generator=g)
        fan_in = layer.ci * math.prod(layer.kernel)
        self.dequant = torch.rand(layer.co, generator=g) * 0.5 / (64 * math.sqrt(fan_in)) + 1e-4
        out = [1] + layer.out_size() + [layer.co]
        self.r = (torch.randint(-128, 128, out, dtype=torch.int8, generator=g) if layer.residual else None)
        self.y = torch.empty(out, dtype=torch.int8)

    def __call__(self, threads: int):
        native().qconv3d_ndhwc(self.x, self.packed, self.sums, self.bias, self.dequant, self.r, self.y,
                               list(self.layer.stride), list(self.layer.padding), self.INPUT_ZERO_POINT,
                               self.RESIDUAL_SCALE, 0, RELU, self.OUTPUT_SCALE, self.OUTPUT_ZERO_POINT, threads)
        return self.y

    def reference(self) -> torch.Tensor:
        """The same arithmetic in float64 (exact integer sums), NDHWC int8."""
        x = self.x.permute(0, 4, 1, 2, 3).double() - self.INPUT_ZERO_POINT
        acc = F.conv3d(x, self.w.double(), None, self.layer.stride, self.layer.padding) + self.bias.double().view(
            1, -1, 1, 1, 1)
        v = acc.float() * self.dequant.view(1, -1, 1, 1, 1)
        if self.r is not None:
            v = v + self.r.permute(0, 4, 1, 2, 3).float() * self.RESIDUAL_SCALE
        q = torch.round(torch.relu(v) / self.OUTPUT_SCALE) + self.OUTPUT_ZERO_POINT
        return q.clamp(-128, 127).to(torch.int8).permute(0, 2, 3, 4, 1)


def call_times(fn, repeat: int, warmup: int = 2) -> List[float]:
    """Seconds of each of `repeat` calls (at least 20 ms worth) after warm-up. With one thread the calling thread's CPU
    time, which time slices lost to other processes do not inflate; with more, wall time."""
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < repeat or sum(times) < 0.02:
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return times


def low_percentile(times: List[float], q: float = 0.2) -> float:
    return sorted(times)[int(q * (len(times) - 1))]


def serve(int8: bool):
    """Child mode for --baseline: read `threads layer_index repeat` lines, answer the call times."""
    layers = all_layers()
    cache = {}
    for line in sys.stdin:
        threads, index, repeat = map(int, line.split())
        torch.set_num_threads(threads)
        if index not in cache:
            cache[index] = (NativeInt8 if int8 else Native)(layers[index])
        fn = cache[index]
        print(json.dumps(call_times(lambda: fn(threads), repeat)), flush=True)


def slowfast_fast_layers(t: int = 32) -> List[Layer]:
    """The distinct conv layers of SlowFast-R50's fast pathway at 32x224x224 (a ResNet-50 of 1/8 the width whose conv_a
    are all temporal 3x1x1): the 5x7x7 stem (3 -> 8 channels), then per stage the first block's conv_a, its conv_b
    (strided from res3), the shortcut projection, the later blocks' conv_a and conv_b, and conv_c with the residual."""
    model = "SlowFast-fast"
    layers = [Layer(model, "stem", 3, t, 224, 224, 8, (5, 7, 7), (1, 2, 2), (2, 3, 3))]
    c_in, h = 8, 56
    for inner, out, stride in ((8, 32, 1), (16, 64, 2), (32, 128, 2), (64, 256, 2)):
        ho = (h - 1) // stride + 1
        layers.append(Layer(model, "temporal", c_in, t, h, h, inner, (3, 1, 1), padding=(1, 0, 0)))
        layers.append(Layer(model, "spatial", inner, t, h, h, inner, (1, 3, 3), (1, stride, stride), (0, 1, 1)))
        layers.append(Layer(model, "projection", c_in, t, h, h, out, stride=(1, stride, stride)))
        layers.append(Layer(model, "temporal", out, t, ho, ho, inner, (3, 1, 1), padding=(1, 0, 0)))
        if stride != 1:
            layers.append(Layer(model, "spatial", inner, t, ho, ho, inner, (1, 3, 3), (1, 1, 1), (0, 1, 1)))
        layers.append(Layer(model, "pointwise", inner, t, ho, ho, out, residual=True))
        c_in, h = out, ho
    return layers


def all_layers() -> List[Layer]:
    return x3d_layers("X3D-XS", 4) + x3d_layers("X3D-S", 13) + slow_r50_layers() + slowfast_fast_layers()


DEFAULT_MODELS = ("X3D-XS", "X3D-S")  # Slow-R50's and SlowFast's layers (seconds per call) run when asked for


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each times every variant")
    parser.add_argument("--repeat", type=int, default=7, help="calls per variant and round")
    parser.add_argument("--baseline", default=None, help="repository root of another pyvideo build to compare")
    parser.add_argument("--only", default=None,
                        choices=["pointwise", "projection", "stem", "depthwise", "spatial", "temporal"])
    parser.add_argument("--model", default=None, choices=["X3D-XS", "X3D-S", "Slow-R50", "SlowFast-fast"],
                        help="one model's layers (default: X3D-XS and X3D-S)")
    parser.add_argument("--isa", default=None, help="force a kernel ISA level (scalar, avx2, avx512, neon)")
    parser.add_argument("--percentile", type=float, default=20,
                        help="which percentile of the call times to report (0: the fastest call; on a loaded machine "
                             "multi-threaded calls are often preempted)")
    parser.add_argument("--int8", action="store_true", help="the int8 dense kernel against the fp32 one (see above)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.isa:
        native().set_isa(args.isa)
    if args.serve:
        return serve(args.int8)
    print(machine.describe())  # the CPU these timings come from
    layers = all_layers()
    chosen = [i for i, l in enumerate(layers)
              if (args.only is None or l.kind == args.only) and
              (l.model == args.model if args.model else l.model in DEFAULT_MODELS) and
              not (args.int8 and l.kind == "depthwise")]
    child = None
    if args.baseline:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(args.baseline))
        isa = ["--isa", args.isa] if args.isa else []
        isa += ["--int8"] if args.int8 else []
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"] + isa, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, env=env, cwd=os.path.abspath(args.baseline))

    def baseline_time(threads, index):
        child.stdin.write(f"{threads} {index} {args.repeat}\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    print(f"kernel ISA: {native().get_isa()}, int8 dense variant: {native().qconv3d_variant()}, "
          f"torch {torch.__version__}" + (f", baseline: {args.baseline}" if child else ""))
    header = (f"{'model':8} {'layer':34} {'thr':>3} {'pyvideo':>8} {'torch_cl':>8} {'matmul':>7} {'vs cl':>6} "
              f"{'vs mm':>6} {'%peak':>6} {'%copy':>6}" + (f" {'base':>8} {'speed-up':>8}" if child else ""))
    previous = torch.get_num_threads()
    summary = {}
    try:
        if args.int8:
            return int8_main(args, layers, chosen, child, baseline_time)
        for threads in args.threads:
            torch.set_num_threads(threads)
            a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
            peak = 2 * 1024**3 / low_percentile(call_times(lambda: torch.mm(a, b), 30)) / 1e9
            print(f"\n{threads} thread(s): matmul peak {peak:.0f} GFLOP/s; times in ms")
            print(header + "\n" + "-" * len(header))
            for index in chosen:
                layer = layers[index]
                fn = Native(layer)
                x, w, b, r = make_tensors(layer)
                with torch.inference_mode():
                    ref = F.conv3d(x, w, b, layer.stride, layer.padding, 1, layer.groups)
                    ref = ref if r is None else ref + r
                    ref = ref if activation(layer) == IDENTITY else torch.relu(ref)
                    got = fn(threads).permute(0, 4, 1, 2, 3)
                    if not torch.allclose(got, ref, rtol=1e-4, atol=1e-4):
                        raise AssertionError(f"native kernel disagrees with PyTorch on {layer}")
                    x_cl, w_cl = x.contiguous(memory_format=torch.channels_last_3d), w.contiguous(
                        memory_format=torch.channels_last_3d)
                    m = math.prod(layer.out_size())
                    a2, b2 = torch.randn(m, layer.ci), torch.randn(layer.ci, layer.co)
                    footprint = (x.numel() + ref.numel()) // 2
                    src, dst = torch.randn(footprint), torch.empty(footprint)
                    variants = {
                        "native": lambda: fn(threads),
                        "torch_cl": lambda: F.conv3d(x_cl, w_cl, b, layer.stride, layer.padding, 1, layer.groups),
                        "copy": lambda: dst.copy_(src),
                    }
                    if layer.kind == "pointwise":
                        variants["matmul"] = lambda: torch.matmul(a2, b2)
                    samples = {k: [] for k in variants}
                    if child:
                        samples["base"] = []
                    for _ in range(args.rounds):
                        for k, f in variants.items():
                            samples[k] += call_times(f, args.repeat)
                        if child:
                            samples["base"] += baseline_time(threads, index)
                t = {k: low_percentile(v, args.percentile / 100) for k, v in samples.items()}
                bytes_moved = 4 * (x.numel() + w.numel() + ref.numel() * (2 if r is not None else 1))
                copy_gbps = 2 * 4 * footprint / t["copy"] / 1e9
                gflops = layer.flops() / t["native"] / 1e9
                row = dict(vs_cl=t["torch_cl"] / t["native"])
                line = (f"{layer.model:8} {layer.label():34} {threads:>3} {t['native'] * 1e3:8.3f} "
                        f"{t['torch_cl'] * 1e3:8.3f} ")
                if "matmul" in t:
                    row["vs_mm"] = t["matmul"] / t["native"]
                    line += f"{t['matmul'] * 1e3:7.3f} {row['vs_cl']:5.2f}x {row['vs_mm']:5.2f}x "
                else:
                    line += f"{'-':>7} {row['vs_cl']:5.2f}x {'-':>6} "
                line += f"{100 * gflops / peak:5.1f}% {100 * bytes_moved / t['native'] / 1e9 / copy_gbps:5.1f}%"
                if child:
                    row["speedup"] = t["base"] / t["native"]
                    line += f" {t['base'] * 1e3:8.3f} {row['speedup']:7.2f}x"
                print(line, flush=True)
                summary.setdefault(threads, []).append((layer, row))
    finally:
        torch.set_num_threads(previous)
        if child:
            child.stdin.close()
            child.wait()
    print()
    for threads, rows in summary.items():
        for kind in ("pointwise", "projection", "stem", "depthwise", "spatial", "temporal"):
            sel = [row for layer, row in rows if layer.kind == kind]
            if not sel:
                continue
            text = f"geomean {kind:10} @ {threads} thread(s): {geomean([s['vs_cl'] for s in sel]):.2f}x vs torch_cl"
            if kind == "pointwise":
                text += f", {geomean([s['vs_mm'] for s in sel]):.2f}x vs matmul"
            if child:
                text += f", {geomean([s['speedup'] for s in sel]):.2f}x speed-up over the baseline"
            print(text)


def int8_main(args, layers, chosen, child, baseline_time):
    """--int8: the rows and geomeans (main restores the thread count and closes the baseline child)."""
    header = (f"{'model':8} {'layer':34} {'thr':>3} {'int8':>8} {'fp32':>8} {'fp32/i8':>7}" +
              (f" {'base':>8} {'speed-up':>8}" if child else ""))
    summary = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n{threads} thread(s); times in ms\n" + header + "\n" + "-" * len(header))
        for index in chosen:
            layer = layers[index]
            q, f = NativeInt8(layer), Native(layer)
            diff = (q(threads).int() - q.reference().int()).abs().max().item()
            if diff > 1:
                raise AssertionError(f"int8 kernel is {diff} LSB from the reference on {layer}")
            samples = {"int8": [], "fp32": []} | ({"base": []} if child else {})
            for _ in range(args.rounds):
                samples["int8"] += call_times(lambda: q(threads), args.repeat)
                samples["fp32"] += call_times(lambda: f(threads), args.repeat)
                if child:
                    samples["base"] += baseline_time(threads, index)
            t = {k: low_percentile(v, args.percentile / 100) for k, v in samples.items()}
            row = dict(vs_fp32=t["fp32"] / t["int8"])
            line = (f"{layer.model:8} {layer.label():34} {threads:>3} {t['int8'] * 1e3:8.3f} {t['fp32'] * 1e3:8.3f} "
                    f"{row['vs_fp32']:6.2f}x")
            if child:
                row["speedup"] = t["base"] / t["int8"]
                line += f" {t['base'] * 1e3:8.3f} {row['speedup']:7.2f}x"
            print(line, flush=True)
            summary.setdefault(threads, []).append(row)
    print()
    for threads, rows in summary.items():
        text = f"geomean @ {threads} thread(s): int8 {geomean([r['vs_fp32'] for r in rows]):.2f}x the fp32 kernel's speed"
        if child:
            text += f", {geomean([r['speedup'] for r in rows]):.2f}x speed-up over the baseline"
        print(text)


if __name__ == "__main__":
    main()
