// Vectorised requantization (the epilogue of the int8 kernels); V is a float vector wrapper from simd.h.
#pragma once
#include <cstdint>

#include "../epilogue.h"
#include "../simd.h"
#include "qconv3d.h"

namespace pyvideo::kernels::detail {

// t: values already scaled and shifted by the output zero point; stores the first n, rounded half to even (the
// conversion's rounding mode) and saturated to [-128, 127].
template <class V>
inline void clamp_store(int8_t* p, typename V::reg t, int n) {
  V::store_i8(p, V::min(V::max(t, V::set1(-128.0f)), V::set1(127.0f)), n);
}
#if defined(__AVX512F__)
// vpmovsdb saturates, so only values beyond int32 need the float clamp (the conversion turns those into INT_MIN,
// right for the negative ones); a full vector takes a plain store, cheaper than a masked one.
template <>
inline void clamp_store<simd::Avx512F32>(int8_t* p, __m512 t, int n) {
  const __m128i b = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_min_ps(t, _mm512_set1_ps(127.0f))));
  if (n == 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), b);
  else
    _mm_mask_storeu_epi8(p, simd::Avx512F32::mask(n), b);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
// Avx2F32::store_i8's packs saturate, and a value beyond int32 converts to INT_MIN, which they take to -128: only the
// top needs the float clamp. min(127, t) returns t when t is NaN, which converts to INT_MIN too, so NaN still gives
// -128 as the two-sided clamp does. One instruction less per vector of every int8 epilogue (1-2% on X3D's
// shortest-reduction pointwise layer, 24 -> 54 channels).
template <>
inline void clamp_store<simd::Avx2F32>(int8_t* p, __m256 t, int n) {
  simd::Avx2F32::store_i8(p, _mm256_min_ps(_mm256_set1_ps(127.0f), t), n);
}
#endif

template <class V>
typename V::reg load_lanes(const float* p, int n) { return n == V::width ? V::load(p) : V::load_n(p, n); }

// The general requantization (residual, any activation, per-channel or float outputs) with everything it reads
// taken out of the Requant once. Built per tile (or per kernel call) and used for that tile's stores: read through
// a Requant pointer, every int8 store (which may alias anything) made the compiler reload the parameters and
// recompute 1 / output_scale with a division per vector, and the activation's runtime switch was an out-of-line call
// per vector (perf: a third of the VNNI kernel's samples in that epilogue on a residual conv). Slow-R50's residual
// conv_c layers on the VNNI kernel: 4-15% faster (A/B, preallocated outputs, one thread). The activation is still
// chosen per vector, now inline: the branch always goes the same way.
template <class V>
struct Requantizer {
  using reg = typename V::reg;
  const float* dequant_scale;
  const int8_t* residual;
  reg residual_scale, residual_zero_point;
  Activation activation;
  float* float_output;
  const float* inverse_scales;  // per-channel outputs, else nullptr
  const float* zero_points;
  reg inverse, zero_point;      // per-tensor outputs

  explicit Requantizer(const Requant& q)
      : dequant_scale(q.dequant_scale),
        residual(q.residual),
        residual_scale(V::set1(q.residual_scale)),
        residual_zero_point(V::set1(float(q.residual_zero_point))),
        activation(q.activation),
        float_output(q.float_output),
        inverse_scales(q.per_channel_output() ? q.output_inverse_scales : nullptr),
        zero_points(q.output_zero_points),
        inverse(V::set1(1.0f / q.output_scale)),
        zero_point(V::set1(float(q.output_zero_point))) {}

  // acc = float32 of the int32 accumulators of channels [c, c + n); o: offset of the first one in the output.
  void store(reg acc, int64_t c, int64_t o, int n, int8_t* output) const { store_as(acc, c, o, n, output, activation); }

