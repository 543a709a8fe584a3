#!/usr/bin/env python
"""Benchmark every hub model at its published input size on CPU: parameters, FLOPs, batch-1 inference latency
at 1 and 2 threads, and the time of one training step (batch 1, SGD). Prints a table.

FLOPs are counted by forward hooks on Conv/Linear layers as multiply-accumulates (the convention of the
PyTorchVideo model zoo's "GFLOPs"); elementwise ops, norms and pools are not counted.

    .venv/bin/python bench/models.py [--models x3d_xs slow_r50 ...] [--threads 1 2] [--repeat 5] [--no-train]
"""
import argparse
import math
import statistics
import time
from typing import Dict, List, Sequence

import torch
import torch.nn as nn

from pyvideo.models import hub
from pyvideo.benchmarks import machine

# Boxes used for the detectors: (batch index, x1, y1, x2, y2) in input pixels.
DETECTION_BOXES = torch.tensor([[0, 16.0, 16.0, 112.0, 200.0], [0, 120.0, 40.0, 220.0, 240.0]])


def _input_shapes(name: str) -> Sequence[Sequence[int]]:
    return hub.MODEL_METADATA[name].input_shape


def make_inputs(name: str) -> tuple:
    """Model arguments for batch size 1 at the published clip size."""
    clips = [torch.rand(1, *shape) for shape in _input_shapes(name)]
    x = clips[0] if len(clips) == 1 else clips
    return (x, DETECTION_BOXES.clone()) if name.endswith("_detection") else (x,)


def count_flops(model: nn.Module, inputs: tuple) -> int:
    """Multiply-accumulates of every Conv and Linear layer in one forward pass."""
    total = [0]

    def conv_hook(module: nn.modules.conv._ConvNd, _, output):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        total[0] += output.numel() * per_output

    def linear_hook(module: nn.Linear, _, output):
        total[0] += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(*_fresh(inputs))
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def _fresh(inputs: tuple) -> tuple:
    # multi-pathway models may overwrite the list they are given; hand each call its own list
    return tuple(list(x) if isinstance(x, list) else x for x in inputs)


def _median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inference_latency(model: nn.Module, inputs: tuple, threads: int, repeat: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model.eval()
        with torch.inference_mode():
            return _median_seconds(lambda: model(*_fresh(inputs)), repeat)
    finally:
        torch.set_num_threads(previous)


def training_step_time(model: nn.Module, inputs: tuple, threads: int, repeat: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    # BN in train mode needs more than one value per channel; freeze its statistics for batch 1
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()

    def step():
        optimizer.zero_grad(set_to_none=True)
        out = model(*_fresh(inputs))
        out.float().square().mean().backward()
        optimizer.step()

    try:
        return _median_seconds(step, repeat)
    finally:
        torch.set_num_threads(previous)


def benchmark(names: List[str], threads: Sequence[int], repeat: int, train: bool) -> List[Dict]:
    rows = []
    for name in names:
        torch.manual_seed(0)
        model = getattr(hub, name)()
        inputs = make_inputs(name)
        row = {
            "model": name,
            "input": " + ".join("x".join(map(str, shape[1:])) for shape in _input_shapes(name)),
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "gflops": count_flops(model.eval(), inputs) / 1e9,
            "published_gflops": hub.MODEL_METADATA[name].gflops,
        }
        for count in threads:
            row[f"infer_ms_{count}t"] = 1000 * inference_latency(model, inputs, count, repeat)
        if train:
            row["train_ms"] = 1000 * training_step_time(model, inputs, max(threads), max(1, repeat // 2))
        rows.append(row)
        print(format_table([row], header=len(rows) == 1), flush=True)
    return rows


def format_table(rows: List[Dict], header: bool = True) -> str:
    columns = list(rows[0])
    widths = {c: max(len(c), 12 if c == "input" else 9) for c in columns}
    widths["model"] = 25

    def cell(column, value):
        if value is None:
            text = "-"
        elif isinstance(value, float):
            text = f"{value:.2f}" if value < 1000 else f"{value:.0f}"
        else:
            text = str(value)
        return text.ljust(widths[column]) if column in ("model", "input") else text.rjust(widths[column])

    lines = []
    if header:
        lines.append(" ".join(c.ljust(widths[c]) if c in ("model", "input") else c.rjust(widths[c]) for c in columns))
    lines += [" ".join(cell(c, row.get(c)) for c in columns) for row in rows]
    return "\n".join(lines)


ALL_MODELS = [
    "x3d_xs", "x3d_s", "x3d_m", "x3d_l", "efficient_x3d_xs", "efficient_x3d_s", "c2d_r50", "i3d_r50", "slow_r50",
    "slowfast_r50", "slowfast_r101", "slowfast_16x8_r101_50_50", "csn_r101", "r2plus1d_r50", "mvit_base_16x4",
    "mvit_base_32x3", "mvit_base_16", "slow_r50_detection", "slowfast_r50_detection",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=ALL_MODELS, choices=ALL_MODELS)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-train", dest="train", action="store_false", help="skip the training-step column")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    print(f"torch {torch.__version__}, CPU, batch 1, median of {args.repeat}; GFLOPs = GMACs of conv/linear layers")
    benchmark(args.models, args.threads, args.repeat, args.train)


if __name__ == "__main__":
    main()
