// avx512 variant of the int8 depthwise conv3d (AVX-512 without VNNI: Skylake-SP / -X): the fp32 depthwise loop nest
// on input rows widened once to float (qdwconv3d_rows.h), as on AVX2. It replaced a kernel that widened the int8
// input for every tap, which on the AVX2 machine that measured both took 5.3x the time on X3D-XS's depthwise layers
// (bench/int8_kernels.py); on AVX-512 itself neither has been timed.
#include "../simd.h"
#include "qdwconv3d_rows.h"

namespace pyvideo::kernels {

void qdwconv3d_avx512(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                      int8_t* output, int64_t begin, int64_t end) {
  detail::qdwconv3d_widened<simd::Avx512F32>(s, input, weight, q, output, begin, end);
}

}  // namespace pyvideo::kernels
