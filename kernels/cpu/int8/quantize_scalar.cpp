// Scalar reference of the float32 -> int8 span quantization and the range pass (definitions in quantize.h).
#include <algorithm>

#include "quantize.h"

namespace pyvideo::kernels {

float quantize_f32_scalar(const float* src, int8_t* dst, int64_t n, float scale, float zero_point) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: v + kRound - kRound rounds half to even for |v| < 2^22
  float non_finite = 0.0f;
  for (int64_t k = 0; k < n; ++k) {
    non_finite += src[k] * 0.0f;
    float v = src[k] / scale;
    v = v > -kQuantizeLimit ? v : -kQuantizeLimit;  // NaN fails the comparison: the low end
    v = v < kQuantizeLimit ? v : kQuantizeLimit;
    const float r = (v + kRound) - kRound + zero_point;
    dst[k] = int8_t(r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r));
  }
  return non_finite;
}

QuantRange range_f32_scalar(const float* src, int64_t n) {
  QuantRange r;
  for (int64_t k = 0; k < n; ++k) {
    r.lo = std::min(r.lo, src[k]);
    r.hi = std::max(r.hi, src[k]);
    r.non_finite += src[k] * 0.0f;
  }
  return r;
}

}  // namespace pyvideo::kernels
