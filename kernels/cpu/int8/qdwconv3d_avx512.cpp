// avx512 variant of the int8 depthwise conv3d: the shared loop nest with Avx512F32 vectors.
#include "../simd.h"
#include "qdwconv3d_simd.h"

namespace pyvideo::kernels {

void qdwconv3d_avx512(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                     int8_t* output, int64_t begin, int64_t end) {
  detail::qdwconv3d_simd<simd::Avx512F32>(s, input, weight, q, output, begin, end);
}

}  // namespace pyvideo::kernels
