// avx512 variant of the int8 squeeze-excitation's passes (channel-scaled activation, channel sums): the shared
// loops with the level's float vectors.
#include "../simd.h"
#include "qscale_simd.h"

namespace pyvideo::kernels {

void qscale_avx512(const QScale& s, int64_t row_begin, int64_t row_end) {
  detail::qscale_simd<simd::Avx512F32>(s, row_begin, row_end);
}

void qchannel_sums_avx512(const int8_t* x, int64_t channels, int64_t rows, float* sums) {
  detail::qchannel_sums_simd<simd::Avx512F32>(x, channels, rows, sums);
}

}  // namespace pyvideo::kernels
