// neon variant of the int8 Linear's dot products: widening int16 multiply-adds, four outputs per centered load.
#include <arm_neon.h>

#include "qlinear.h"

namespace pyvideo::kernels {

void qlinear_dot_neon(const int16_t* centered, int64_t K, const int8_t* w, int64_t m_begin, int64_t m_end,
                      int32_t* acc) {
  detail::qlinear_dot_groups<8>(centered, K, w, m_begin, m_end, acc, [&](int64_t m, int64_t k_end, int32_t* s) {
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
    const int8_t* w0 = w + m * K;
    for (int64_t k = 0; k < k_end; k += 8) {
      const int16x8_t c = vld1q_s16(centered + k);
      auto multiply_add = [&](int32x4_t sum, int j) {
        const int16x8_t weights = vmovl_s8(vld1_s8(w0 + j * K + k));
        return vmlal_high_s16(vmlal_s16(sum, vget_low_s16(c), vget_low_s16(weights)), c, weights);
      };
      s0 = multiply_add(s0, 0), s1 = multiply_add(s1, 1), s2 = multiply_add(s2, 2), s3 = multiply_add(s3, 3);
    }
    s[0] = vaddvq_s32(s0), s[1] = vaddvq_s32(s1), s[2] = vaddvq_s32(s2), s[3] = vaddvq_s32(s3);
  });
}

}  // namespace pyvideo::kernels
