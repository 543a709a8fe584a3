#!/usr/bin/env python
"""Benchmark: pyvideo's depthwise conv3d kernel vs torch.nn.functional.conv3d(groups=C), default layout and
channels_last_3d, on X3D-XS and X3D-S depthwise layers, at 1 and 2 threads. Prints a table of times and ratios.

    .venv/bin/python bench/kernels.py [--threads 1 2] [--repeat 15] [--isa avx512]
"""
import argparse

from pyvideo import _native
from pyvideo.benchmarks.kernels import benchmark, default_layers, format_table
from pyvideo.benchmarks import machine


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--isa", default=None, help="force a kernel ISA level (scalar, avx2, avx512, neon)")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    if args.isa:
        _native.native().set_isa(args.isa)
    print(f"kernel ISA: {_native.native().get_isa()}  (cpu: {_native.native().cpu_features()})")
    print(format_table(benchmark(default_layers(), args.threads, args.repeat)))


if __name__ == "__main__":
    main()
