#!/usr/bin/env python
"""Memory bandwidth by working-set size: GB/s (bytes read + bytes written per second) of a float32 tensor copy, for
buffers from 256 KB to 128 MB, on 1 thread and on every core (torch's copy through
pyvideo.benchmarks.timing.peak_copy_gbps: the median of repeated copies after a warm-up).

The fractions of the copy peak that bench/accelerator.py prints use one large copy (a DRAM-sized buffer). This shows
what the cache levels give instead: on the project's 2-core x86 VM (one thread, two runs), copies that fit a core's
2 MB L2 (source and destination together) ran at 53-68 GB/s, 1.5-8 MB copies at 20-26 GB/s and 32-128 MB ones at
10-12 GB/s, so a step whose input and output outgrow L2 (X3D-XS's first stage: 4x40x40x54 and 4x80x80x24 tensors,
1.4 and 2.5 MB) gets about a third of the bandwidth that the later stages' steps get.

    .venv/bin/python bench/copy_bandwidth.py
"""
import argparse
import os

import torch

from pyvideo.benchmarks.timing import peak_copy_gbps
from pyvideo.benchmarks import machine

SIZES_MB = (0.25, 0.5, 1, 1.5, 2.5, 4, 8, 32, 128)


def main():
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()  # no options: --help, not a run
    print(machine.describe())  # the CPU these timings come from
    threads = (1, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else (1,)
    print("float32 copy, GB/s counting bytes read + written; MB = one buffer (the copy touches twice that)")
    print(f"{'MB':>8s} " + " ".join(f"{f'{t} thread' + ('s' if t > 1 else ''):>12s}" for t in threads))
    for megabytes in SIZES_MB:
        cells = []
        for t in threads:
            torch.set_num_threads(t)
            cells.append(f"{peak_copy_gbps(megabytes):12.1f}")
        print(f"{megabytes:8.2f} " + " ".join(cells))


if __name__ == "__main__":
    main()
