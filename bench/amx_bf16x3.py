#!/usr/bin/env python
"""Feasibility check: would AMX-BF16 speed up pyvideo's fp32 pointwise convs at (nearly) fp32 accuracy?

"bf16x3" splits every float32 into a high and a low bfloat16 part (a = hi + lo, 16 significant bits) and computes
A.B as hi.hi + hi.lo + lo.hi with AMX tile dot products (TDPBF16PS, float32 accumulation): about 4e-6 relative error,
three tile products per K step. This is what PyTorch documents for float32 matmuls at
torch.set_float32_matmul_precision("high") on hardware with a bf16 matrix unit; "bf16x1" (one product, ~2e-3 relative
error) is its "medium". pyvideo's fp32 programs are exact float32 (highest) and do not use either.

The script compiles a small, unoptimised AMX GEMM (no packing beyond what the tiles need, the per-call float -> bf16
split of A included) with g++ into a temporary shared library and times it, interleaved in one process, against
pyvideo's native fp32 kernel (pyvideo._C.conv3d_f32_ndhwc, preallocated output, bias + ReLU epilogue) on
EfficientX3d-XS's pointwise shapes (M = T*H*W positions, K = C_in, N = C_out), one thread. It prints each variant's
fastest time, its GFLOP/s and the AMX variants' maximum error relative to the largest output.

Needs an x86 CPU with AMX-BF16 and Linux (the tile permission syscall); elsewhere it says so and exits.

    .venv/bin/python bench/amx_bf16x3.py [--rounds 200]
"""
import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time

import torch

from pyvideo.benchmarks import machine

SOURCE = r"""
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {
struct alignas(64) TileConfig { uint8_t palette = 1, start = 0, reserved[14] = {}; uint16_t colsb[16] = {}; uint8_t rows[16] = {}; };
uint16_t to_bf16(float x) { uint32_t u; std::memcpy(&u, &x, 4); u += 0x7fff + ((u >> 16) & 1); return uint16_t(u >> 16); }
float from_bf16(uint16_t h) { uint32_t u = uint32_t(h) << 16; float f; std::memcpy(&f, &u, 4); return f; }
}

extern "C" {

int amx_bf16_ready() { return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0; }

struct Gemm { int M, K, N, Kp, Np, Mp; std::vector<uint16_t> bh, bl, ah, al; std::vector<float> c; };

// B [K][N] float32 -> tile layout [N / 16][K / 2][16][2], high and low parts, zero-padded.
void* gemm_new(int M, int K, int N, const float* b) {
  Gemm* g = new Gemm{M, K, N, (K + 31) / 32 * 32, (N + 15) / 16 * 16, (M + 15) / 16 * 16, {}, {}, {}, {}, {}};
  g->bh.assign(size_t(g->Kp) * g->Np, 0); g->bl.assign(size_t(g->Kp) * g->Np, 0);
  g->ah.assign(size_t(g->Mp) * g->Kp, 0); g->al.assign(size_t(g->Mp) * g->Kp, 0);
  g->c.assign(size_t(g->Mp) * g->Np, 0.0f);
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n) {
      const float v = b[size_t(k) * N + n];
      const uint16_t h = to_bf16(v);
      const size_t at = (size_t(n / 16) * (g->Kp / 2) + k / 2) * 32 + (n % 16) * 2 + (k % 2);
      g->bh[at] = h; g->bl[at] = to_bf16(v - from_bf16(h));
    }
  return g;
}

void gemm_free(void* p) { delete static_cast<Gemm*>(p); }

// C = A.B (+ bias, ReLU) into out [M][N]; passes = 3 (bf16x3) or 1 (bf16x1).
void gemm_run(void* p, const float* a, const float* bias, float* out, int passes) {
  Gemm& g = *static_cast<Gemm*>(p);
  for (int m = 0; m < g.M; ++m) {  // the per-call split of A (row-major, K padded)
    const float* row = a + size_t(m) * g.K;
    int k = 0;
    for (; k + 16 <= g.K; k += 16) {
      const __m512 v = _mm512_loadu_ps(row + k);
      const __m256bh h = _mm512_cvtneps_pbh(v);
      const __m512 back = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
      _mm256_storeu_si256((__m256i*)&g.ah[size_t(m) * g.Kp + k], (__m256i)h);
      _mm256_storeu_si256((__m256i*)&g.al[size_t(m) * g.Kp + k], (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(v, back)));
    }
    for (; k < g.K; ++k) {
      const uint16_t h = to_bf16(row[k]);
      g.ah[size_t(m) * g.Kp + k] = h; g.al[size_t(m) * g.Kp + k] = to_bf16(row[k] - from_bf16(h));
    }
  }
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  _tile_loadconfig(&cfg);
  const size_t panel = size_t(g.Kp / 2) * 32;
  for (int n0 = 0; n0 < g.Np; n0 += 32) {
    const bool two = n0 + 16 < g.Np;
    for (int m0 = 0; m0 < g.Mp; m0 += 16) {
      _tile_zero(0); _tile_zero(1);
      for (int k0 = 0; k0 < g.Kp; k0 += 32) {
        const size_t b0 = size_t(n0 / 16) * panel + size_t(k0 / 2) * 32, b1 = b0 + panel;
        _tile_loadd(2, &g.ah[size_t(m0) * g.Kp + k0], g.Kp * 2);
        _tile_loadd(4, &g.bh[b0], 64);
        _tile_dpbf16ps(0, 2, 4);
        if (passes == 3) {
          _tile_loadd(3, &g.al[size_t(m0) * g.Kp + k0], g.Kp * 2);
          _tile_loadd(5, &g.bl[b0], 64);
          _tile_dpbf16ps(0, 2, 5);
          _tile_dpbf16ps(0, 3, 4);
        }
        if (two) {
          _tile_loadd(6, &g.bh[b1], 64);
          _tile_dpbf16ps(1, 2, 6);
          if (passes == 3) {
            _tile_loadd(7, &g.bl[b1], 64);
            _tile_dpbf16ps(1, 2, 7);
            _tile_dpbf16ps(1, 3, 6);
          }
        }
      }
      _tile_stored(0, &g.c[size_t(m0) * g.Np + n0], g.Np * 4);
      if (two) _tile_stored(1, &g.c[size_t(m0) * g.Np + n0 + 16], g.Np * 4);
    }
  }
  _tile_release();
  for (int m = 0; m < g.M; ++m)  // the epilogue: bias and ReLU
    for (int n = 0; n < g.N; ++n) {
      const float v = g.c[size_t(m) * g.Np + n] + bias[n];
      out[size_t(m) * g.N + n] = v > 0.0f ? v : 0.0f;
    }
}
}
"""

