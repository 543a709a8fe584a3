"""torch.hub entry points: ``torch.hub.load("<path to this repo>", "x3d_s", source="local", pretrained=True)``."""
dependencies = ["torch"]

from pyvideo.models.hub import (  # noqa: E402,F401
    c2d_r50,
    csn_r101,
    efficient_x3d_s,
    efficient_x3d_xs,
    i3d_r50,
    mvit_base_16,
    mvit_base_16x4,
    mvit_base_32x3,
    r2plus1d_r50,
    slow_r50,
    slow_r50_detection,
    slowfast_16x8_r101_50_50,
    slowfast_r50,
    slowfast_r50_detection,
    slowfast_r101,
    x3d_l,
    x3d_m,
    x3d_s,
    x3d_xs,
)
