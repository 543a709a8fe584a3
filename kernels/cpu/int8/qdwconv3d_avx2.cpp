// avx2 variant of the int8 depthwise conv3d: the dot-product loop nest of qdwconv3d_dot.h with vpdpbusd emulated
// (simd::Avx2Dot, 8 channels per register).
#include "dot_simd.h"
#include "qdwconv3d_dot.h"

namespace pyvideo::kernels {

void qdwconv3d_avx2(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                    int8_t* output, int64_t begin, int64_t end) {
  detail::qdwconv3d_dot<simd::Avx2Dot>(s, input, weight, q, output, begin, end);
}

}  // namespace pyvideo::kernels
