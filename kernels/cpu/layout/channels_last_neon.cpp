// neon variant of the channels-last row copy: four RGB pixels at a time with the interleaving store (st3).
#include <arm_neon.h>

#include "channels_last.h"

namespace pyvideo::kernels {

void channels_last_row_neon(const float* src, int64_t plane, int64_t C, int64_t W, float* dst) {
  int64_t w = 0;
  if (C == 3)
    for (; w + 4 <= W; w += 4) {
      const float32x4x3_t rgb{{vld1q_f32(src + w), vld1q_f32(src + plane + w), vld1q_f32(src + 2 * plane + w)}};
      vst3q_f32(dst + 3 * w, rgb);
    }
  detail::channels_last_tail(src, plane, C, w, W, dst);
}

}  // namespace pyvideo::kernels
