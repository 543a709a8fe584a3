// Reference int8 convolutions: the direct definitions with int32 accumulation. Every SIMD variant is tested against them.
#include <algorithm>

#include "../taps.h"
#include "qconv3d.h"

namespace pyvideo::kernels {

void qconv3d_scalar(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* /*weight_sum*/,
                    const Requant& q, const int8_t* /*pad_row*/, int8_t* output, int64_t item_begin, int64_t item_end) {
  const int64_t Ci = s.in_channels, Co = s.out_channels, Cs = s.co_stride(), K4 = (Ci + 3) / 4;
  const int64_t To = s.out_t(), Ho = s.out_h(), Wo = s.out_w(), blocks = s.column_blocks();
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t row = item / blocks, ow_begin = (item % blocks) * s.item_width();
    const int64_t ow_end = std::min(Wo, ow_begin + s.item_width());
    const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
    for (int64_t ow = ow_begin; ow < ow_end; ++ow)
      for (int64_t co = 0; co < Co; ++co) {
        int32_t acc = q.bias[co];
        // taps in the padding read the zero point: they contribute nothing
        for_each_input_tap(s, ot, oh, ow, [&](int64_t it, int64_t ih, int64_t iw, int64_t tap) {
          const int8_t* x = input + (((n * s.in_t + it) * s.in_h + ih) * s.in_w + iw) * Ci;
          for (int64_t ci = 0; ci < Ci; ++ci) {
            const int8_t w = packed_weight[((tap * K4 + ci / 4) * Cs + co) * 4 + ci % 4];
            acc += (int32_t(x[ci]) - q.input_zero_point) * int32_t(w);
          }
        });
        const int64_t o = (row * Wo + ow) * Cs + co;
        store_scalar(acc, co, o, q, output);
      }
  }
}

void fold_kernel_lines(const Conv3dShape& s, const int8_t* packed_weight, int64_t co_stride,
                       std::vector<int8_t>& folded) {
  const int64_t Ci = s.in_channels, Co = s.out_channels, Cs = s.co_stride(), K4 = (Ci + 3) / 4, KW = s.kernel_w;
  const int64_t lines = s.kernel_t * s.kernel_h, groups = (KW * Ci + 3) / 4;
  folded.assign(size_t(lines * groups * co_stride * 4), 0);
  for (int64_t line = 0; line < lines; ++line)
    for (int64_t f = 0; f < KW * Ci; ++f) {
      const int64_t tap = line * KW + f / Ci, ci = f % Ci;
      for (int64_t co = 0; co < Co; ++co)
        folded[size_t(((line * groups + f / 4) * co_stride + co) * 4 + f % 4)] =
            packed_weight[((tap * K4 + ci / 4) * Cs + co) * 4 + ci % 4];
    }
}

void qdwconv3d_scalar(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                      int8_t* output, int64_t begin, int64_t end) {
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  for (int64_t p = begin; p < end; ++p) {
    const int64_t row = DwConv3dShape::row_at(p, To, Ho);
    const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
    for (int64_t ow = 0; ow < Wo; ++ow)
      for (int64_t c = 0; c < C; ++c) {
        int32_t acc = q.bias[c];
        for_each_input_tap(s, ot, oh, ow, [&](int64_t it, int64_t ih, int64_t iw, int64_t tap) {
          const int32_t x = input[(((n * s.in_t + it) * s.in_h + ih) * s.in_w + iw) * C + c];
          acc += (x - q.input_zero_point) * int32_t(weight[tap * C + c]);
        });
        const int64_t o = (row * Wo + ow) * C + c;
        store_scalar(acc, c, o, q, output);
      }
  }
}

}  // namespace pyvideo::kernels