  // store() with the activation `act` (this->activation): inlined, so with a constant `act` its switch folds away and
  // a caller's loop keeps the activation's constants in registers (an out-of-line store() per vector reloads them).
  [[gnu::always_inline]] void store_as(reg acc, int64_t c, int64_t o, int n, int8_t* output, Activation act) const {
    put(activate<V>(dequantize(acc, load_lanes<V>(dequant_scale + c, n), o, n), act), c, o, n, output);
  }

  // store_as() for U vectors, vector u of channels [c[u], c[u] + n[u]) at offset o[u], the activation A applied to
  // the U side by side (activate_n: a swish is a long dependent chain). The same arithmetic per vector as store_as().
  template <int U, Activation A>
  [[gnu::always_inline]] void store_vectors(reg (&acc)[U], const int64_t (&c)[U], const int64_t (&o)[U],
                                            const int (&n)[U], int8_t* output) const {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) acc[u] = dequantize(acc[u], load_lanes<V>(dequant_scale + c[u], n[u]), o[u], n[u]);
    activate_n<V, U, A>(acc);
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) put(acc[u], c[u], o[u], n[u], output);
  }

 private:
  // acc * dequant scale (+ the dequantized residual at o).
  [[gnu::always_inline]] reg dequantize(reg acc, reg scale, int64_t o, int n) const {
    reg v = V::mul(acc, scale);
    if (residual) v = V::add(v, V::mul(V::sub(V::load_i8(residual + o, n), residual_zero_point), residual_scale));
    return v;
  }

  // Stores the activated y of channels [c, c + n) at o: requantized, or as float with a float output.
  [[gnu::always_inline]] void put(reg y, int64_t c, int64_t o, int n, int8_t* output) const {
    if (float_output) {  // an int8 conv with a float output: no requantization
      if (n == V::width) V::store(float_output + o, y); else V::store_n(float_output + o, y, n);
      return;
    }
    // y * (1/scale) + zero_point in one FMA, then rounded half to even by the conversion. Against the reference's
    // round(y / scale) + zero_point this can differ by 1 LSB, and only within an ulp of a rounding tie. Per channel
    // the same with channel c's reciprocal and zero point (equal to the per-tensor result when all channels are
    // equal).
    if (inverse_scales)
      clamp_store<V>(output + o, V::fmadd(y, load_lanes<V>(inverse_scales + c, n), load_lanes<V>(zero_points + c, n)),
                     n);
    else
      clamp_store<V>(output + o, V::fmadd(y, inverse, zero_point), n);
  }
};

// The common case without residual and with identity or relu activation, in one FMA: acc * scale + zero_point with
// scale = dequant_scale / output_scale per channel (1 LSB from the reference at most, only next to rounding ties);
// relu is a floor at the zero point. `scale` points at the vector's channels, padded to a full vector.
template <class V>
inline void requantize_linear_store(typename V::reg acc, const float* scale, int64_t o, int n, bool relu,
                                    const Requant& q, int8_t* output) {
  const typename V::reg zp = V::set1(float(q.output_zero_point));
  typename V::reg t = V::fmadd(acc, V::load(scale), zp);
  if (relu) t = V::max(t, zp);
  clamp_store<V>(output + o, t, n);
}

// requantize_linear_store's factors dequant_scale[c] / output_scale (as dequant_scale[c] * (1 / output_scale)) for
// channels [0, padded); zero past `channels` (lanes of a last vector that are never stored).
inline void linear_scales(const Requant& q, int64_t channels, int64_t padded, float* out) {
  for (int64_t c = 0; c < padded; ++c) out[c] = c < channels ? q.dequant_scale[c] * (1.0f / q.output_scale) : 0.0f;
}

// Whether requantize_linear_store applies (per-tensor int8 outputs only: it folds one output scale and zero point).
inline bool linear_requant(const Requant& q) {
  return !q.residual && !q.per_channel_output() && !q.float_output &&
         (q.activation == Activation::identity || q.activation == Activation::relu);
}

}  // namespace pyvideo::kernels::detail
