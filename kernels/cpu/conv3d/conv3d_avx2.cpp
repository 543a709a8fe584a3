// avx2 variant of the dense conv3d: the shared loop nest on Avx2F32 vectors (tiles of up to 2 channel vectors).
#include "../simd.h"
#include "conv3d_simd.h"

namespace pyvideo::kernels {

void conv3d_f32_avx2(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                     const float* /*zeros*/, float* output, int64_t item_begin, int64_t item_end) {
  detail::conv3d_f32_simd<simd::Avx2F32>(s, input, weight, ep, output, item_begin, item_end);
}

void conv3d_f32_rows_avx2(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                     float* output, int64_t row_begin, int64_t row_end) {
  const int64_t blocks = s.column_blocks();
  detail::conv3d_f32_simd<simd::Avx2F32>(s, input, weight, ep, output, row_begin * blocks, row_end * blocks, row_begin);
}

}  // namespace pyvideo::kernels
