// The int8 dense conv3d shared by the dot-product variants (x86 VNNI vpdpbusd, ARM sdot); I is an int8 dot-product
// wrapper defined in each variant's file, I::F its float wrapper of the same width.
//
// Same tiling as the fp32 kernel (conv3d_simd.h): MR output columns x NV vectors of output channels in registers;
// each instruction multiplies four input channels by four weights per output channel and adds them to int32 lanes.
// VNNI multiplies unsigned by signed bytes, so inputs are fed as x + 128 (I::input_offset); the per-channel
// correction bias - (zero_point + offset) * sum(w) turns the sum back into sum (x - zero_point) * w. Taps in the
// padding (in T, H and W) read pad_row (the zero point), which the correction cancels exactly.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "requant_simd.h"

namespace pyvideo::kernels::detail {

template <class I, int MR, int NV>
void qconv3d_tile(const Conv3dShape& s, const int8_t* input_n, int64_t it0, int64_t ih0, int64_t kt_begin,
                  int64_t kt_end, int64_t kh_begin, int64_t kh_end, const int8_t* packed_weight,
                  const int32_t* weight_sum, const Requant& q, const int8_t* pad_row, int8_t* out_row,
                  int64_t out_offset, int64_t ow0, int m, int64_t n0) {
  using ireg = typename I::ireg;
  using F = typename I::F;
  const int64_t Ci = s.in_channels, Co = s.out_channels, K4 = (Ci + 3) / 4, full_groups = Ci / 4;
  const int tail_bytes = int(Ci - full_groups * 4);
  int lanes[NV];
  typename I::mask_t masks[NV];  // precomputed: a branch on the lane count inside the K loop costs register spills
  for (int j = 0; j < NV; ++j) {
    lanes[j] = int(std::min<int64_t>(I::width, std::max<int64_t>(0, Co - n0 - j * I::width)));
    masks[j] = I::mask(lanes[j]);
  }

  ireg acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = I::zero();
  // Every tap runs, those in the T/H padding on pad_row too: the correction assumes all taps read something.
  for (int64_t kt = 0; kt < s.kernel_t; ++kt)
    for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
      const bool line_inside = kt >= kt_begin && kt < kt_end && kh >= kh_begin && kh < kh_end;
      const int8_t* x_line = line_inside ? input_n + ((it0 + kt) * s.in_h + ih0 + kh) * s.in_w * Ci : nullptr;
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
        const int8_t* a[MR];
        for (int i = 0; i < MR; ++i) {
          const int64_t iw = (ow0 + std::min(i, m - 1)) * s.stride_w - s.pad_w + kw;
          a[i] = (line_inside && iw >= 0 && iw < s.in_w) ? x_line + iw * Ci : pad_row;
        }
        const int64_t tap = (kt * s.kernel_h + kh) * s.kernel_w + kw;
        const int8_t* w = packed_weight + (tap * K4 * Co + n0) * 4;
        for (int64_t g = 0; g < full_groups; ++g) {
          ireg b[NV];
#pragma GCC unroll 4
          for (int j = 0; j < NV; ++j) b[j] = I::load_w(w + (g * Co + j * I::width) * 4, masks[j]);
#pragma GCC unroll 16
          for (int i = 0; i < MR; ++i) {
            const ireg x = I::broadcast4(a[i] + g * 4);
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) acc[i][j] = I::dot(acc[i][j], x, b[j]);
          }
        }
        if (tail_bytes) {
          const int64_t g = full_groups;
          ireg b[NV];
#pragma GCC unroll 4
          for (int j = 0; j < NV; ++j) b[j] = I::load_w(w + (g * Co + j * I::width) * 4, masks[j]);
#pragma GCC unroll 16
          for (int i = 0; i < MR; ++i) {
            const ireg x = I::broadcast_partial(a[i] + g * 4, tail_bytes);
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) acc[i][j] = I::dot(acc[i][j], x, b[j]);
          }
        }
      }
    }
  // Park the accumulators with constant indices (GCC spills a register array indexed at runtime in the K loop),
  // then apply the zero-point correction and requantize.
  alignas(64) int32_t parked[MR][NV * I::width];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) I::store_i32(&parked[i][j * I::width], acc[i][j]);
  for (int j = 0; j < NV; ++j) {
    if (lanes[j] == 0) break;
    alignas(64) int32_t corr[I::width] = {};
    for (int l = 0; l < lanes[j]; ++l) {
      const int64_t c = n0 + j * I::width + l;
      corr[l] = q.bias[c] - (q.input_zero_point + I::input_offset) * weight_sum[c];
    }
    const ireg correction = I::load_i32(corr);
    for (int i = 0; i < m; ++i) {
      const int64_t c = n0 + j * I::width;
      const typename F::reg v = I::to_float(I::add(I::load_i32(&parked[i][j * I::width]), correction));
      requantize_store<F>(v, c, out_offset + (ow0 + i) * Co + c, lanes[j], q, out_row);
    }
  }
}

template <class I, int MR, int NV>
void qconv3d_simd(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                  const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end) {
  const int64_t Co = s.out_channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w(), blocks = s.column_blocks();
  constexpr int64_t block_n = int64_t(NV) * I::width;
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t row = item / blocks, ow_begin = (item % blocks) * Conv3dShape::tile_w;
    const int64_t ow_end = std::min(Wo, ow_begin + Conv3dShape::tile_w);
    const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
    const int8_t* input_n = input + n * s.in_t * s.in_h * s.in_w * s.in_channels;
    const int64_t it0 = ot * s.stride_t - s.pad_t, ih0 = oh * s.stride_h - s.pad_h;
    const int64_t kt_begin = std::max<int64_t>(0, -it0), kt_end = std::min<int64_t>(s.kernel_t, s.in_t - it0);
    const int64_t kh_begin = std::max<int64_t>(0, -ih0), kh_end = std::min<int64_t>(s.kernel_h, s.in_h - ih0);
    for (int64_t n0 = 0; n0 < Co; n0 += block_n)
      for (int64_t ow0 = ow_begin; ow0 < ow_end; ow0 += MR) {
        const int m = int(std::min<int64_t>(MR, ow_end - ow0));
        qconv3d_tile<I, MR, NV>(s, input_n, it0, ih0, kt_begin, kt_end, kh_begin, kh_end, packed_weight, weight_sum, q,
                                pad_row, output, row * Wo * Co, ow0, m, n0);
      }
  }
}

}  // namespace pyvideo::kernels::detail
