"""Cost of dynamic (per-clip) int8 activation ranges in compile_native programs, one build against another: EfficientX3d-XS
at batch 1 as an fp32 program, a static int8 program, quantize_model's defaults (a tensor is dynamic where the
calibration batches' scales differ by more than 5x) and every eligible range dynamic (dynamic_ranges=0, the cost
bound), timed interleaved at 1 and 2 threads, plus the share of the all-dynamic program its dynamic_quantize steps
(a min/max pass and a quantize pass per tensor) take, from the program's profile.

Model: random weights (seed 0) calibrated on two random batches, or with --trained PATH a 12-class state_dict saved
by `bench/int8_agreement.py --seed S --save-trained PATH`, calibrated on that script's calibration clips of the same
seed (--seed; needs ../shared/data) and run on a held-out clip.
Each round runs one worker process per tree (bench/two_trees.py); a worker reports medians of 15 interleaved runs.
Printed: the median over rounds of each variant, new/base ratios, and fp32/int8 speed ratios within each tree.
Run:  .venv/bin/python bench/int8_dynamic.py --base /path/to/other/tree --new . [--rounds 3] [--trained PATH --seed S]
      (without --base / --new: this tree against itself, the noise floor)
"""
import argparse
import json
import os
import statistics
import sys
from collections import defaultdict

import two_trees

VARIANTS = ("fp32", "int8 static", "int8 defaults", "int8 all dynamic")


def build_programs(trained, seed):
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
    programs = {
        "fp32": compile_native(deploy),
        "int8 static": compile_native(quantize_model(deploy, calibration, dynamic_ranges=False)),
        "int8 defaults": compile_native(quantize_model(deploy, calibration)),
        "int8 all dynamic": compile_native(quantize_model(deploy, calibration, dynamic_ranges=0)),
    }
    return programs, x


def worker(trained, seed, out_path):
    import time

    import torch

    programs, x = build_programs(trained, seed)
    result = {}
    with torch.no_grad():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for program in programs.values():
                for _ in range(3):
                    program(x)
            times = defaultdict(list)
            for _ in range(15):
                for name, program in programs.items():
                    start = time.perf_counter()
                    program(x)
                    times[name].append(time.perf_counter() - start)
            for name, runs in times.items():
                result[f"{threads} {name}"] = statistics.median(runs) * 1e3
            native = programs["int8 all dynamic"].native_program.program
            native.set_profiling(True)
            shares = []
            for _ in range(5):
                programs["int8 all dynamic"](x)
                profile = native.last_profile()
                total = sum(step["seconds"] for step in profile)
                shares.append(sum(s["seconds"] for s in profile if s["kind"] == "dynamic_quantize") / total)
            native.set_profiling(False)
            result[f"{threads} dynamic_quantize share"] = statistics.median(shares)
    with open(out_path, "w") as f:
        json.dump(result, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    two_trees.add_arguments(parser, rounds=3)
    parser.add_argument("--trained", help="a state_dict from bench/int8_agreement.py --save-trained")
    parser.add_argument("--seed", type=int, default=0, help="the calibration clips' seed (with --trained: its seed)")
    args = parser.parse_args()
    if args.worker:
        worker(args.trained and os.path.abspath(args.trained), args.seed, args.worker)
        return
    values = defaultdict(lambda: defaultdict(list))  # name -> tree -> [per round]

    def collect(tree, out):
        with open(out) as f:
            for name, value in json.load(f).items():
                values[name][tree].append(value)

    worker_args = ["--seed", str(args.seed)] + (["--trained", os.path.abspath(args.trained)] if args.trained else [])
    two_trees.run_rounds(__file__, worker_args, args, collect)
    trees = ("base", "new")
    model = f"trained {args.trained}" if args.trained else "random weights"
    print(f"EfficientX3d-XS ({model}), batch 1, {args.rounds} rounds, medians")
    print(f"{'thr':3s} {'variant':28s} {'base':>8s} {'new':>8s} {'new/base':>8s}")
    med = {name: {tree: statistics.median(v) for tree, v in by_tree.items()} for name, by_tree in values.items()}
    for threads in (1, 2):
        for variant in VARIANTS:
            b, n = med[f"{threads} {variant}"]["base"], med[f"{threads} {variant}"]["new"]
            print(f"{threads:3d} {variant + ' (ms)':28s} {b:8.2f} {n:8.2f} {n / b:8.3f}")
        share = med[f"{threads} dynamic_quantize share"]
        print(f"{threads:3d} {'all dynamic: dynamic_quantize':28s} {100 * share['base']:7.1f}% {100 * share['new']:7.1f}%")
        for tree in trees:
            fp32 = med[f"{threads} fp32"][tree]
            ratios = ", ".join(f"{v[5:]} {fp32 / med[f'{threads} {v}'][tree]:.2f}x" for v in VARIANTS[1:])
            print(f"    {tree}: fp32 / int8 time: {ratios}")


if __name__ == "__main__":
    main()
