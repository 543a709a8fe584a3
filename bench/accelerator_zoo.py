#!/usr/bin/env python
"""Benchmark: the accelerator path on the ResNet-family hub models (and X3D-M), batch 1, random weights.

For each model at its published clip size: vanilla PyTorch eager (the hub model, oneDNN convs), the transmuted
deploy form in torch eager (BatchNorm folded, activations fused), pyvideo's native fp32 program and int8 program
(``transmute_model`` -> ``convert_to_deployable_form`` -> ``compile_native``; int8 through ``quantize_model`` with
two random calibration clips, static per-tensor ranges, no bias correction). Prints milliseconds (median of the
interleaved rounds), the speed-up over vanilla eager, and each program's relative L2 error against vanilla eager.
Random weights say nothing about accuracy; the int8 error only shows the quantization is wired right.
SlowFast takes a list of clips (slow, fast): its programs have one input per clip.

    .venv/bin/python bench/accelerator_zoo.py [--models slow_r50 c2d_r50 ...] [--threads 1 2] [--rounds 3]

With --base TREE (another checkout with its own build), the two builds' programs instead: one long-lived worker per
tree (bench/two_trees.py's Pair) builds each model's programs (same seed, same weights), and the two are asked in
turns for each program's fastest of 3 runs; printed are the medians over --rounds turns and new / base.

    .venv/bin/python bench/accelerator_zoo.py --base /path/to/other/checkout [--models ...] [--threads 1 2] [--rounds 9]
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

import torch

from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import compile_native
from pyvideo.accelerator.quantization import quantize_model
from pyvideo.models import hub
from pyvideo.benchmarks import machine

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import two_trees  # noqa: E402

DEFAULT_MODELS = ["c2d_r50", "i3d_r50", "slow_r50", "slowfast_r50", "r2plus1d_r50", "csn_r101", "x3d_m"]


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).norm() / want.norm().clamp_min(1e-30))


def time_interleaved_ms(variants: dict, rounds: int) -> dict:
    """Median milliseconds of each variant; the variants take turns within each round (load changes on a shared
    machine hit all of them alike)."""
    samples = {label: [] for label in variants}
    with torch.no_grad():
        for fn in variants.values():
            fn()  # warm-up
        for _ in range(rounds):
            for label, fn in variants.items():
                start = time.perf_counter()
                fn()
                samples[label].append(time.perf_counter() - start)
    return {label: 1e3 * statistics.median(values) for label, values in samples.items()}


def prepare(name: str):
    """(vanilla model, deploy form, fp32 program, int8 program, clip)."""
    torch.manual_seed(0)
    model = getattr(hub, name)(pretrained=False).eval()
    shapes = hub.MODEL_METADATA[name].input_shape
    clips = [torch.randn(1, *shape[-4:]) for shape in shapes]
    clip = clips[0] if len(clips) == 1 else clips  # SlowFast: [slow, fast]
    transmuted = copy.deepcopy(model)
    transmute_model(transmuted)
    deploy = convert_to_deployable_form(transmuted, clip).eval()
    calibration = [[torch.randn_like(c) for c in clips] if len(clips) > 1 else torch.randn_like(clip) for _ in range(2)]
    int8 = quantize_model(deploy, calibration, bias_correction=False, dynamic_ranges=False)
    return model, deploy, compile_native(deploy), compile_native(int8), clip


def serve():
    """Pair worker: answers `time MODEL THREADS` with {"fp32": ms, "int8": ms}, each program's fastest of 3 runs
    (the model's programs are built on its first request)."""
    import pyvideo

    built = {}
    print(json.dumps(pyvideo.__file__), flush=True)  # ready: Pair checks the build is this worker's tree
    with torch.no_grad():
        for line in sys.stdin:
            _, name, threads = line.split()
            torch.set_num_threads(int(threads))
            if name not in built:
                _, _, fp32, int8, clip = prepare(name)
                built[name] = (fp32, int8, clip)
            fp32, int8, clip = built[name]
            result = {label: two_trees.best_of_ms(lambda: program(clip))
                      for label, program in (("fp32", fp32), ("int8", int8))}
            print(json.dumps(result), flush=True)


def compare_trees(args) -> None:
    """The programs of two builds, asked in turns (see the module docstring)."""
    pair = two_trees.Pair(__file__, [], args)
    print(f"programs of two builds, batch 1, random weights: medians of {args.rounds} alternating turns' best of 3")
    print(f"  base {pair.trees['base']}\n  new  {pair.trees['new']}")
    print(f"{'model':14} {'thr':>3} {'fp32 base':>10} {'fp32 new':>10} {'new/base':>8} {'int8 base':>10} "
          f"{'int8 new':>10} {'new/base':>8}")
    try:
        for name in args.models:
            for threads in args.threads:
                request = f"time {name} {threads}"
                pair.turns(request, 2)  # build and warm up
                samples = pair.turns(request, args.rounds)
                cells = []
                for label in ("fp32", "int8"):
                    base, new = (statistics.median(s[label] for s in samples[tree]) for tree in ("base", "new"))
                    cells.append(f"{base:10.1f} {new:10.1f} {new / base:8.3f}")
                print(f"{name:14} {threads:>3} {' '.join(cells)}", flush=True)
    finally:
        pair.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", help="repository root of another build: compare its programs with this one's")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    print(machine.describe())  # the CPU these timings come from
    if args.base:
        args.new = two_trees.ROOT
        compare_trees(args)
        return
    previous = torch.get_num_threads()
    columns = ["vanilla eager", "deploy eager", "pyvideo fp32", "pyvideo int8"]
    print("milliseconds (speed-up over vanilla eager), batch 1, random weights; programs from compile_native")
    print(f"{'model':14} {'clip':>24} {'thr':>3} " + " ".join(f"{c:>20}" for c in columns) +
          f" {'fp32 err':>9} {'int8 err':>9}")
    try:
        for name in args.models:
            torch.set_num_threads(max(args.threads))
            model, deploy, fp32, int8, clip = prepare(name)
            with torch.no_grad():
                want = model(clip)
                errors = relative_error(fp32(clip), want), relative_error(int8(clip), want)
            for threads in args.threads:
                torch.set_num_threads(threads)
                times = time_interleaved_ms({"vanilla eager": lambda: model(clip), "deploy eager": lambda: deploy(clip),
                                             "pyvideo fp32": lambda: fp32(clip), "pyvideo int8": lambda: int8(clip)},
                                            args.rounds)
                base = times["vanilla eager"]
                cells = " ".join(f"{times[c]:11.1f} ({base / times[c]:5.2f}x)" for c in columns)
                size = "+".join("x".join(str(d) for d in c.shape[2:]) for c in (clip if isinstance(clip, list) else [clip]))
                print(f"{name:14} {size:>24} {threads:>3} {cells} {errors[0]:9.1e} {errors[1]:9.1e}", flush=True)
    finally:
        torch.set_num_threads(previous)


if __name__ == "__main__":
    main()
