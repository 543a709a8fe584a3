// Plain-AVX2 variant of the int8 dense conv3d (x86 CPUs without VNNI): vpdpbusd emulated exactly by two vpmaddwd per
// dot (simd::Avx2Dot), on 8 output channels per register, 4x2 tiles (the emulation's int16 halves take the registers
// a 6x2 tile's accumulators would). Layers of at most 256 KB of weights (all of X3D's) split the weights into their
// int16 halves once per call (Avx2Dot::dot_split, presplit_max_bytes). With the split
// weights 6x2, 5x2, 4x3 and 3x3 tiles were all slower than 4x2 on X3D's pointwise layers (0.87-0.97x, Zen 1).
// Narrow inputs (C_in < 4: stems) with whole vectors of output channels run the fp32 dense kernel on widened input
// rows instead (qconv3d_widened.h), where its sums are exact.
#include "../simd.h"
#include "dot_simd.h"
#include "qconv3d_widened.h"

namespace pyvideo::kernels {

void qconv3d_avx2(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                  const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end) {
  detail::qconv3d_emulated<simd::Avx2Dot, 4, 2>(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin,
                                                 item_end, conv3d_f32_avx2);
}

}  // namespace pyvideo::kernels
