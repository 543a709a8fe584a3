// The float32 -> int8 span quantization and the range pass shared by every SIMD variant (quantize.h has the
// definitions); V is a float vector wrapper from simd.h.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../simd.h"
#include "quantize.h"

namespace pyvideo::kernels::detail {

// Stores round_half_even(q) + zero_point, saturated to int8, for four full vectors of quotients |q| < 2^22 (4 *
// width bytes at p). Each level defines it: the conversion rounds half to even (the default rounding mode), the zero
// point is added as an exact integer and saturating narrows do the clamp.
template <class V>
void round_store4(int8_t* p, const typename V::reg (&q)[4], float zero_point);
#if defined(__AVX512F__)
template <>
inline void round_store4<simd::Avx512F32>(int8_t* p, const __m512 (&q)[4], float zero_point) {
  const __m512i zp = _mm512_set1_epi32(int32_t(zero_point));
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(q[j]), zp);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 16 * j), _mm512_cvtsepi32_epi8(v));
  }
}
#endif
#if defined(__AVX2__) && defined(__FMA__)
template <>
inline void round_store4<simd::Avx2F32>(int8_t* p, const __m256 (&q)[4], float zero_point) {
  const __m256i zp = _mm256_set1_epi32(int32_t(zero_point));
  __m256i v[4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) v[j] = _mm256_add_epi32(_mm256_cvtps_epi32(q[j]), zp);
  // The packs work within 128-bit lanes: the bytes come out as dwords 0 4 1 5 2 6 3 7 of the wanted order.
  const __m256i words01 = _mm256_packs_epi32(v[0], v[1]), words23 = _mm256_packs_epi32(v[2], v[3]);
  const __m256i bytes = _mm256_packs_epi16(words01, words23);
  const __m256i ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), ordered);
}
#endif
#if defined(__ARM_NEON)
template <>
inline void round_store4<simd::NeonF32>(int8_t* p, const float32x4_t (&q)[4], float zero_point) {
  const int32x4_t zp = vdupq_n_s32(int32_t(zero_point));
  int16x4_t words[4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) words[j] = vqmovn_s32(vaddq_s32(vcvtnq_s32_f32(q[j]), zp));
  vst1q_s8(p, vcombine_s8(vqmovn_s16(vcombine_s16(words[0], words[1])), vqmovn_s16(vcombine_s16(words[2], words[3]))));
}
#endif

template <class V>
float quantize_f32_simd(const float* src, int8_t* dst, int64_t n, float scale, float zero_point) {
  using reg = typename V::reg;
  if (!quantize_by_reciprocal(scale)) return quantize_f32_scalar(src, dst, n, scale, zero_point);
  // Inputs are clamped to +-kQuantizeLimit * scale first (NaN to the low end): their quotients then reach at least
  // the limit's magnitude (less a rounding), which saturates as the reference's clamped quotient does, and x * r
  // cannot overflow. Inside that range the corrected quotient is the reference's division bit for bit.
  const float bound = kQuantizeLimit * scale;
  const reg lo = V::set1(-bound), hi = V::set1(bound);
  const reg vscale_neg = V::set1(-scale), vinverse = V::set1(1.0f / scale), zero = V::zero();
  reg bad[4] = {zero, zero, zero, zero};  // sums of x * 0: NaN once a NaN or inf was read (one chain per vector)
  int64_t k = 0;
  for (; k + 4 * V::width <= n; k += 4 * V::width) {
    reg q[4];  // the loops are unrolled so that q stays in registers (GCC -O2 would keep it on the stack)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const reg x = V::load(src + k + j * V::width);
      bad[j] = V::fmadd(x, zero, bad[j]);
      const reg v = V::clamp_high(V::clamp_low(x, lo), hi);
      const reg q0 = V::mul(v, vinverse);
      q[j] = V::fmadd(V::fmadd(q0, vscale_neg, v), vinverse, q0);  // q0 + (v - q0 * scale) / scale
    }
    round_store4<V>(dst + k, q, zero_point);
  }
  float non_finite = k < n ? quantize_f32_scalar(src + k, dst + k, n - k, scale, zero_point) : 0.0f;
  float lanes[4][V::width];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) V::store(lanes[j], bad[j]);
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < V::width; ++i) non_finite += lanes[j][i];
  return non_finite;
}

template <class V>
QuantRange range_f32_simd(const float* src, int64_t n) {
  using reg = typename V::reg;
  // Four independent accumulators of each (a single min / max chain is latency-bound), as named registers: GCC
  // keeps arrays of vectors on the stack here.
  const reg zero = V::zero();
  reg lo0 = zero, lo1 = zero, lo2 = zero, lo3 = zero, hi0 = zero, hi1 = zero, hi2 = zero, hi3 = zero;
  reg bad0 = zero, bad1 = zero, bad2 = zero, bad3 = zero;
  int64_t k = 0;
  for (; k + 4 * V::width <= n; k += 4 * V::width) {
    const reg a = V::load(src + k), b = V::load(src + k + V::width);
    const reg c = V::load(src + k + 2 * V::width), d = V::load(src + k + 3 * V::width);
    lo0 = V::min(lo0, a), lo1 = V::min(lo1, b), lo2 = V::min(lo2, c), lo3 = V::min(lo3, d);
    hi0 = V::max(hi0, a), hi1 = V::max(hi1, b), hi2 = V::max(hi2, c), hi3 = V::max(hi3, d);
    bad0 = V::add(bad0, V::mul(a, zero)), bad1 = V::add(bad1, V::mul(b, zero));
    bad2 = V::add(bad2, V::mul(c, zero)), bad3 = V::add(bad3, V::mul(d, zero));
  }
  QuantRange r = range_f32_scalar(src + k, n - k);
  // The lanes combined in scalar code (vector min / max here trip GCC 12's -Wuninitialized on its own intrinsics).
  float l[4][V::width], h[4][V::width], e[4][V::width];
  V::store(l[0], lo0), V::store(l[1], lo1), V::store(l[2], lo2), V::store(l[3], lo3);
  V::store(h[0], hi0), V::store(h[1], hi1), V::store(h[2], hi2), V::store(h[3], hi3);
  V::store(e[0], bad0), V::store(e[1], bad1), V::store(e[2], bad2), V::store(e[3], bad3);
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < V::width; ++i) {
      r.lo = std::min(r.lo, l[j][i]);
      r.hi = std::max(r.hi, h[j][i]);
      r.non_finite += e[j][i];
    }
  return r;
}

}  // namespace pyvideo::kernels::detail
