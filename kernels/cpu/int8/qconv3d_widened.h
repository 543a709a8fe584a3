// The int8 dense conv3d of narrow inputs (C_in < 4: RGB and grey stems) on the fp32 dense kernel, for CPUs without a
// byte dot-product instruction (plain AVX2, whose int8 dense entry also serves AVX-512 without VNNI). V is a float
// vector wrapper from simd.h.
//
// The dot kernels take input channels in groups of four, so with C_in = 3 a quarter of every multiplied group is
// padding, and their tiles run a kernel line's 9 bytes as 3 groups. Without a byte dot an int8 multiply-add costs
// about an fp32 FMA (simd::Avx2Dot), so there the int8 stems ran at 0.70-0.72x the fp32 stems' speed (X3D-XS's
// 3 -> 24 1x3x3 and `make demo`'s 3 -> 16 3x3x3, bench/int8_kernels.py). Here each output row's input window
// (kernel_t x kernel_h input rows, zero rows for the padding) is widened to float x - zero_point, the fp32 kernel
// (its register tiles and width padding) computes the row's accumulators from it and the integer weights as floats,
// and RowRequantizer (qdwconv3d_rows.h) requantizes the row's columns from L1.
//
// Exactness: every product (x - zp) * w is an integer of magnitude at most 255 * 128, and the sums start at the bias.
// qconv3d_widened_applies() admits a layer only when |bias| + K * 255 * 128 < 2^24 for every channel (K = taps * C_in),
// so every partial sum, in any order, is an integer below 2^24, exact in float32: the accumulators equal the int32
// ones of the reference, and the requantization is the other kernels'.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../conv3d/conv3d.h"
#include "qconv3d_simd.h"
#include "qdwconv3d_rows.h"

namespace pyvideo::kernels::detail {

// Whether qconv3d_widened takes this call: a narrow, non-pointwise layer (not a channel range of a wider one) whose
// sums stay exact (see above) and whose output channels fill whole vectors of `width` lanes. With a partial last
// vector the fp32 kernel's masked weight loads cost more than the dot kernel's padding: R(2+1)D's 3 -> 45 1x7x7 stem
// (4x112x112, one thread) took 7.0 ms on this path against 5.9 on the dot kernel, where the others gained:
// Slow's 3 -> 64 1x7x7 15.3-15.9 -> 14.6-15.1 ms, CSN's 3x7x7 22.7-22.8 -> 20.2-20.8, X3D-XS's 3 -> 24 1x3x3
// 1.79-1.81 -> 1.70-1.72, `make demo`'s 3 -> 16 3x3x3 0.90-0.91 -> 0.84 (Zen 1, A/B, bench/int8_kernels.make_calls).
inline bool qconv3d_widened_applies(const Conv3dShape& s, const Requant& q, int width) {
  if (s.in_channels >= 4 || s.is_pointwise() || s.co_stride() != s.out_channels) return false;
  if (s.out_channels % width != 0) return false;
  const int64_t reduction = s.kernel_t * s.kernel_h * s.kernel_w * s.in_channels;
  int64_t largest_bias = 0;
  for (int64_t c = 0; c < s.out_channels; ++c) largest_bias = std::max<int64_t>(largest_bias, std::llabs(q.bias[c]));
  return largest_bias + reduction * 255 * 128 < (int64_t(1) << 24);
}

// Items [item_begin, item_end) of s (Conv3dShape's work items) with the fp32 dense kernel conv of the same ISA.
template <class V>
void qconv3d_widened(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const Requant& q,
                     int8_t* output, int64_t item_begin, int64_t item_end, Conv3dF32Fn conv) {
  const int64_t Ci = s.in_channels, Co = s.out_channels, groups = (Ci + 3) / 4;
  const int64_t taps = s.kernel_t * s.kernel_h * s.kernel_w, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  // The packed weights [tap][group][Co][4] as the fp32 kernel's [tap][Ci][Co], and the int32 biases as floats.
  std::vector<float> weight(static_cast<size_t>(taps * Ci * Co)), bias(static_cast<size_t>(Co));
  for (int64_t tap = 0; tap < taps; ++tap)
    for (int64_t ci = 0; ci < Ci; ++ci)
      for (int64_t co = 0; co < Co; ++co)
        weight[size_t((tap * Ci + ci) * Co + co)] =
            float(packed_weight[((tap * groups + ci / 4) * Co + co) * 4 + ci % 4]);
  for (int64_t c = 0; c < Co; ++c) bias[size_t(c)] = float(q.bias[c]);
  Epilogue ep;  // the accumulators only: bias + sum of products (the requantization applies the activation)
  ep.bias = bias.data();
  // One output row's window: its kernel_t x kernel_h input rows, one sample, no padding in t and h (padded rows are
  // zeros here). The same columns, column padding and item width as s.
  Conv3dShape window_shape = s;
  window_shape.batch = 1;
  window_shape.in_t = s.kernel_t, window_shape.in_h = s.kernel_h;
  window_shape.stride_t = window_shape.stride_h = 1;
  window_shape.pad_t = window_shape.pad_h = 0;
  const int64_t row_size = s.in_w * Ci, iw = window_shape.item_width();
  std::vector<float> window(static_cast<size_t>(s.kernel_t * s.kernel_h * row_size));
  std::vector<float> acc(static_cast<size_t>(Wo * Co)), zeros(static_cast<size_t>(Ci));
  const RowRequantizer<V> requantize(q, Co);
  const float zero_point = float(q.input_zero_point);
  s.for_each_row_span(item_begin, item_end, [&](int64_t row, int64_t ow_begin, int64_t ow_end) {
    const int64_t oh = row % Ho, ot = row / Ho % To, n = row / (Ho * To);
    for (int64_t i = 0; i < s.kernel_t; ++i)
      for (int64_t j = 0; j < s.kernel_h; ++j) {
        const int64_t t = ot * s.stride_t - s.pad_t + i, h = oh * s.stride_h - s.pad_h + j;
        float* dst = window.data() + (i * s.kernel_h + j) * row_size;
        if (t < 0 || t >= s.in_t || h < 0 || h >= s.in_h)
          std::fill(dst, dst + row_size, 0.0f);  // padding: x - zp = 0
        else
          widen_row<V>(input + ((n * s.in_t + t) * s.in_h + h) * row_size, row_size, zero_point, dst);
      }
    // The row span's items in the one-row window: ow_begin is an item boundary (for_each_row_span).
    conv(window_shape, window.data(), weight.data(), ep, zeros.data(), acc.data(), ow_begin / iw,
         (ow_end + iw - 1) / iw);
    requantize(acc.data(), row, Wo, ow_begin, ow_end, output);
  });
}

// The int8 dense entry of an x86 level without a byte dot (I: its emulated-dot wrapper from dot_simd.h): the stems
// qconv3d_widened takes on the level's fp32 kernel `conv`, everything else on qconv3d_simd's MR x NV tiles.
template <class I, int MR, int NV>
void qconv3d_emulated(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                      const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end,
                      Conv3dF32Fn conv) {
  if (qconv3d_widened_applies(s, q, I::F::width))
    return qconv3d_widened<typename I::F>(s, input, packed_weight, q, output, item_begin, item_end, conv);
  qconv3d_simd<I, MR, NV>(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
}

}  // namespace pyvideo::kernels::detail
