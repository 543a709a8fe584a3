// avx512 variant of the float32 -> int8 span quantization and the range pass: the shared loops with the level's vectors.
#include "quantize_simd.h"

namespace pyvideo::kernels {

float quantize_f32_avx512(const float* src, int8_t* dst, int64_t n, float scale, float zero_point) {
  return detail::quantize_f32_simd<simd::Avx512F32>(src, dst, n, scale, zero_point);
}

QuantRange range_f32_avx512(const float* src, int64_t n) { return detail::range_f32_simd<simd::Avx512F32>(src, n); }

}  // namespace pyvideo::kernels
