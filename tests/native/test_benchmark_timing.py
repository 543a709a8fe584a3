"""pyvideo.benchmarks.timing: the peaks bench/accelerator.py measures its kernels against."""
import math

import torch

from pyvideo.benchmarks import timing


def test_peaks_are_positive_rates():
    for rate in (timing.peak_matmul_gflops(size=128), timing.peak_copy_gbps(megabytes=1)):
        assert math.isfinite(rate) and rate > 0
    int8 = timing.peak_int8_matmul_gops(size=128)  # torch's own CPU int8 matmul, where this build has one
    assert int8 is None or (math.isfinite(int8) and int8 > 0)


def test_int8_peak_uses_torch_int_mm_when_present(monkeypatch):
    calls = []

    def counting_int_mm(a, b):
        assert a.dtype == b.dtype == torch.int8 and a.shape == b.shape == (64, 64)
        calls.append(1)
        return torch.zeros(64, 64, dtype=torch.int32)

    monkeypatch.setattr(torch, "_int_mm", counting_int_mm, raising=False)
    rate = timing.peak_int8_matmul_gops(size=64)
    assert math.isfinite(rate) and rate > 0 and len(calls) >= 6  # one probe, warm-ups and timed repeats


def test_int8_peak_is_none_without_a_cpu_int8_matmul(monkeypatch):
    monkeypatch.delattr(torch, "_int_mm", raising=False)
    assert timing.peak_int8_matmul_gops(size=64) is None

    def no_cpu_kernel(a, b):
        raise RuntimeError("_int_mm: no CPU implementation")

    monkeypatch.setattr(torch, "_int_mm", no_cpu_kernel, raising=False)
    assert timing.peak_int8_matmul_gops(size=64) is None
