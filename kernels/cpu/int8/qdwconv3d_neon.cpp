// neon variant of the int8 depthwise conv3d: the shared loop nest with NeonF32 vectors.
#include "../simd.h"
#include "qdwconv3d_simd.h"

namespace pyvideo::kernels {

void qdwconv3d_neon(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                     int8_t* output, int64_t begin, int64_t end) {
  detail::qdwconv3d_simd<simd::NeonF32>(s, input, weight, q, output, begin, end);
}

}  // namespace pyvideo::kernels
