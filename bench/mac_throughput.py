#!/usr/bin/env python
"""Benchmark: multiply-add throughput of the x86 AVX2 instructions the fp32 and int8 kernels are built on, on this
machine, one thread: what the kernels' inner loops could reach, measured rather than read from a table.

It writes a small C program, compiles it with the system C compiler (cc -O3 -mavx2 -mfma) and runs it. Rows:
  fma chains        12 independent vfmadd231ps chains: the fp32 peak (8 multiply-adds per instruction)
  vpmaddwd chains   8 independent vpmaddwd + vpaddd chains: the int16 pair product peak (16 per instruction)
  fp32 tile 4x3     the fp32 dense kernel's shape: a broadcast input x 3 weight vectors, 12 accumulators
  int8 tile 4x2     the plain-AVX2 int8 tile (simd::Avx2Dot::dot): weights split into int16 halves in the loop
  int8 tile 4x2, split weights   the same with the weights split ahead of time (Avx2Dot::dot_split)
and then 256-bit FP instructions per second: 12 vfmadd231ps chains, 12 vaddps chains, 6 of each. Where the mix runs
no faster than either kind alone (the AMD Zen 1 of sessions 21-26: 2.4 G/s each way, 256-bit instructions split in
two 128-bit halves there), a float add costs an FMA's slot: an fp32 kernel's adds count as much as its FMAs.
On CPUs with AVX-512F, 12 vfmadd231ps chains on zmm registers (a Zen 4 runs each as two 256-bit halves, so no
faster than ymm; Intel server cores with two 512-bit FMA units double the rate); with AVX512-VNNI, 12 vpdpbusd chains
on ymm and on zmm (4 byte products per 32-bit lane): the ceiling of the int8 dot-product kernels against fp32's.
These functions are compiled for AVX-512 alone (a target attribute) and run only where /proc/cpuinfo lists it.
The tiles run over weights and inputs that stay in L1, so they bound the kernels from above (no epilogue, no input
preparation, no cache misses). Each row is the best of --repeat runs of about 0.2 s. Ratios compare rows of one run;
on a shared machine only those are meaningful.

    .venv/bin/python bench/mac_throughput.py [--repeat 5]
"""
import argparse
import os
import platform
import shutil
import subprocess
import tempfile

from pyvideo.benchmarks import machine

