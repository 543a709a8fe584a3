// ARM dot-product variant of the int8 dense conv3d: sdot on 4 output channels per register, 8x3 register tiles.
#include "../simd.h"
#include "qconv3d_simd.h"

namespace pyvideo::kernels {
namespace {

struct NeonDot {
  using ireg = int32x4_t;
  using F = simd::NeonF32;
  static constexpr int width = 4;
  static constexpr int32_t input_offset = 0;  // sdot multiplies signed by signed: no offset
  static ireg zero() { return vdupq_n_s32(0); }
  using mask_t = int;
  static mask_t mask(int lanes) { return lanes; }
  static ireg load_w(const int8_t* p, mask_t lanes) {
    if (lanes == width) return vreinterpretq_s32_s8(vld1q_s8(p));
    int8_t b[16] = {};
    std::memcpy(b, p, size_t(lanes) * 4);
    return vreinterpretq_s32_s8(vld1q_s8(b));
  }
  static ireg broadcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return vdupq_n_s32(v);
  }
  static ireg broadcast_partial(const int8_t* p, int bytes) {
    int32_t v = 0;
    std::memcpy(&v, p, size_t(bytes));
    return vdupq_n_s32(v);
  }
  static ireg dot(ireg acc, ireg a, ireg b) { return vdotq_s32(acc, vreinterpretq_s8_s32(a), vreinterpretq_s8_s32(b)); }
  static ireg add(ireg a, ireg b) { return vaddq_s32(a, b); }
  static ireg load_i32(const int32_t* p) { return vld1q_s32(p); }
  static void store_i32(int32_t* p, ireg v) { vst1q_s32(p, v); }
  static F::reg to_float(ireg v) { return vcvtq_f32_s32(v); }
};

}  // namespace

void qconv3d_neondot(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                     const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end) {
  detail::qconv3d_simd<NeonDot, 8, 3>(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
}

}  // namespace pyvideo::kernels
