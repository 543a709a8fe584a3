// AVX-512 variant of the int8 dense conv3d for CPUs without VNNI (Skylake-SP / -X): vpdpbusd emulated exactly by two
// vpmaddwd per dot (simd::Avx512Dot), 16 output channels per register, 4x3 tiles; layers of up to 1 MB of weights
// split them into their int16 halves once per call (Avx512Dot::presplit_max_bytes). Until it, this level ran the
// AVX2 kernel (8 lanes, 16 registers). Narrow inputs (C_in < 4: stems) with whole vectors of output channels run the
// fp32 dense kernel on widened input rows, as on AVX2 (qconv3d_widened.h).
//
// Tiles (Zen 4 with PYVIDEO_VNNI=0, one thread): on X3D-XS's int8 pointwise and spatial layers 8x3, 8x2, 4x3 and 5x4
// came within 2.4% of each other, 4x2, 6x2 and 12x2 5-11% slower; 4x3 ran Slow-R50's layers 1.02-1.04x faster than
// 8x2 or 8x3 (geomean). It keeps its 6 weight vectors in registers with room to spare (12 accumulators), so each is
// loaded once per group of 4 columns.
#include "../simd.h"
#include "dot_simd.h"
#include "qconv3d_widened.h"

namespace pyvideo::kernels {

void qconv3d_avx512(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                    const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end) {
  detail::qconv3d_emulated<simd::Avx512Dot, 4, 3>(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin,
                                                 item_end, conv3d_f32_avx512);
}

}  // namespace pyvideo::kernels