SOURCE = r"""
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static volatile int seed = 1;  /* opaque to the compiler: chains it cannot fold */
static int8_t w8[64 * 64] __attribute__((aligned(64)));
static int16_t w16[2 * 64 * 64] __attribute__((aligned(64)));
static int32_t x32[8 * 64] __attribute__((aligned(64)));
static float wf[3 * 8 * 64] __attribute__((aligned(64)));
static float xf[4 * 64] __attribute__((aligned(64)));
static double sink;

/* 12 independent chains, fma_count of them vfmadd231ps and the rest vaddps: 256-bit instructions per second. All
   FMAs, all adds, and 6 + 6 tell whether the CPU runs the two kinds side by side or makes them compete. */
#define F(a) a = _mm256_fmadd_ps(a, b, c);
#define A(a) a = _mm256_add_ps(a, c);
static double fp_instructions(long n, int fma_count) {
  __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-6f);
  __m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_set1_ps(seed + 1), a2 = _mm256_set1_ps(seed + 2),
         a3 = _mm256_set1_ps(seed + 3), a4 = _mm256_set1_ps(seed + 4), a5 = _mm256_set1_ps(seed + 5),
         a6 = _mm256_set1_ps(seed + 6), a7 = _mm256_set1_ps(seed + 7), a8 = _mm256_set1_ps(seed + 8),
         a9 = _mm256_set1_ps(seed + 9), a10 = _mm256_set1_ps(seed + 10), a11 = _mm256_set1_ps(seed + 11);
  double t = now();
  if (fma_count == 12)
    for (long i = 0; i < n; ++i) { F(a0) F(a1) F(a2) F(a3) F(a4) F(a5) F(a6) F(a7) F(a8) F(a9) F(a10) F(a11) }
  else if (fma_count == 6)
    for (long i = 0; i < n; ++i) { F(a0) A(a1) F(a2) A(a3) F(a4) A(a5) F(a6) A(a7) F(a8) A(a9) F(a10) A(a11) }
  else
    for (long i = 0; i < n; ++i) { A(a0) A(a1) A(a2) A(a3) A(a4) A(a5) A(a6) A(a7) A(a8) A(a9) A(a10) A(a11) }
  t = now() - t;
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  sink += _mm256_cvtss_f32(s);
  return (double)n * 12 / t;
}

/* the fp32 peak: 12 vfmadd231ps chains, 8 multiply-adds per instruction */
static double fma_chains(long n) { return 8 * fp_instructions(n, 12); }

#define MADD(a) a = _mm256_add_epi32(a, _mm256_madd_epi16(w, y));
static double madd_chains(long n) {
  __m256i w = _mm256_set1_epi16(seed), y = _mm256_set1_epi16(seed + 1);
  __m256i a0 = _mm256_set1_epi32(seed), a1 = _mm256_set1_epi32(seed + 1), a2 = _mm256_set1_epi32(seed + 2),
          a3 = _mm256_set1_epi32(seed + 3), a4 = _mm256_set1_epi32(seed + 4), a5 = _mm256_set1_epi32(seed + 5),
          a6 = _mm256_set1_epi32(seed + 6), a7 = _mm256_set1_epi32(seed + 7);
  double t = now();
  for (long i = 0; i < n; ++i) { y = _mm256_add_epi16(y, w); MADD(a0) MADD(a1) MADD(a2) MADD(a3) MADD(a4) MADD(a5) MADD(a6) MADD(a7) }
  t = now() - t;
  __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                               _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
  sink += _mm256_extract_epi32(s, 0);
  return (double)n * 8 * 16 / t;
}

/* 4 columns x 3 vectors of 8 channels, 64 input channels per pass (the fp32 dense kernel's tile) */
static double fp32_tile(long n) {
  __m256 acc[4][3];
  for (int i = 0; i < 4; ++i) for (int j = 0; j < 3; ++j) acc[i][j] = _mm256_setzero_ps();
  double t = now();
  for (long r = 0; r < n; ++r) {
    const float* w = wf;
#pragma GCC unroll 4
    for (int k = 0; k < 64; ++k, w += 24) {
      __m256 b0 = _mm256_load_ps(w), b1 = _mm256_load_ps(w + 8), b2 = _mm256_load_ps(w + 16);
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        __m256 x = _mm256_broadcast_ss(xf + i * 64 + k);
        acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
        acc[i][2] = _mm256_fmadd_ps(x, b2, acc[i][2]);
      }
    }
  }
  t = now() - t;
  __m256 s = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) for (int j = 0; j < 3; ++j) s = _mm256_add_ps(s, acc[i][j]);
  sink += _mm256_cvtss_f32(s);
  return (double)n * 64 * 4 * 3 * 8 / t;
}

/* 4 columns x 2 vectors of 8 channels, 32 groups of 4 input bytes per pass; split: weights as int16 halves */
static double int8_tile(long n, int split) {
  __m256i acc[4][2];
  for (int i = 0; i < 4; ++i) for (int j = 0; j < 2; ++j) acc[i][j] = _mm256_setzero_si256();
  const __m256i low = _mm256_set1_epi16(0x00FF);
  double t = now();
  for (long r = 0; r < n; ++r) {
#pragma GCC unroll 2
    for (int g = 0; g < 32; ++g) {
      __m256i be[2], bo[2];
      for (int j = 0; j < 2; ++j) {
        if (split) {
          be[j] = _mm256_load_si256((const __m256i*)(w16 + (g * 2 + j) * 32));
          bo[j] = _mm256_load_si256((const __m256i*)(w16 + (g * 2 + j) * 32 + 16));
        } else {
          __m256i b = _mm256_load_si256((const __m256i*)(w8 + (g * 2 + j) * 32));
          be[j] = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8);
          bo[j] = _mm256_srai_epi16(b, 8);
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        __m256i a = _mm256_set1_epi32(x32[i * 64 + g]);
        __m256i ae = _mm256_and_si256(a, low), ao = _mm256_srli_epi16(a, 8);
        for (int j = 0; j < 2; ++j)
          acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_add_epi32(_mm256_madd_epi16(ae, be[j]),
                                                                   _mm256_madd_epi16(ao, bo[j])));
      }
    }
  }
  t = now() - t;
  __m256i s = _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) for (int j = 0; j < 2; ++j) s = _mm256_add_epi32(s, acc[i][j]);
  sink += _mm256_extract_epi32(s, 0);
  return (double)n * 32 * 4 * 2 * 32 / t;
}

/* AVX-512 rows, compiled for AVX-512 in this function only and called only where the CPU has it (argv[2]): 12
   vfmadd231ps zmm chains (16 multiply-adds each), and with VNNI 12 vpdpbusd chains on ymm (32 byte products each)
   and on zmm (64). */
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define D12(F)                                                                                                   \
  a0 = F(a0, x, w); a1 = F(a1, x, w); a2 = F(a2, x, w); a3 = F(a3, x, w); a4 = F(a4, x, w); a5 = F(a5, x, w);     \
  a6 = F(a6, x, w); a7 = F(a7, x, w); a8 = F(a8, x, w); a9 = F(a9, x, w); a10 = F(a10, x, w); a11 = F(a11, x, w);
/* 12 independent chains a = OP(a, x, w) of LANES-lane registers, PER_LANE multiply-adds per lane and instruction */
#define CHAINS(NAME, REG, ELEM, SET1, OP, ADD, LANES, PER_LANE, X0, W0)                                          \
  AVX512_TARGET static double NAME(long n) {                                                                       \
    REG x = SET1(X0), w = SET1(W0);                                                                                \
    REG a0 = SET1(seed), a1 = SET1(seed + 1), a2 = SET1(seed + 2), a3 = SET1(seed + 3), a4 = SET1(seed + 4),       \
        a5 = SET1(seed + 5), a6 = SET1(seed + 6), a7 = SET1(seed + 7), a8 = SET1(seed + 8), a9 = SET1(seed + 9),   \
        a10 = SET1(seed + 10), a11 = SET1(seed + 11);                                                              \
    double t = now();                                                                                              \
    for (long i = 0; i < n; ++i) { D12(OP) }                                                                       \
    t = now() - t;                                                                                                 \
    REG s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                                     \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                                                   \
    ELEM lanes[LANES];                                                                                             \
    memcpy(lanes, &s, sizeof lanes);                                                                               \
    sink += lanes[0];                                                                                              \
    return (double)n * 12 * LANES * PER_LANE / t;                                                                  \
  }
CHAINS(zmm_fma_chains, __m512, float, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16, 1, 0.999f, 1e-6f)
/* vpdpbusd: four byte products per 32-bit lane */
CHAINS(vnni_ymm_chains, __m256i, int32_t, _mm256_set1_epi32, _mm256_dpbusd_epi32, _mm256_add_epi32, 8, 4,
       0x01020304 + seed, 0x7F017F01 + seed)
CHAINS(vnni_zmm_chains, __m512i, int32_t, _mm512_set1_epi32, _mm512_dpbusd_epi32, _mm512_add_epi32, 16, 4,
       0x01020304 + seed, 0x7F017F01 + seed)

int main(int argc, char** argv) {
  int repeat = argc > 1 ? atoi(argv[1]) : 5;
  int level = argc > 2 ? atoi(argv[2]) : 0;  /* 1: AVX-512F rows too; 2: and VNNI rows */
  for (int i = 0; i < (int)sizeof w8; ++i) w8[i] = (int8_t)(i * 37 % 255 - 127);
  for (int i = 0; i < (int)(sizeof w16 / 2); ++i) w16[i] = (int16_t)(i * 37 % 255 - 127);
  for (int i = 0; i < (int)(sizeof x32 / 4); ++i) x32[i] = (int32_t)((i * 2654435761u) & 0x00FF00FFu);
  for (int i = 0; i < (int)(sizeof wf / 4); ++i) wf[i] = (float)(i % 7 - 3) * 1e-3f;
  for (int i = 0; i < (int)(sizeof xf / 4); ++i) xf[i] = (float)(i % 5) * 1e-3f;
  double best[7] = {0}, wide[3] = {0};
  for (int r = 0; r < repeat; ++r) {
    double v[7] = {fma_chains(20000000), madd_chains(20000000), fp32_tile(200000), int8_tile(400000, 0),
                   int8_tile(400000, 1), fp_instructions(20000000, 0), fp_instructions(20000000, 6)};
    for (int k = 0; k < 7; ++k) if (v[k] > best[k]) best[k] = v[k];
    double w[3] = {level >= 1 ? zmm_fma_chains(20000000) : 0, level >= 2 ? vnni_ymm_chains(20000000) : 0,
                   level >= 2 ? vnni_zmm_chains(20000000) : 0};
    for (int k = 0; k < 3; ++k) if (w[k] > wide[k]) wide[k] = w[k];
  }
  printf("%.6f %.6f %.6f %.6f %.6f %.6f %.6f %.6f %.6f %.6f %g\n", best[0], best[1], best[2], best[3], best[4], best[5],
         best[6], wide[0], wide[1], wide[2], sink);
  return 0;
}
"""

