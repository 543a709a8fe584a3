"""The benchmark's FLOP counter against hand counts."""
import importlib.util
import pathlib

import torch
import torch.nn as nn

_SPEC = importlib.util.spec_from_file_location(
    "bench_models", pathlib.Path(__file__).resolve().parents[2] / "bench" / "models.py"
)
bench_models = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_models)


def test_conv_and_linear_macs():
    model = nn.Sequential(
        nn.Conv3d(3, 8, kernel_size=(1, 3, 3), padding=(0, 1, 1)),  # out 8x2x4x4 = 256 positions x 27 MACs
        nn.Conv3d(8, 8, kernel_size=3, padding=1, groups=8),  # depthwise: 256 x 27
        nn.Flatten(),
        nn.Linear(256, 10),  # 10 x 256
    )
    flops = bench_models.count_flops(model, (torch.rand(1, 3, 2, 4, 4),))
    assert flops == 256 * 27 + 256 * 27 + 10 * 256
    assert not any(module._forward_hooks for module in model.modules())


def test_inputs_follow_metadata():
    (clip,) = bench_models.make_inputs("x3d_s")
    assert clip.shape == (1, 3, 13, 160, 160)
    (pathways, boxes) = bench_models.make_inputs("slowfast_r50_detection")
    assert [p.shape[2] for p in pathways] == [8, 32] and boxes.shape[1] == 5
