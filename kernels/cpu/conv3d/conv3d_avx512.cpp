// avx512 variant of the dense conv3d: the shared loop nest on Avx512F32 vectors (tiles of up to 4 channel vectors).
// Layers of at most 8 output channels take the AVX2 variant instead: their one 16-lane vector would be half masked
// (a masked weight load per reduction step), and 8-lane tiles ran SlowFast's fast-pathway stem (3 -> 8 channels,
// 5x7x7) at 57 ms against 76 (one-off timing, 1 thread). The choice follows the whole layer's width (co_stride), so
// a channel range of a wider layer runs the variant the whole layer runs (their activations' vector code differs in
// the last bits: the channel-range test checks that ranges equal the whole layer bit for bit).
#include "../simd.h"
#include "conv3d_simd.h"

namespace pyvideo::kernels {

void conv3d_f32_avx512(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                     const float* zeros, float* output, int64_t item_begin, int64_t item_end) {
  if (s.co_stride() <= 8) return conv3d_f32_avx2(s, input, weight, ep, zeros, output, item_begin, item_end);
  detail::conv3d_f32_simd<simd::Avx512F32>(s, input, weight, ep, output, item_begin, item_end);
}

void conv3d_f32_rows_avx512(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                     float* output, int64_t row_begin, int64_t row_end) {
  if (s.co_stride() <= 8) return conv3d_f32_rows_avx2(s, input, weight, ep, output, row_begin, row_end);
  const int64_t blocks = s.column_blocks();
  detail::conv3d_f32_simd<simd::Avx512F32>(s, input, weight, ep, output, row_begin * blocks, row_end * blocks, row_begin);
}

}  // namespace pyvideo::kernels