ROWS = [
    ("fma chains", 0),
    ("vpmaddwd chains", 1),
    ("fp32 tile 4x3", 2),
    ("int8 tile 4x2", 3),
    ("int8 tile 4x2, split weights", 4),
]


def measure(repeat: int = 5):
    """The rows' rates in G/s (a list of 10: see the C program's output order; AVX-512 rows 0 where not run) and the
    AVX-512 level they were run at, or a string saying why they cannot be measured here (not x86 with AVX2 + FMA, no
    C compiler)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"x86 AVX2 only (this machine: {platform.machine()})"
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if " avx2" not in flags or " fma" not in flags:
        return "this CPU has no AVX2 + FMA"
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        return "no C compiler found (set CC)"
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "mac.c"), os.path.join(tmp, "mac")
        with open(src, "w") as f:
            f.write(SOURCE)
        subprocess.run([cc, "-O3", "-mavx2", "-mfma", src, "-o", exe], check=True)
        level = avx512_level(flags)
        out = subprocess.run([exe, str(repeat), str(level)], check=True, capture_output=True,
                             text=True).stdout.split()
    return [float(v) / 1e9 for v in out[:10]], level


def fma_peak_gflops(repeat: int = 3):
    """One core's fp32 FMA peak in GFLOP/s (a multiply-add counts two): the faster of the ymm and zmm fma chains, the
    ceiling of any fp32 kernel on this core; None where measure() cannot run. bench/accelerator.py's roofline uses it
    next to torch's matmul, which on a Zen 4 reached only about 75% of it."""
    result = measure(repeat)
    if isinstance(result, str):
        return None
    rates, _ = result
    return 2 * fma_rate(rates)


