// avx2 variant of the int8 depthwise conv3d: the fp32 depthwise loop nest on input rows widened once to float
// (qdwconv3d_rows.h). Without a byte dot instruction an int8 multiply-add costs an fp32 FMA; this beat the dot
// kernel with vpdpbusd emulated (simd::Avx2Dot) on every X3D depthwise layer (bench/int8_kernels.py).
#include "../simd.h"
#include "qdwconv3d_rows.h"

namespace pyvideo::kernels {

void qdwconv3d_avx2(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                    int8_t* output, int64_t begin, int64_t end) {
  detail::qdwconv3d_widened<simd::Avx2F32>(s, input, weight, q, output, begin, end);
}

}  // namespace pyvideo::kernels
