"""Cost of dynamic (per-clip) int8 activation ranges in compile_native programs, one build against another: EfficientX3d-XS
at batch 1 as an fp32 program, a static int8 program, quantize_model's defaults (a tensor is dynamic where the
calibration batches' scales differ by more than 3x) and every eligible range dynamic (dynamic_ranges=0, the cost
bound), timed interleaved at 1 and 2 threads, plus the share of the all-dynamic program its dynamic_quantize steps
(a min/max pass and a quantize pass per tensor) take, from the program's profile.

Model: random weights (seed 0) calibrated on two random batches, or with --trained PATH a 12-class state_dict saved
by `bench/int8_agreement.py --seed S --save-trained PATH`, calibrated on that script's calibration clips of the same
seed (--seed; needs ../shared/data) and run on a held-out clip.
One long-lived worker process per tree (bench/two_trees.py's Pair) builds the programs once; the two are asked in
turns, alternating which goes first, for a sample of each program (the best of 3 runs). Printed: the median over
rounds of each variant, new/base ratios, and fp32/int8 speed ratios within each tree.
--thresholds 3,2,1.5 adds an int8 program per listed dynamic_ranges threshold (the speed side of
`bench/int8_agreement.py --thresholds`); each int8 variant's count of dynamic readers is printed.
Run:  .venv/bin/python bench/int8_dynamic.py --base /path/to/other/tree --new . [--rounds 15] [--trained PATH --seed S]
          [--thresholds 3,2,1.5]
      (without --base / --new: this tree against itself, the noise floor)
"""
import argparse
import json
import os
import statistics
import sys

import two_trees
from pyvideo.benchmarks import machine

VARIANTS = ("fp32", "int8 static", "int8 defaults", "int8 all dynamic")


def variants(thresholds):
    return VARIANTS + tuple(f"int8 dynamic > {t:g}x" for t in thresholds)


def build_programs(trained, seed, thresholds=()):
    import torch

    from pyvideo.accelerator.deployment import convert_to_deployable_form
    from pyvideo.accelerator.native import compile_native
    from pyvideo.accelerator.quantization import quantize_model
    from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

    torch.manual_seed(seed)
    if trained:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import int8_agreement as agreement

        videos = agreement.load_videos()
        ranges = agreement.class_ranges(videos)
        held_out, _ = agreement.held_out_set(videos, ranges)
        calibration = agreement.calibration_set(videos, ranges, torch.Generator().manual_seed(seed))
        model = create_x3d(expansion="XS", num_classes=len(ranges), dropout=0.2)
        model.load_state_dict(torch.load(trained))
        x = held_out[:1]
    else:
        model = create_x3d(expansion="XS")
        x = torch.randn(1, 3, 4, 160, 160)
        calibration = [torch.randn(1, 3, 4, 160, 160) for _ in range(2)]
    deploy = convert_to_deployable_form(model.eval(), x).eval()
    options = {"int8 static": dict(dynamic_ranges=False), "int8 defaults": dict(),
               "int8 all dynamic": dict(dynamic_ranges=0)}
    options.update({f"int8 dynamic > {t:g}x": dict(dynamic_ranges=t) for t in thresholds})
    programs, readers = {"fp32": compile_native(deploy)}, {"fp32": 0}
    for name, kwargs in options.items():
        int8 = quantize_model(deploy, calibration, **kwargs)
        readers[name] = sum(1 for m in int8.modules() if getattr(m, "dynamic_input", False))
        programs[name] = compile_native(int8)
    return programs, readers, x


