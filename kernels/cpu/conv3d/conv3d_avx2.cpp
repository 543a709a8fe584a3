// avx2 variant of the dense conv3d: the shared loop nest with 6x2 register tiles of Avx2F32 vectors.
#include "../simd.h"
#include "conv3d_simd.h"

namespace pyvideo::kernels {

void conv3d_f32_avx2(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                     const float* zeros, float* output, int64_t item_begin, int64_t item_end) {
  detail::conv3d_f32_simd<simd::Avx2F32, 6, 2>(s, input, weight, ep, zeros, output, item_begin, item_end);
}

}  // namespace pyvideo::kernels
