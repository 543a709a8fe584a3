// Vectorised requantization (the epilogue of the int8 kernels); V is a float vector wrapper from simd.h.
#pragma once
#include <cstdint>

#include "../epilogue.h"
#include "../simd.h"
#include "qconv3d.h"

namespace pyvideo::kernels::detail {

// n int8 from integral float values in [-128, 127]: a full vector takes a plain store, cheaper than a masked one.
template <class V>
inline void store_bytes(int8_t* p, typename V::reg v, int n) { V::store_i8(p, v, n); }
#if defined(__AVX512F__)
template <>
inline void store_bytes<simd::Avx512F32>(int8_t* p, __m512 v, int n) {
  if (n == 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  else
    simd::Avx512F32::store_i8(p, v, n);
}
#endif

template <class V>
typename V::reg load_lanes(const float* p, int n) { return n == V::width ? V::load(p) : V::load_n(p, n); }

// acc = float32 of the int32 accumulators of channels [c, c + n); o: offset of the first one in the output.
template <class V>
inline void requantize_store(typename V::reg acc, int64_t c, int64_t o, int n, const Requant& q, int8_t* output) {
  using reg = typename V::reg;
  reg v = V::mul(acc, load_lanes<V>(q.dequant_scale + c, n));
  if (q.residual) {
    const reg r = V::sub(V::load_i8(q.residual + o, n), V::set1(float(q.residual_zero_point)));
    v = V::add(v, V::mul(r, V::set1(q.residual_scale)));
  }
  const reg y = activate<V>(v, q.activation);
  // y * (1/scale) + zero_point in one FMA, clamped, then rounded half to even by store_i8's conversion. Against
  // the reference's round(y / scale) + zero_point this can differ by 1 LSB, and only within an ulp of a rounding tie.
  reg t = V::fmadd(y, V::set1(1.0f / q.output_scale), V::set1(float(q.output_zero_point)));
  t = V::min(V::max(t, V::set1(-128.0f)), V::set1(127.0f));
  store_bytes<V>(output + o, t, n);
}

}  // namespace pyvideo::kernels::detail
