"""The benchmark's FLOP counter against hand counts and the model zoo's published GFLOPs."""
import importlib.util
import pathlib

import pytest
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


@pytest.mark.parametrize(
    "name, crop, tolerance",
    [
        # the zoo measured FLOPs at its test crop (256 for the ResNets; 182/182/256/356 for X3D) with fvcore,
        # which also counts norms and elementwise ops: noticeable only in the depthwise-heavy X3D
        ("slow_r50", 256, 0.001), ("slowfast_r50", 256, 0.001), ("c2d_r50", 256, 0.03), ("i3d_r50", 256, 0.03),
        ("slowfast_r101", 256, 0.03), ("slowfast_16x8_r101_50_50", 256, 0.03), ("csn_r101", 256, 0.03),
        ("r2plus1d_r50", 256, 0.03), ("x3d_xs", 182, 0.1), ("x3d_s", 182, 0.1), ("x3d_m", 256, 0.1), ("x3d_l", 356, 0.1),
    ],
)
def test_flops_match_the_model_zoo(name, crop, tolerance):
    from pyvideo.models import hub

    metadata = hub.MODEL_METADATA[name]
    with torch.device("meta"):  # shapes only: counting costs no compute
        kwargs = {"input_crop_size": crop} if name.startswith("x3d") else {}
        model = getattr(hub, name)(**kwargs).eval()
        clips = [torch.rand(1, c, t, crop, crop) for c, t, _, _ in metadata.input_shape]
        gmacs = bench_models.count_flops(model, (clips[0] if len(clips) == 1 else clips,)) / 1e9
    assert gmacs <= metadata.gflops * 1.001
    assert gmacs >= metadata.gflops * (1 - tolerance)
