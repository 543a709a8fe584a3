// avx2 variant of the int8 squeeze-excitation's passes (channel-scaled activation, channel sums): the shared
// loops with the level's float vectors.
#include "../simd.h"
#include "qscale_simd.h"

namespace pyvideo::kernels {

void qscale_avx2(const QScale& s, int64_t row_begin, int64_t row_end) {
  detail::qscale_simd<simd::Avx2F32>(s, row_begin, row_end);
}

void qchannel_sums_avx2(const int8_t* x, int64_t channels, int64_t rows, float* sums) {
  detail::qchannel_sums_simd<simd::Avx2F32>(x, channels, rows, sums);
}

}  // namespace pyvideo::kernels
