"""The fp32 depthwise conv steps of compile_native programs, one build against another: EfficientX3d-XS (4x160x160)
or -S (13x160x160), batch 1, random weights (seed 0). Each round runs one worker process per tree (bench/two_trees.py);
a worker times the program's per-step profile at 1 and 2 threads (7 runs each, interleaved, 3 times) and reports the
median of each step
(--stat min: the fastest run of each step, and the fastest round, for a machine shared with other work, which only
ever adds time).
Printed: the median (min) over rounds of each step kind's total and of the whole program, new/base ratios, and with
--steps every depthwise step; also whether both trees' outputs were equal bit for bit.
Run:  .venv/bin/python bench/depthwise_f32.py --base /path/to/main --new . [--rounds 5] [--model XS|S] [--steps]
      [--stat median|min]      (without --base / --new: this tree against itself, the noise floor)
"""
import argparse
import json
import statistics
from collections import defaultdict

import two_trees
from pyvideo.benchmarks import machine


def worker(model: str, stat: str, out_path: str) -> None:
    import torch

    from pyvideo.accelerator.deployment import convert_to_deployable_form
    from pyvideo.accelerator.native import compile_native
    from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

    torch.manual_seed(0)
    frames = 13 if model == "S" else 4
    x = torch.randn(1, 3, frames, 160, 160)
    program = compile_native(convert_to_deployable_form(create_x3d(expansion=model).eval(), x).eval())
    native = program.native_program.program
    native.set_profiling(True)
    runs, outputs = defaultdict(list), {}
    with torch.no_grad():
        for _ in range(3):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                for _ in range(7):
                    outputs[threads] = program(x)
                    runs[threads].append([step["seconds"] for step in native.last_profile()])
    steps = native.last_profile()
    result = {}
    for threads, times in runs.items():
        pick = min if stat == "min" else statistics.median
        medians = [pick(run[i] for run in times) * 1e3 for i in range(len(steps))]
        kinds = defaultdict(float)
        for i, step in enumerate(steps):
            kinds[step["kind"]] += medians[i]
            if "depthwise" in step["kind"]:
                kinds[f"step {i:3d} {step['kind']} {tuple(step['output_shape'])}"] = medians[i]
        kinds["whole program (sum of steps)"] = sum(medians)
        result[threads] = kinds
    torch.save(outputs, out_path + ".pt")
    with open(out_path, "w") as f:
        json.dump(result, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    two_trees.add_arguments(parser, rounds=5)
    parser.add_argument("--model", default="XS", choices=["XS", "S"])
    parser.add_argument("--steps", action="store_true", help="also print every depthwise step")
    parser.add_argument("--stat", default="median", choices=["median", "min"], help="per step, within a worker")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    if args.worker:
        worker(args.model, args.stat, args.worker)
        return
    import torch

    times = defaultdict(lambda: defaultdict(list))  # (threads, name) -> tree -> [ms per round]
    outputs = {}
    equal = True

    def collect(tree, out):
        nonlocal equal
        with open(out) as f:
            for threads, kinds in json.load(f).items():
                for name, ms in kinds.items():
                    times[(threads, name)][tree].append(ms)
        outputs[tree] = torch.load(out + ".pt")
        if tree == "new":  # each round runs base first
            equal = equal and all(torch.equal(outputs["base"][k], outputs["new"][k]) for k in outputs["base"])

    two_trees.run_rounds(__file__, ["--model", args.model, "--stat", args.stat], args, collect)
    print(f"EfficientX3d-{args.model}, {args.rounds} rounds, per-step {args.stat}; outputs equal bit for bit: {equal}")
    print(f"{'threads':7s} {'step kind':70s} {'base ms':>8s} {'new ms':>8s} {'new/base':>8s}")
    for (threads, name), by_tree in sorted(times.items(), key=lambda t: (t[0][0], t[0][1].startswith("step"), t[0][1])):
        if name.startswith("step") and not args.steps:
            continue
        pick = min if args.stat == "min" else statistics.median
        b, n = pick(by_tree["base"]), pick(by_tree["new"])
        print(f"{threads:7s} {name:70s} {b:8.3f} {n:8.3f} {n / b:8.3f}")


if __name__ == "__main__":
    main()
