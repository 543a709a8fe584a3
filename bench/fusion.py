"""Conv -> depthwise fusion in compile_native programs (csrc/runtime/conv_depthwise.cpp): EfficientX3d-XS (4x160x160)
and -S (13x160x160), batch 1, random weights, fp32. For 1 and 2 threads, the whole program with the fusion off, on
where it pays (the default rule in csrc/runtime/program.cpp) and on for every eligible pair, timed interleaved in one
process (medians); then, at 1 thread, each pair fused vs its two separate steps (the data behind the rule) and the
per-kind profile of the default program against the unfused one. Then the stem alone (X3D's dense 1x3x3 stride-2 conv
and its temporal 5x1x1 depthwise conv, the model's `s1`) fused vs separate at several input sizes, 1 and 2 threads.
Outputs are checked equal (bit for bit) first.
Run:  .venv/bin/python bench/fusion.py [--rounds N] [--models XS,S] [--stem-only]
"""
import argparse
import statistics
import time
from collections import defaultdict

import torch

from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.accelerator.native import compile_native
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d
from pyvideo.benchmarks import machine

FUSED = ">depthwise"  # conv/pointwise>depthwise, conv/dense>depthwise (+sums)
MODES = {"off": (False, False), "default": (True, False), "every pair": (True, True)}


def deploy_model(expansion: str, frames: int):
    torch.manual_seed(0)
    model = create_x3d(expansion=expansion).eval()
    return convert_to_deployable_form(model, torch.randn(1, 3, frames, 64, 64))


def programs_of(module, modes=MODES):
    programs = {}
    for mode, (on, every_pair) in modes.items():
        program = compile_native(module).native_program
        program.program.set_fuse_pointwise_depthwise(on, every_pair=every_pair)
        programs[mode] = program
    return programs


def interleaved_ms(programs, x, rounds):
    samples = defaultdict(list)
    with torch.no_grad():
        for program in programs.values():
            program(x)
        for _ in range(rounds):
            for mode, program in programs.items():
                start = time.perf_counter()
                program(x)
                samples[mode].append(time.perf_counter() - start)
    return {mode: 1e3 * statistics.median(values) for mode, values in samples.items()}


def profiles(programs, x, rounds):
    """Per mode, the per-step median seconds (kind, input shape, output shape, seconds) over `rounds` interleaved runs."""
    runs = defaultdict(list)
    with torch.no_grad():
        for _ in range(rounds):
            for mode, program in programs.items():
                program.program.set_profiling(True)
                program(x)
                runs[mode].append(program.program.last_profile())
                program.program.set_profiling(False)
    return {mode: [(steps[0][i]["kind"], steps[0][i]["input_shape"], steps[0][i]["output_shape"],
                    statistics.median(run[i]["seconds"] for run in steps)) for i in range(len(steps[0]))]
            for mode, steps in runs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--models", default="XS,S")
    parser.add_argument("--stem-only", action="store_true", help="only the stem pair alone")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    for expansion in [] if args.stem_only else args.models.split(","):
        frames = {"XS": 4, "S": 13}[expansion]
        programs, x = programs_of(deploy_model(expansion, frames)), torch.randn(1, 3, frames, 160, 160)
        with torch.no_grad():
            outputs = {mode: program(x)[0] for mode, program in programs.items()}
        assert all(torch.equal(out, outputs["off"]) for out in outputs.values()), "fused programs differ"
        print(f"== EfficientX3d-{expansion} {tuple(x.shape)}")
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ms = interleaved_ms(programs, x, args.rounds)
            print(f"  threads={threads}: " + ", ".join(
                f"{mode} {ms[mode]:.2f} ms ({ms['off'] / ms[mode]:.3f}x)" for mode in MODES))
        torch.set_num_threads(1)
        prof = profiles(programs, x, max(5, args.rounds // 3))
        print("  each pair, 1 thread: fused vs the two steps (median step times)")
        off = iter(prof["off"])
        for kind, shape_in, shape_out, seconds in prof["every pair"]:
            separate = [next(off)]
            if FUSED in kind:
                separate.append(next(off))
                pw, dw = separate[0][3], separate[1][3]
                mid = separate[0][2]
                mb = 4 * mid[0] * mid[1] * mid[2] * mid[3] * mid[4] / 2 ** 20
                producer = kind.split(">")[0].split("/")[1]
                print(f"    {str(shape_in):22s} -> {str(shape_out):22s} {producer:9s} output {mb:5.2f} MB: fused "
                      f"{seconds * 1e6:6.0f} us, separate {pw * 1e6:5.0f} + {dw * 1e6:5.0f} us = "
                      f"{(pw + dw) * 1e6:6.0f} us ({(pw + dw) / seconds:.2f}x)")
        print("  per kind, 1 thread (ms): default rule vs off")
        kinds = defaultdict(lambda: [0.0, 0.0])
        for column, mode in enumerate(("default", "off")):
            for kind, _, _, seconds in prof[mode]:
                kinds[kind][column] += 1e3 * seconds
        for kind, (on, plain) in sorted(kinds.items(), key=lambda item: -max(item[1])):
            print(f"    {kind:32s} {on:7.2f} {plain:7.2f}")
        print(f"    {'total':32s} {sum(v[0] for v in kinds.values()):7.2f} {sum(v[1] for v in kinds.values()):7.2f}")
    stem_alone(args.rounds)


def stem_alone(rounds):
    """The stem pair as a program of its own, fused vs separate at 1 and 2 threads: the sum of the median step times
    of interleaved profiled runs (the program's input and output layout conversions left out)."""
    stem = deploy_model("XS", 4).s1
    modes = {"separate": (False, False), "fused": (True, True)}
    programs = programs_of(stem, modes)
    print("== stem alone (1x3x3 stride-2 conv, 3 -> 24 channels, then the 5x1x1 depthwise conv): separate vs fused")
    for frames, size in ((4, 64), (4, 112), (4, 160), (13, 112), (13, 160), (16, 224)):
        x = torch.randn(1, 3, frames, size, size)
        with torch.no_grad():
            outputs = [program(x)[0] for program in programs.values()]
        assert torch.equal(outputs[0], outputs[1]), "the fused stem differs"
        mb = 4 * frames * (size // 2) ** 2 * 24 / 2 ** 20
        line = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ms = {mode: 1e3 * sum(step[3] for step in steps) for mode, steps in profiles(programs, x, rounds).items()}
            line.append(f"threads={threads}: {ms['separate']:6.3f} -> {ms['fused']:6.3f} ms "
                        f"({ms['separate'] / ms['fused']:.2f}x)")
        torch.set_num_threads(1)
        print(f"  {frames:2d}x{size}x{size} (conv output {mb:5.2f} MB)  " + ", ".join(line))


if __name__ == "__main__":
    main()
