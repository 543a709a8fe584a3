// AVX-512 VNNI variant of the int8 dense conv3d: vpdpbusd on 16 output channels per register, 8x2 register tiles.
#include "../simd.h"
#include "qconv3d_simd.h"

namespace pyvideo::kernels {
namespace {

struct Avx512Vnni {
  using ireg = __m512i;
  using F = simd::Avx512F32;
  static constexpr int width = 16;
  static constexpr int32_t input_offset = 128;  // vpdpbusd's first operand is unsigned: x ^ 0x80 == x + 128
  static ireg zero() { return _mm512_setzero_si512(); }
  using mask_t = __mmask16;
  static mask_t mask(int lanes) { return F::mask(lanes); }
  static ireg load_w(const int8_t* p, mask_t m) { return _mm512_maskz_loadu_epi32(m, p); }
  static ireg from_bytes(int32_t v) { return _mm512_set1_epi32(v ^ int32_t(0x80808080u)); }
  static ireg broadcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return from_bytes(v);
  }
  static ireg broadcast_partial(const int8_t* p, int bytes) {
    int32_t v = 0;
    std::memcpy(&v, p, size_t(bytes));
    return from_bytes(v);  // missing bytes become 128; their weights are zero
  }
  static ireg dot(ireg acc, ireg a, ireg b) { return _mm512_dpbusd_epi32(acc, a, b); }
  static ireg add(ireg a, ireg b) { return _mm512_add_epi32(a, b); }
  static ireg load_i32(const int32_t* p) { return _mm512_loadu_si512(p); }
  static void store_i32(int32_t* p, ireg v) { _mm512_storeu_si512(p, v); }
  static F::reg to_float(ireg v) { return _mm512_cvtepi32_ps(v); }
};

}  // namespace

void qconv3d_avx512vnni(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight,
                        const int32_t* weight_sum, const Requant& q, const int8_t* pad_row, int8_t* output,
                        int64_t item_begin, int64_t item_end) {
  detail::qconv3d_simd<Avx512Vnni, 8, 2>(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
}

}  // namespace pyvideo::kernels
