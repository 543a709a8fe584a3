// The int8 Linear's integer dot products (the runtime's quantized_linear step): for one input row, already centered
// on its zero point as int16 (x - zp lies in [-255, 255]), acc[m] = sum over k of centered[k] * w[m * K + k] for the
// outputs m in [m_begin, m_end), w being [M, K] int8 row-major. Every product fits 16 bits times 8 and the sums are
// exact in int32 for K < 66000, so all variants (scalar; AVX2 and AVX-512BW vpmaddwd; NEON widening multiply-adds)
// give identical results in any summation order.
#pragma once
#include <cstdint>

namespace pyvideo::kernels {

using QLinearDotFn = void (*)(const int16_t* centered, int64_t K, const int8_t* w, int64_t m_begin, int64_t m_end,
                              int32_t* acc);

void qlinear_dot_scalar(const int16_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*);
#if defined(__x86_64__) || defined(_M_X64)
void qlinear_dot_avx2(const int16_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*);
void qlinear_dot_avx512(const int16_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*);
#endif
#if defined(__aarch64__)
void qlinear_dot_neon(const int16_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*);
#endif

namespace detail {
// Outputs [m_begin, m_end) in groups of four sharing each load of the centered row: `group(m, k_end)` returns the four
// sums over k < k_end (a multiple of the vector width) with vectors; the remaining k and outputs run the plain loop.
template <int Width, class Group>
inline void qlinear_dot_groups(const int16_t* centered, int64_t K, const int8_t* w, int64_t m_begin, int64_t m_end,
                               int32_t* acc, Group group) {
  const int64_t k_vec = K / Width * Width;
  int64_t m = m_begin;
  for (; m + 4 <= m_end; m += 4) {
    int32_t s[4];
    group(m, k_vec, s);
    for (int j = 0; j < 4; ++j) {
      const int8_t* wm = w + (m + j) * K;
      for (int64_t k = k_vec; k < K; ++k) s[j] += int32_t(centered[k]) * int32_t(wm[k]);
      acc[m + j] = s[j];
    }
  }
  qlinear_dot_scalar(centered, K, w, m, m_end, acc);  // the last outputs, fewer than four
}
}  // namespace detail

}  // namespace pyvideo::kernels
