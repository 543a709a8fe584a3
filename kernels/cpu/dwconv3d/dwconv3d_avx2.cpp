// avx2 variant of the depthwise conv3d: the shared loop nest instantiated with Avx2F32 vectors.
#include "../simd.h"
#include "dwconv3d_simd.h"

namespace pyvideo::kernels {

void dwconv3d_f32_avx2(const DwConv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                       float* output, int64_t begin, int64_t end) {
  detail::dwconv3d_f32_simd<simd::Avx2F32>(s, input, weight, ep, output, begin, end);
}

void dwconv3d_f32_lines_avx2(const DwConv3dShape& s, const float* const* input_rows, const float* weight,
                             const Epilogue& ep, float* output, int64_t line_begin, int64_t line_end) {
  detail::dwconv3d_f32_lines_simd<simd::Avx2F32>(s, input_rows, weight, ep, output, line_begin, line_end);
}

}  // namespace pyvideo::kernels
