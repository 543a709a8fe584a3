"""Depthwise conv3d: pyvideo's native kernel against PyTorch on the depthwise layers of X3D-XS and X3D-S."""
from dataclasses import dataclass
from typing import Iterable, List, Sequence

import torch
import torch.nn.functional as F

from pyvideo.benchmarks.timing import median_seconds, peak_matmul_gflops
from pyvideo.ops.depthwise_conv3d import depthwise_conv3d


@dataclass(frozen=True)
class DepthwiseLayer:
    model: str
    name: str
    channels: int
    t: int
    h: int
    w: int
    stride: int  # spatial stride (temporal stride is 1 in X3D)
    kernel: Sequence[int] = (3, 3, 3)

    @property
    def padding(self) -> List[int]:
        return [k // 2 for k in self.kernel]

    def flops(self) -> float:
        to = self.t
        ho, wo = (self.h - 1) // self.stride + 1, (self.w - 1) // self.stride + 1
        return 2.0 * self.channels * to * ho * wo * self.kernel[0] * self.kernel[1] * self.kernel[2]


def x3d_depthwise_layers(model: str, frames: int, size: int = 160) -> List[DepthwiseLayer]:
    """The distinct 3x3x3 depthwise layers of X3D (widths 54/108/216/432 at stride 4/8/16/32 of the input)."""
    layers = []
    h = size // 2  # after the stem
    for stage, channels in enumerate((54, 108, 216, 432), start=1):
        layers.append(DepthwiseLayer(model, f"s{stage} stride2", channels, frames, h, h, 2))
        h = (h - 1) // 2 + 1
        layers.append(DepthwiseLayer(model, f"s{stage}", channels, frames, h, h, 1))
    return layers


def default_layers() -> List[DepthwiseLayer]:
    return x3d_depthwise_layers("X3D-XS", 4) + x3d_depthwise_layers("X3D-S", 13)


def benchmark(layers: Iterable[DepthwiseLayer], threads: Sequence[int] = (1, 2), repeat: int = 15) -> List[dict]:
    """One row per (layer, threads): median seconds of each implementation, GFLOP/s and ratios."""
    rows = []
    previous_threads = torch.get_num_threads()
    try:
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            peak = peak_matmul_gflops()
            for layer in layers:
                g = torch.Generator().manual_seed(0)
                x = torch.randn(1, layer.channels, layer.t, layer.h, layer.w, generator=g)
                w = torch.randn(layer.channels, 1, *layer.kernel, generator=g)
                b = torch.randn(layer.channels, generator=g)
                x_cl = x.contiguous(memory_format=torch.channels_last_3d)
                w_cl = w.contiguous(memory_format=torch.channels_last_3d)
                stride, pad, groups = [1, layer.stride, layer.stride], layer.padding, layer.channels
                with torch.inference_mode():
                    ref = F.conv3d(x, w, b, stride, pad, 1, groups)
                    got = depthwise_conv3d(x_cl, w, b, stride, pad)
                    if not torch.allclose(got, ref, rtol=1e-4, atol=1e-4):
                        raise AssertionError(f"native kernel disagrees with PyTorch on {layer}")
                    t_torch = median_seconds(lambda: F.conv3d(x, w, b, stride, pad, 1, groups), repeat=repeat)
                    t_torch_cl = median_seconds(lambda: F.conv3d(x_cl, w_cl, b, stride, pad, 1, groups), repeat=repeat)
                    t_native = median_seconds(lambda: depthwise_conv3d(x_cl, w, b, stride, pad), repeat=repeat)
                    t_native_copy = median_seconds(lambda: depthwise_conv3d(x, w, b, stride, pad), repeat=repeat)
                flops = layer.flops()
                rows.append(
                    dict(
                        model=layer.model, layer=layer.name, shape=f"{layer.channels}x{layer.t}x{layer.h}x{layer.w}",
                        threads=n_threads, torch_ms=t_torch * 1e3, torch_cl_ms=t_torch_cl * 1e3,
                        native_ms=t_native * 1e3, native_from_ncthw_ms=t_native_copy * 1e3,
                        vs_torch=t_torch / t_native, vs_torch_cl=t_torch_cl / t_native,
                        native_gflops=flops / t_native / 1e9, peak_gflops=peak,
                    )
                )
    finally:
        torch.set_num_threads(previous_threads)
    return rows


def format_table(rows: List[dict]) -> str:
    header = (
        f"{'model':7} {'layer':11} {'CxTxHxW':14} {'thr':>3} {'torch ms':>9} {'torch_cl ms':>11} {'pyvideo ms':>10} "
        f"{'(+copy) ms':>10} {'vs torch':>8} {'vs cl':>6} {'GFLOP/s':>8} {'%peak':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['model']:7} {r['layer']:11} {r['shape']:14} {r['threads']:>3} {r['torch_ms']:9.3f} "
            f"{r['torch_cl_ms']:11.3f} {r['native_ms']:10.3f} {r['native_from_ncthw_ms']:10.3f} "
            f"{r['vs_torch']:7.2f}x {r['vs_torch_cl']:5.2f}x {r['native_gflops']:8.2f} "
            f"{100 * r['native_gflops'] / r['peak_gflops']:5.1f}%"
        )
    by_threads = {}
    for r in rows:
        by_threads.setdefault(r["threads"], []).append(r)
    for n, rs in by_threads.items():
        gm = lambda key: torch.tensor([x[key] for x in rs]).log().mean().exp().item()
        lines.append(
            f"geomean @ {n} thread(s): {gm('vs_torch'):.2f}x vs torch default layout, "
            f"{gm('vs_torch_cl'):.2f}x vs torch channels_last_3d (matmul peak {rs[0]['peak_gflops']:.0f} GFLOP/s)"
        )
    return "\n".join(lines)
