// avx512 variant of the channels-last row copy: sixteen RGB pixels at a time, each of the three output vectors
// gathered from the three planes' vectors by a lane permutation apiece and two masked blends.
// GCC 12's AVX-512 intrinsic headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* temporaries.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "channels_last.h"

namespace pyvideo::kernels {

void channels_last_row_avx512(const float* src, int64_t plane, int64_t C, int64_t W, float* dst) {
  int64_t w = 0;
  if (C == 3) {
    // Output value j = 16 v + l (l a lane) is channel j % 3 of pixel j / 3: lane l of output v takes lane j / 3 of
    // each channel's vector, and the masks pick the green (j % 3 == 1) and blue (j % 3 == 2) lanes.
    alignas(64) static constexpr int32_t lanes[3][16] = {
      {0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5},
      {5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10},
      {10, 11, 11, 11, 12, 12, 12, 13, 13, 13, 14, 14, 14, 15, 15, 15}};
    static constexpr __mmask16 green[3] = {0x2492, 0x9249, 0x4924}, blue[3] = {0x4924, 0x2492, 0x9249};
    const __m512i index[3] = {_mm512_load_si512(lanes[0]), _mm512_load_si512(lanes[1]), _mm512_load_si512(lanes[2])};
    for (; w + 16 <= W; w += 16) {
      const __m512 r = _mm512_loadu_ps(src + w), g = _mm512_loadu_ps(src + plane + w),
                   b = _mm512_loadu_ps(src + 2 * plane + w);
      for (int v = 0; v < 3; ++v) {
        __m512 out = _mm512_permutexvar_ps(index[v], r);
        out = _mm512_mask_blend_ps(green[v], out, _mm512_permutexvar_ps(index[v], g));
        out = _mm512_mask_blend_ps(blue[v], out, _mm512_permutexvar_ps(index[v], b));
        _mm512_storeu_ps(dst + 3 * w + 16 * v, out);
      }
    }
  }
  detail::channels_last_tail(src, plane, C, w, W, dst);
}

}  // namespace pyvideo::kernels
