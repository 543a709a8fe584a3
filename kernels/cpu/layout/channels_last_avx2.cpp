// avx2 variant of the channels-last row copy: eight RGB pixels at a time, each of the three output vectors gathered
// from the three planes' vectors by a cross-lane permutation apiece and two blends.
#include <immintrin.h>

#include "channels_last.h"

namespace pyvideo::kernels {

void channels_last_row_avx2(const float* src, int64_t plane, int64_t C, int64_t W, float* dst) {
  int64_t w = 0;
  if (C == 3) {
    // Output value j = 8 v + l is channel j % 3 of pixel j / 3 (as in the avx512 variant, eight lanes); the masks
    // select the green (j % 3 == 1) and blue (j % 3 == 2) lanes.
    alignas(32) static constexpr int32_t lanes[3][8] = {
      {0, 0, 0, 1, 1, 1, 2, 2},
      {2, 3, 3, 3, 4, 4, 4, 5},
      {5, 5, 6, 6, 6, 7, 7, 7}};
    alignas(32) static constexpr int32_t green_lanes[3][8] = {
      {0, -1, 0, 0, -1, 0, 0, -1},
      {0, 0, -1, 0, 0, -1, 0, 0},
      {-1, 0, 0, -1, 0, 0, -1, 0}};
    alignas(32) static constexpr int32_t blue_lanes[3][8] = {
      {0, 0, -1, 0, 0, -1, 0, 0},
      {-1, 0, 0, -1, 0, 0, -1, 0},
      {0, -1, 0, 0, -1, 0, 0, -1}};
    __m256i index[3];
    __m256 green[3], blue[3];
    for (int v = 0; v < 3; ++v) {
      index[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes[v]));
      green[v] = _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(green_lanes[v])));
      blue[v] = _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(blue_lanes[v])));
    }
    for (; w + 8 <= W; w += 8) {
      const __m256 r = _mm256_loadu_ps(src + w), g = _mm256_loadu_ps(src + plane + w),
                   b = _mm256_loadu_ps(src + 2 * plane + w);
      for (int v = 0; v < 3; ++v) {
        __m256 out = _mm256_permutevar8x32_ps(r, index[v]);
        out = _mm256_blendv_ps(out, _mm256_permutevar8x32_ps(g, index[v]), green[v]);
        out = _mm256_blendv_ps(out, _mm256_permutevar8x32_ps(b, index[v]), blue[v]);
        _mm256_storeu_ps(dst + 3 * w + 8 * v, out);
      }
    }
  }
  detail::channels_last_tail(src, plane, C, w, W, dst);
}

}  // namespace pyvideo::kernels
