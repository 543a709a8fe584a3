// neon variant of the dense conv3d: the shared loop nest with 8x2 register tiles of NeonF32 vectors.
#include "../simd.h"
#include "conv3d_simd.h"

namespace pyvideo::kernels {

void conv3d_f32_neon(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                     const float* zeros, float* output, int64_t item_begin, int64_t item_end) {
  detail::conv3d_f32_simd<simd::NeonF32, 8, 2>(s, input, weight, ep, zeros, output, item_begin, item_end);
}

}  // namespace pyvideo::kernels
