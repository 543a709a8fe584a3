// AVX-512 VNNI variant of the int8 dense conv3d: vpdpbusd on 16 output channels per register, 8x3 register tiles.
#include "dot_simd.h"
#include "qconv3d_simd.h"

namespace pyvideo::kernels {

void qconv3d_avx512vnni(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight,
                        const int32_t* weight_sum, const Requant& q, const int8_t* pad_row, int8_t* output,
                        int64_t item_begin, int64_t item_end) {
  detail::qconv3d_simd<simd::Avx512Vnni, 8, 3>(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin,
                                               item_end);
}

}  // namespace pyvideo::kernels