def fma_rate(rates) -> float:
    """The faster of the ymm and zmm fma chains (measure()'s rates; the zmm row is 0 where not run), G/s."""
    return max(rates[0], rates[7])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    result = measure(args.repeat)
    if isinstance(result, str):
        print(f"skipped: {result}")  # exit 0: `make bench` runs on
        return
    rates, level = result
    print(f"one thread, best of {args.repeat}; multiply-adds per second (an int8 or int16 product counts as one)")
    for name, k in ROWS:
        print(f"  {name:30s} {rates[k]:7.1f} G/s   {rates[k] / rates[0]:5.2f}x the fma chains")
    print(f"  split / unsplit int8 tile: {rates[4] / rates[3]:.2f}x;  split int8 tile / fp32 tile: "
          f"{rates[4] / rates[2]:.2f}x")
    fma, (add, mixed) = rates[0] / 8, rates[5:7]  # the fma chains' instructions: 8 multiply-adds each
    print(f"256-bit FP instructions per second, 12 independent chains: vfmadd231ps {fma:.2f} G/s, vaddps {add:.2f} G/s,"
          f" 6 + 6 of both {mixed:.2f} G/s ({mixed / max(fma, add):.2f}x the faster kind alone: up to 2x where FMAs "
          f"and adds run side by side, about 1x where they compete)")
    if level == 0:
        print("AVX-512 rows: skipped (no AVX-512F on this CPU)")
        return
    zmm = rates[7]
    print(f"AVX-512, 12 independent chains, multiply-adds per second:\n"
          f"  zmm fma chains                 {zmm:7.1f} G/s   {zmm / rates[0]:5.2f}x the (ymm) fma chains: about 2x "
          f"where the FMA units are 512 bits wide, about 1x where a zmm FMA takes two 256-bit halves")
    if level < 2:
        print("  VNNI rows: skipped (no AVX512-VNNI on this CPU)")
        return
    for name, rate in (("vpdpbusd ymm chains", rates[8]), ("vpdpbusd zmm chains", rates[9])):
        print(f"  {name:30s} {rate:7.1f} G/s   {rate / zmm:5.2f}x the zmm fma chains (int8 byte products)")
    print(f"  the int8 dense kernels' ceiling over fp32's on this core: {rates[9] / fma_rate(rates):.2f}x "
          f"(zmm vpdpbusd / the faster fma chains)")


def avx512_level(flags: str) -> int:
    """0: no AVX-512F; 1: AVX-512F; 2: also AVX512-VNNI with VL and BW (what the VNNI rows are compiled for)."""
    words = set(flags.split())
    if "avx512f" not in words:
        return 0
    return 2 if {"avx512_vnni", "avx512vl", "avx512bw"} <= words else 1


if __name__ == "__main__":
    main()
