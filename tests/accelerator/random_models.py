"""Random plain-Conv3d models through the whole accelerator path, checked against torch.

Each seed builds a small video model from plain modules (convs of many geometries, BatchNorm, five activations,
residual blocks, a squeeze-excitation written with torch ops, max / average pools, an optional pooled Linear head)
and pyvideo's X3D bottleneck blocks (random widths, strides, activations, SE ratios)
and three input shapes (batch 1-3, T 1-6, H and W 5-37), then checks:
- ``transmute_model`` + ``convert_to_deployable_form``, ``compile_native`` (fp32) and ``lower_to_native`` against the
  original model in torch eager, at every shape (1e-4 relative);
- the program's own outputs (``native_program``, without the part of the model left to torch) bit-identical on one
  and two threads, for a channels-last copy of the input, and after a save / ``load_program`` round trip;
- ``quantize_model`` (static ranges, or every eligible range dynamic for some seeds), ``compile_native`` of it
  against ``lower_quantized_to_native``, and the int8 program's outputs on one and two threads and for a
  channels-last input.
Models torch itself cannot run at a shape, and models whose first layer is not native, are skipped.

The int8 program and the per-layer int8 lowering agree bit for bit where both run the same kernels; where one runs a
float-output conv natively and the other in torch, the float results differ by an ulp, which a later quantization in
torch can turn into one code step, so that comparison allows 5% of the output's range: it catches wiring and layout
errors (a one-channel output read wrongly by torch's conv3d differed by 50-90%), not rounding.

The pytest suite runs a fixed set of seeds (test_random_models.py); a longer sweep is opt-in:
    .venv/bin/python -m tests.accelerator.random_models --seconds 300 [--seed 1000]
"""
import argparse
import copy
import os
import random
import tempfile
import time
from typing import List, Tuple

import torch
import torch.nn as nn

from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import compile_native, load_program, lower_quantized_to_native, lower_to_native
from pyvideo.accelerator.quantization import quantize_model
from pyvideo.models.accelerator.mobile_cpu.residual_blocks import X3dBottleneckBlock

from ._util import randomize_batchnorm

