// ARMv8.0 NEON variant of the int8 dense conv3d, for cores without the dot-product extension (Cortex-A53, A57, A72,
// A73): sdot's sums computed exactly with widening multiplies (simd::NeonMull), 4 output channels per register.
// Tiles of 4 columns x 2 vectors: the largest that aarch64 GCC 12 keeps in registers with the emulation's int16
// temporaries (no stack access in the folded loop; 4x3, 5x3, 6x2 and 8x2 spill some accumulators); about 6.4
// instructions per dot there against the dotprod kernel's 2.4. Not timed on ARM hardware (none at hand).
#include "dot_simd.h"
#include "qconv3d_simd.h"

namespace pyvideo::kernels {

void qconv3d_neon(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                  const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end) {
  detail::qconv3d_simd<simd::NeonMull, 4, 2>(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin,
                                            item_end);
}

}  // namespace pyvideo::kernels