def serve(trained, seed, thresholds):
    """Worker: builds the programs once, then answers `readers 1` (each variant's count of dynamic readers),
    `time THREADS` (each program's fastest of 3 runs, ms) and `share THREADS` (the dynamic_quantize steps' share of
    the all-dynamic program, median of 5 profiled runs)."""
    import torch

    import pyvideo

    programs, readers, x = build_programs(trained, seed, thresholds)
    print(json.dumps(pyvideo.__file__), flush=True)  # ready: Pair checks the build is this worker's tree
    with torch.no_grad():
        for line in sys.stdin:
            request, threads = line.split()
            torch.set_num_threads(int(threads))
            if request == "readers":
                result = readers
            elif request == "time":
                result = {name: two_trees.best_of_ms(lambda: program(x)) for name, program in programs.items()}
            else:
                native = programs["int8 all dynamic"].native_program.program
                native.set_profiling(True)
                shares = []
                for _ in range(5):
                    programs["int8 all dynamic"](x)
                    profile = native.last_profile()
                    total = sum(step["seconds"] for step in profile)
                    shares.append(sum(s["seconds"] for s in profile if s["kind"] == "dynamic_quantize") / total)
                native.set_profiling(False)
                result = statistics.median(shares)
            print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    two_trees.add_arguments(parser, rounds=15)
    parser.add_argument("--trained", help="a state_dict from bench/int8_agreement.py --save-trained")
    parser.add_argument("--seed", type=int, default=0, help="the calibration clips' seed (with --trained: its seed)")
    parser.add_argument("--thresholds", type=lambda text: [float(t) for t in text.split(",") if t], default=[],
                        help="comma-separated dynamic_ranges thresholds to add as int8 programs (e.g. 3,2,1.5)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.trained and os.path.abspath(args.trained), args.seed, args.thresholds)
        return
    print(machine.describe())  # the CPU these timings come from
    worker_args = ["--seed", str(args.seed)] + (["--trained", os.path.abspath(args.trained)] if args.trained else [])
    worker_args += ["--thresholds", ",".join(f"{t:g}" for t in args.thresholds)] if args.thresholds else []
    all_variants = variants(args.thresholds)
    pair = two_trees.Pair(__file__, worker_args, args)
    med = {}
    try:
        readers = pair.turns("readers 1", 1)
        for threads in (1, 2):
            pair.turns(f"time {threads}", 2)  # warm-up
            samples = pair.turns(f"time {threads}", args.rounds)
            for variant in all_variants:
                med[f"{threads} {variant}"] = {tree: statistics.median(s[variant] for s in runs)
                                               for tree, runs in samples.items()}
            shares = pair.turns(f"share {threads}", 1)
            med[f"{threads} dynamic_quantize share"] = {tree: values[0] for tree, values in shares.items()}
    finally:
        pair.close()
    trees = ("base", "new")
    model = f"trained {args.trained}" if args.trained else "random weights"
    print(f"EfficientX3d-XS ({model}), batch 1, {args.rounds} alternating rounds, medians of each round's best of 3")
    for tree in trees:
        counts = readers[tree][0]
        print(f"  {tree}: dynamic readers: " + ", ".join(f"{v[5:]} {counts[v]}" for v in all_variants[1:] if v in counts))
    print(f"{'thr':3s} {'variant':28s} {'base':>8s} {'new':>8s} {'new/base':>8s}")
    for threads in (1, 2):
        for variant in all_variants:
            b, n = med[f"{threads} {variant}"]["base"], med[f"{threads} {variant}"]["new"]
            print(f"{threads:3d} {variant + ' (ms)':28s} {b:8.2f} {n:8.2f} {n / b:8.3f}")
        share = med[f"{threads} dynamic_quantize share"]
        print(f"{threads:3d} {'all dynamic: dynamic_quantize':28s} {100 * share['base']:7.1f}% {100 * share['new']:7.1f}%")
        for tree in trees:
            fp32 = med[f"{threads} fp32"][tree]
            ratios = ", ".join(f"{v[5:]} {fp32 / med[f'{threads} {v}'][tree]:.2f}x" for v in all_variants[1:])
            print(f"    {tree}: fp32 / int8 time: {ratios}")


if __name__ == "__main__":
    main()
