"""Timing helpers: medians of repeated runs after warm-up, and the machine's measured peaks."""
import statistics
import time
from typing import Callable, List, Optional

import torch


def median_seconds(fn: Callable[[], object], warmup: int = 3, repeat: int = 15, min_time: float = 0.2) -> float:
    """Median wall time of ``fn()`` over at least ``repeat`` runs (more if they finish faster than ``min_time``)."""
    for _ in range(warmup):
        fn()
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 10 * repeat:
            break
    return statistics.median(times)


def peak_matmul_gflops(size: int = 1024) -> float:
    """GFLOP/s of a large fp32 matmul at the current torch thread count: the practical compute peak."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = median_seconds(lambda: torch.mm(a, b), warmup=2, repeat=5)
    return 2 * size**3 / seconds / 1e9


def peak_int8_matmul_gops(size: int = 1024) -> Optional[float]:
    """GOP/s (multiply-adds count two) of a large int8 matmul with int32 results (``torch._int_mm``, oneDNN's VNNI /
    AMX kernels where the CPU has them) at the current torch thread count: the practical int8 compute peak that the
    int8 kernels are measured against. None where this torch build has no CPU int8 matmul."""
    int_mm = getattr(torch, "_int_mm", None)
    if int_mm is None:
        return None
    a = torch.randint(-128, 128, (size, size), dtype=torch.int8)
    b = torch.randint(-128, 128, (size, size), dtype=torch.int8)
    try:
        int_mm(a, b)
    except RuntimeError:  # no CPU kernel in this build
        return None
    seconds = median_seconds(lambda: int_mm(a, b), warmup=2, repeat=5)
    return 2 * size**3 / seconds / 1e9


def peak_copy_gbps(megabytes: float = 256) -> float:
    """GB/s of a tensor copy of ``megabytes`` (bytes read + written) at the current torch thread count; the default,
    a large copy, gives the memory bandwidth (bench/copy_bandwidth.py sweeps the size across the cache levels)."""
    src = torch.empty(int(megabytes * 2**20) // 4)
    dst = torch.empty_like(src)
    src.fill_(1.0)
    seconds = median_seconds(lambda: dst.copy_(src), warmup=1, repeat=5)
    return 2 * src.numel() * 4 / seconds / 1e9