ACTIVATIONS = [nn.ReLU, nn.SiLU, nn.Hardswish, nn.Identity, nn.Sigmoid]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _conv_unit(rng: random.Random, c: int):
    kind = rng.choice(["pw", "pw_s2", "dw3", "dw3_s2", "sp3", "sp3_s2", "t3", "dw5t", "dense3", "sp5", "any"])
    co = rng.choice([c, c * 2, max(1, c // 2), rng.randint(1, 40)])
    bias = rng.random() < 0.5
    if kind == "pw":
        conv = nn.Conv3d(c, co, 1, bias=bias)
    elif kind == "pw_s2":
        conv = nn.Conv3d(c, co, 1, stride=(1, 2, 2), bias=bias)
    elif kind == "dw3":
        conv = nn.Conv3d(c, c, 3, padding=1, groups=c, bias=bias)
    elif kind == "dw3_s2":
        conv = nn.Conv3d(c, c, 3, stride=(1, 2, 2), padding=1, groups=c, bias=bias)
    elif kind == "sp3":
        conv = nn.Conv3d(c, co, (1, 3, 3), padding=(0, 1, 1), bias=bias)
    elif kind == "sp3_s2":
        conv = nn.Conv3d(c, co, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=bias)
    elif kind == "t3":
        conv = nn.Conv3d(c, co, (3, 1, 1), padding=(1, 0, 0), bias=bias)
    elif kind == "dw5t":
        conv = nn.Conv3d(c, c, (5, 1, 1), padding=(2, 0, 0), groups=c, bias=bias)
    elif kind == "dense3":
        conv = nn.Conv3d(c, co, 3, padding=1, bias=bias)
    elif kind == "sp5":
        conv = nn.Conv3d(c, co, (1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2), bias=bias)
    else:  # any small kernel, stride and padding
        kernel = (rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 4))
        stride = (rng.randint(1, 2), rng.randint(1, 2), rng.randint(1, 3))
        padding = tuple(rng.randint(0, k - 1) if rng.random() < 0.7 else 0 for k in kernel)
        groups = c if co == c and rng.random() < 0.4 else 1
        conv = nn.Conv3d(c, co, kernel, stride=stride, padding=padding, groups=groups, bias=bias)
    layers = [conv]
    if rng.random() < 0.8:
        layers.append(nn.BatchNorm3d(conv.out_channels))
    layers.append(rng.choice(ACTIVATIONS)())
    return nn.Sequential(*layers), conv.out_channels


class _Residual(nn.Module):
    def __init__(self, rng: random.Random, c: int):
        super().__init__()
        self.a, mid = _conv_unit(rng, c)
        self.b = nn.Sequential(nn.Conv3d(mid, mid, 3, padding=1, groups=mid, bias=False), nn.BatchNorm3d(mid),
                               rng.choice(ACTIVATIONS)())
        self.c = nn.Sequential(nn.Conv3d(mid, c, 1, bias=False), nn.BatchNorm3d(c))
        self.activation = rng.choice([nn.ReLU, nn.Identity])()

    def forward(self, x):
        return self.activation(x + self.c(self.b(self.a(x))))


def _run_noting_broadcasts(model: nn.Module, clips) -> Tuple[List[torch.Tensor], bool]:
    """The model's outputs for `clips`, and whether some residual add broadcast: a strided `a` at some sizes leaves
    the branch 1 wide where x is wider, and torch broadcasts the add; no real block does that, and the native
    residual add refuses it (a clear error), so such models are skipped. Seen by hooks, as a check in forward would
    make the model untraceable."""
    input_shapes, broadcasts, hooks = {}, [], []
    for m in model.modules():
        if isinstance(m, _Residual):
            hooks.append(m.register_forward_pre_hook(lambda m, args: input_shapes.__setitem__(m, args[0].shape)))
            hooks.append(m.c.register_forward_hook(
                lambda c, args, out, m=m: broadcasts.append(out.shape != input_shapes[m])))
    try:
        return [model(x) for x in clips], any(broadcasts)
    finally:
        for hook in hooks:
            hook.remove()


class _SqueezeExcitation(nn.Module):
    """Written with torch ops (a mean and 1x1x1 convs), not an efficient block: it stays in torch."""

    def __init__(self, c: int):
        super().__init__()
        hidden = max(1, c // 4)
        self.fc = nn.Sequential(nn.Conv3d(c, hidden, 1), nn.ReLU(), nn.Conv3d(hidden, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean((2, 3, 4), keepdim=True))


def _x3d_block(rng: random.Random, c: int):
    """pyvideo's efficient X3D bottleneck (converted by convert_to_deployable_form, not transmuted): the fused
    squeeze-excitation, pointwise > depthwise and residual paths of the programs."""
    out = rng.choice([c, rng.randint(1, 24)])
    acts = tuple(rng.choice(["relu", "swish", "hswish", "identity"]) for _ in range(3))
    block = X3dBottleneckBlock(c, rng.randint(1, 48), out, use_residual=rng.random() < 0.8,
                               spatial_stride=rng.choice([1, 2]), se_ratio=rng.choice([0.0, 0.0625, 0.25]),
                               act_functions=acts, bias=tuple(rng.random() < 0.3 for _ in range(3)))
    return block, out


def make_model(rng: random.Random) -> nn.Module:
    c, layers = 3, []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.45:
            unit, c = _conv_unit(rng, c)
            layers.append(unit)
        elif r < 0.6:
            block, c = _x3d_block(rng, c)
            layers.append(block)
        elif r < 0.75:
            layers.append(_Residual(rng, c))
        elif r < 0.85:
            kernel = rng.choice([(1, 3, 3), (3, 3, 3), (1, 2, 2)])
            padding = tuple(k // 2 for k in kernel) if rng.random() < 0.5 else 0
            layers.append(rng.choice([nn.MaxPool3d, nn.AvgPool3d])(kernel, stride=(1, 2, 2), padding=padding))
        elif c > 1:
            layers.append(_SqueezeExcitation(c))
    if rng.random() < 0.6:
        layers += [nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(c, rng.randint(2, 10))]
    model = nn.Sequential(*layers).eval()
    return randomize_batchnorm(model, torch.Generator().manual_seed(rng.randint(0, 2**31)))


def _program_outputs(compiled, x: torch.Tensor, threads: int) -> List[torch.Tensor]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return [t.clone() for t in compiled.native_program(x)]
    finally:
        torch.set_num_threads(previous)


def _program_problems(name: str, compiled, x: torch.Tensor) -> List[str]:
    """The program's own outputs for `x` on two threads and for a channels-last copy of `x`, against one thread:
    bit for bit."""
    one = _program_outputs(compiled, x, 1)
    channels_last = x.contiguous(memory_format=torch.channels_last_3d)
    others = (("between 1 and 2 threads", _program_outputs(compiled, x, 2)),
              ("for a channels-last input", _program_outputs(compiled, channels_last, 1)))
    return [f"{name} program outputs differ {how} at {tuple(x.shape)}"
            for how, outputs in others if not all(torch.equal(a, b) for a, b in zip(one, outputs))]


def check_seed(seed: int) -> List[str]:
    """Problems found with the model and shapes of `seed`; ['skipped: ...'] when torch or the lowering cannot
    take the model at all."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = make_model(rng)
    shapes = [(rng.randint(1, 3), 3, rng.randint(1, 6), rng.randint(5, 37), rng.randint(5, 37)) for _ in range(3)]
    dynamic = rng.random() < 0.3
    problems = []
    with torch.no_grad():
        clips = [torch.randn(s) for s in shapes]
        try:
            expected, broadcast = _run_noting_broadcasts(model, clips)
        except RuntimeError as error:
            return [f"skipped: torch cannot run it ({str(error)[:60]})"]
        if broadcast:
            return ["skipped: a residual add would broadcast"]
        transmuted = copy.deepcopy(model)
        transmute_model(transmuted)
        deploy = convert_to_deployable_form(transmuted, clips[0])
        try:
            compiled = compile_native(deploy)
        except ValueError as error:
            if "does not start with a layer" in str(error):
                return ["skipped: its first layer is not native"]
            raise
        per_layer = lower_to_native(deploy)
        for x, ref in zip(clips, expected):
            for name, got in (("fp32 program", compiled(x)), ("fp32 per-layer lowering", per_layer(x))):
                error = _relative(got, ref)
                if not error <= 1e-4:
                    problems.append(f"{name} at {tuple(x.shape)}: relative error {error:.2e}")
            problems += _program_problems("fp32", compiled, x)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.pvp")
            compiled.native_program.save(path)
            loaded = load_program(path)
            if not all(torch.equal(a, b) for a, b in zip(compiled.native_program(clips[1]), loaded(clips[1]))):
                problems.append("the loaded program's outputs differ from the saved one's")
        calibration = [torch.randn(shapes[0]) for _ in range(2)]
        int8 = quantize_model(deploy, calibration, **({"dynamic_ranges": 0} if dynamic else {}))
        int8_compiled, int8_per_layer = compile_native(int8), lower_quantized_to_native(int8)
        for x in clips:
            error = _relative(int8_compiled(x), int8_per_layer(x))
            if not error <= 0.05:
                problems.append(f"int8 program vs per-layer int8 lowering at {tuple(x.shape)} "
                                f"({'dynamic' if dynamic else 'static'} ranges): relative error {error:.2e}")
            problems += _program_problems("int8", int8_compiled, x)
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=1000, help="first seed; seeds then count up")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seed, checked, skipped, failed = args.seed, 0, 0, 0
    end = time.time() + args.seconds
    while time.time() < end:
        try:
            problems = check_seed(seed)
        except Exception as error:  # noqa: BLE001 - a crash anywhere on the path is a finding; go on with the next
            problems = [f"raised {type(error).__name__}: {str(error)[:300]}"]
        if problems and problems[0].startswith("skipped"):
            skipped += 1
        else:
            checked += 1
            if problems:
                failed += 1
                print(f"seed {seed}:", *problems, sep="\n  ")
        seed += 1
    print(f"seeds {args.seed}..{seed - 1}: {checked} models checked, {failed} with problems, {skipped} skipped")


if __name__ == "__main__":
    main()
