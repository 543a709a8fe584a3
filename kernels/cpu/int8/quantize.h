// Float32 -> int8 quantization of a span, and the range pass that dynamic (per-sample) quantization runs first.
//
// quantize_f32(src, dst, n, scale, zero_point): dst[k] = clamp(round_half_even(src[k] / scale) + zero_point,
// -128, 127), as qparams.quantize (torch) computes it, with the quotient first clamped to +-4e6 (NaN goes to the low
// end, so to -128). zero_point is an integral value in [-128, 127]; scale a positive finite float. Returns the sum of
// src[k] * 0, NaN exactly when some value is NaN or +-inf (range_f32's non_finite): the caller refuses such input,
// which no int8 code represents (the quantize step raises, as the dynamic one does), without a second pass.
// The scalar variant is the reference definition and divides. The SIMD variants multiply by the reciprocal and
// correct the quotient with two FMAs (q0 = x * r, q = q0 + (x - q0 * scale) * r, r = 1 / scale rounded), which is the
// correctly rounded x / scale whenever the residual x - q0 * scale does not underflow (Markstein's theorem); they take
// that route for scales in [2^-60, 2^60], where every quotient of magnitude >= 2^-3 qualifies, and divide otherwise.
// All variants give the same bytes.
//
// range_f32(src, n): min and max of the span and of 0 (a quantized range always holds 0), and non_finite, the sum of
// src[k] * 0, which is NaN exactly when some value is NaN or +-inf (lo and hi are unspecified then). Min and max are
// exact, so every variant returns the same lo and hi for finite input (up to the sign of a zero).
#pragma once
#include <cstdint>

namespace pyvideo::kernels {

struct QuantRange {
  float lo = 0.0f, hi = 0.0f, non_finite = 0.0f;
};

using QuantizeF32Fn = float (*)(const float* src, int8_t* dst, int64_t n, float scale, float zero_point);
using RangeF32Fn = QuantRange (*)(const float* src, int64_t n);

float quantize_f32_scalar(const float* src, int8_t* dst, int64_t n, float scale, float zero_point);
QuantRange range_f32_scalar(const float* src, int64_t n);
#if defined(__x86_64__) || defined(_M_X64)
float quantize_f32_avx2(const float* src, int8_t* dst, int64_t n, float scale, float zero_point);
QuantRange range_f32_avx2(const float* src, int64_t n);
float quantize_f32_avx512(const float* src, int8_t* dst, int64_t n, float scale, float zero_point);
QuantRange range_f32_avx512(const float* src, int64_t n);
#endif
#if defined(__aarch64__)
float quantize_f32_neon(const float* src, int8_t* dst, int64_t n, float scale, float zero_point);
QuantRange range_f32_neon(const float* src, int64_t n);
#endif

// The quotient's clamp (|x / scale| <= kQuantizeLimit < 2^22, where adding and subtracting 1.5 * 2^23 rounds half
// to even exactly) and the scales the SIMD variants take the reciprocal route for.
constexpr float kQuantizeLimit = 4.0e6f;
inline bool quantize_by_reciprocal(float scale) { return scale >= 0x1p-60f && scale <= 0x1p60f; }

}  // namespace pyvideo::kernels