# EfficientX3d-XS's pointwise convs at 4x160x160 input: (positions T*H*W, C_in, C_out)
SHAPES = [(6400, 24, 54), (6400, 54, 24), (1600, 48, 108), (1600, 108, 48), (400, 96, 216), (400, 216, 96),
          (100, 192, 432), (100, 432, 192)]


def build_library(directory):
    source = os.path.join(directory, "amx_bf16x3.cpp")
    library = os.path.join(directory, "amx_bf16x3.so")
    with open(source, "w") as f:
        f.write(SOURCE)
    subprocess.run(["g++", "-O2", "-shared", "-fPIC", "-mavx512f", "-mavx512bw", "-mavx512bf16", "-mamx-tile",
                    "-mamx-bf16", "-o", library, source], check=True)
    lib = ctypes.CDLL(library)
    lib.gemm_new.restype = ctypes.c_void_p
    lib.gemm_new.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    lib.gemm_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.gemm_free.argtypes = [ctypes.c_void_p]
    return lib


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    import pyvideo._C as C

    if "amx_bf16" not in open("/proc/cpuinfo").read():
        print("this CPU has no AMX-BF16: nothing to compare")
        return
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        lib = build_library(directory)
        if not lib.amx_bf16_ready():
            print("the kernel refused the AMX tile permission: nothing to compare")
            return
        print(f"native fp32 kernel ISA: {C.get_isa()}; one thread; fastest of {args.rounds} interleaved calls each")
        print(f"{'M x K -> N':>18s} {'pyvideo fp32':>22s} {'AMX bf16x3':>30s} {'AMX bf16x1':>30s}")
        for m, k, n in SHAPES:
            g = torch.Generator().manual_seed(m + k + n)
            x = torch.randn(1, 1, 1, m, k, generator=g)
            w = torch.randn(1, 1, 1, k, n, generator=g) / k ** 0.5
            bias = torch.randn(n, generator=g) * 0.1
            y = torch.empty(1, 1, 1, m, n)
            outs = {3: torch.empty(m, n), 1: torch.empty(m, n)}
            handle = lib.gemm_new(m, k, n, w.data_ptr())
            calls = {
                "fp32": lambda: C.conv3d_f32_ndhwc(x, w, bias, None, y, [1, 1, 1], [0, 0, 0], 1, 1),
                3: lambda: lib.gemm_run(handle, x.data_ptr(), bias.data_ptr(), outs[3].data_ptr(), 3),
                1: lambda: lib.gemm_run(handle, x.data_ptr(), bias.data_ptr(), outs[1].data_ptr(), 1),
            }
            best = {key: float("inf") for key in calls}
            for _ in range(args.rounds):
                for key, call in calls.items():
                    start = time.perf_counter()
                    call()
                    best[key] = min(best[key], time.perf_counter() - start)
            lib.gemm_free(handle)
            want = torch.relu(x.double().reshape(m, k) @ w.double().reshape(k, n) + bias.double())
            scale = float(want.abs().max())
            flops = 2.0 * m * k * n

            def cell(key, error=None):
                text = f"{best[key] * 1e6:7.1f} us {flops / best[key] / 1e9:6.1f} GF/s"
                if error is None:
                    return text
                return f"{text} ({best['fp32'] / best[key]:.2f}x, err {error:.1e})"

            errors = {p: float((outs[p].double() - want).abs().max()) / scale for p in (3, 1)}
            assert float((y.reshape(m, n).double() - want).abs().max()) / scale < 1e-5
            print(f"{m:6d} x {k:3d} -> {n:3d} {cell('fp32'):>22s} {cell(3, errors[3]):>30s} {cell(1, errors[1]):>30s}")


if __name__ == "__main__":
    sys.exit(main())
