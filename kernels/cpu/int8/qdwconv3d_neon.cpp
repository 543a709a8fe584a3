// ARMv8.0 NEON variant of the int8 depthwise conv3d (cores without dotprod): the dot-product loop nest of
// qdwconv3d_dot.h with sdot emulated (simd::NeonMull, 4 channels per register).
#include "dot_simd.h"
#include "qdwconv3d_dot.h"

namespace pyvideo::kernels {

void qdwconv3d_neon(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                    int8_t* output, int64_t begin, int64_t end) {
  detail::qdwconv3d_dot<simd::NeonMull>(s, input, weight, q, output, begin, end);
}

}  // namespace pyvideo::kernels
