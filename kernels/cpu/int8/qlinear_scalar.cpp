// Scalar reference of the int8 Linear's dot products.
#include "qlinear.h"

namespace pyvideo::kernels {

void qlinear_dot_scalar(const int16_t* centered, int64_t K, const int8_t* w, int64_t m_begin, int64_t m_end,
                        int32_t* acc) {
  for (int64_t m = m_begin; m < m_end; ++m) {
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += int32_t(centered[k]) * int32_t(w[m * K + k]);
    acc[m] = sum;
  }
}

}  // namespace pyvideo::kernels
