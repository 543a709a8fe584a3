// The int8 dense conv3d shared by the dot-product variants (x86 VNNI vpdpbusd, ARM sdot); I is an integer wrapper
// from dot_simd.h, I::F its float wrapper of the same width.
//
// Same tiling as the fp32 kernel (conv3d_simd.h): MR output columns x NV vectors of output channels in registers;
// each instruction multiplies four input channels by four weights per output channel and adds them to int32 lanes.
// VNNI multiplies unsigned by signed bytes, so inputs are fed as x + 128 (I::input_offset); the per-channel
// correction bias - (zero_point + offset) * sum(w) turns the sum back into sum (x - zero_point) * w. Taps in the
// padding (in T, H and W) read the zero point, which the correction cancels exactly.
//
// Output channels go NV vectors at a time and the rest in narrower tiles (two of two vectors rather than three and
// one: a one-vector tile needs a broadcast per dot), so no dot works on a vector of channels past C_out (X3D's
// widths 24, 48, 54, 108, 216, 432 are not multiples of NV * width).
//
// ARM (sdot, no offset) reads the input in place: taps in the padding read pad_row. With C_in not a multiple of 4
// (the RGB stem has C_in = 3) each tap's last group of four would be a partial load. In
// channels-last memory the kw taps of one kernel row are kw * C_in contiguous bytes, so columns whose window lies
// inside the input ("folded" columns) take the kernel row as one run of ceil(kw * C_in / 4) groups: whole 4-byte
// loads only, and fewer dots when kw * C_in packs better than kw times ceil(C_in / 4). The bytes a last group reads
// past the window have zero weights. The folded weights are rebuilt from the packed ones on every call.
//
// x86 instead: each work item first copies the input it reads, offset applied, into a small buffer ("prepped"): its
// kt*kh input lines over the window of its columns, the T/H/W padding materialised as the zero point. The tiles then
// broadcast straight from memory, a load only, instead of a load, an xor and a broadcast from a general register
// per group and tile (the broadcast competes with the dots for the vector ports, and every input group is broadcast
// once per tile of channels); and every column reads each kernel row as one folded run, borders included.
//
// AVX-512 layers of at most 8 output channels (SlowFast's fast pathway: its 3 -> 8 channel 5x7x7 stem and its 8-channel
// convs) would leave half of every 16-lane dot idle. They take paired groups instead (qconv3d_tile_paired): one dot
// covers two consecutive 4-byte groups of a kernel line, the input's 8 bytes broadcast to every 64-bit lane (lanes 2c
// and 2c + 1 get groups g and g + 1) against weights interleaved the same way, and the two lanes of each channel are
// added once at the end. A line of G groups takes ceil(G / 2) dots instead of G; the int32 sums are the same.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "requant_simd.h"

namespace pyvideo::kernels::detail {

// What one call of the dense kernel shares across its tiles.
struct QConvCall {
  const Conv3dShape* s;
  const int8_t* packed_weight;   // [tap][ceil(Ci/4)][co_stride][4]
  const int32_t* weight_sum;
  const Requant* q;
  const int8_t* pad_row;         // Ci bytes of the zero point
  int8_t* output;
  int64_t groups;                // folded: 4-byte groups per kernel row, 0 when folding is off
  const int8_t* folded_weight;   // [kt * kh][groups][co_stride][4]
  const int8_t* pad_line;        // 4 * groups bytes of the zero point (folded kernel rows in the T/H padding)
  const int8_t* prepped;         // x86: this item's input, offset applied, [kt * kh line][prep_stride bytes]
  int64_t prep_stride, prep_col0; // bytes per prepped line, the output column whose window starts the lines
  const float* linear_scale;     // [Co] dequant / output scale when linear_requant(q), else nullptr
  const int32_t* correction;     // [Co, padded to whole vectors] bias - (zero_point + offset) * weight_sum
  // x86, the reduction in parts (see qconv3d_simd): the prepped lines [line_begin, line_end) and their 4-byte
  // groups [group_begin, group_end) only; unless `first` the tile adds the earlier parts' parked sums, and unless `last`
  // it parks its sums instead of requantizing. Column ow's sums start at partial + (ow - prep_col0) * partial_ld.
  int64_t line_begin = 0, line_end = 0, group_begin = 0, group_end = 0;
  int32_t* partial = nullptr;
  int64_t partial_ld = 0;
  bool first = true, last = true;
  // I::presplit, layers of at most I::presplit_max_bytes (QSource::prepped_split): the folded weights with each
  // channel vector's 4-byte groups split ahead of time (I::split_weights), [kt * kh][groups][vectors][I::split_size].
  const int16_t* split_weight = nullptr;
  int64_t split_vectors = 0;
};

// How a tile reads its inputs: tap by tap (border columns), one run per kernel row (folded columns), or from the
// item's prepped pixels (x86), all of the reduction or one part of it (QConvCall::line_begin...); prepped_split:
// prepped pixels against the split weights (QConvCall::split_weight), all of the reduction.
enum class QSource { taps, folded, prepped, prepped_part, prepped_split };

// One tile: output columns ow0 + [0, m) of a row, channel vectors n0 / width + [0, NV), all read the Source way.
// Full: every vector of the tile is whole (the tile picks it itself, see below).
template <class I, int MR, int NV, QSource Source, bool Full = false>
void qconv3d_tile(const QConvCall& call, const int8_t* input_n, int64_t it0, int64_t ih0, int64_t kt_begin,
                  int64_t kt_end, int64_t kh_begin, int64_t kh_end, int64_t out_offset, int64_t ow0, int m,
                  int64_t n0) {
  using ireg = typename I::ireg;
  using F = typename I::F;
  const Conv3dShape& s = *call.s;
  const Requant& q = *call.q;
  const int64_t Ci = s.in_channels, Co = s.out_channels, Cs = s.co_stride(), K4 = (Ci + 3) / 4, full_groups = Ci / 4;
  const int tail_bytes = int(Ci - full_groups * 4);
  // Where a partial weight load costs more than a whole one (I::costly_partial_loads), tiles whose vectors are all
  // whole (only the last one can be partial) run as their own instantiation with plain loads. ARM's partial load
  // branches on the lane count, and that branch inside the group loop made GCC keep every accumulator in memory
  // through the loop (a load and a store per dot, aarch64 GCC 12; both forms in one function, a loop each and the
  // branch above them, spilled as much). AVX2's is a vpmaskmovd whose mask GCC reloaded from the stack per load.
  if constexpr (I::costly_partial_loads && !Full) {
    if (Co - n0 >= NV * I::width)
      return qconv3d_tile<I, MR, NV, Source, true>(call, input_n, it0, ih0, kt_begin, kt_end, kh_begin, kh_end,
                                                   out_offset, ow0, m, n0);
  }
  int lanes[NV];
  typename I::mask_t masks[NV];  // precomputed: a branch on the lane count inside the K loop costs register spills
  for (int j = 0; j < NV; ++j) {
    lanes[j] = Full ? int(I::width) : int(std::min<int64_t>(I::width, Co - n0 - j * I::width));
    masks[j] = I::mask(lanes[j]);
  }

  // The sums start at the channel's zero-point correction (integers: exact in any order), so the epilogue has no add;
  // a reduction in parts adds it after the last part instead (its accumulators start at zero in every part).
  constexpr bool corrected = Source != QSource::prepped_part;
  ireg acc[MR][NV];
#pragma GCC unroll 4
  for (int j = 0; j < NV; ++j) {
    const ireg start = corrected ? I::load_i32(call.correction + n0 + j * I::width) : I::zero();
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i][j] = start;
  }
  // groups of four input bytes at a[i] + 4g against the weights at w (a [groups][co_stride][4] run), g < groups
  auto accumulate = [&](const int8_t* const* a, const int8_t* w, int64_t groups) {
    for (int64_t g = 0; g < groups; ++g) {
      ireg b[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) b[j] = Full ? I::load_w(w + (g * Cs + j * I::width) * 4)
                                               : I::load_w(w + (g * Cs + j * I::width) * 4, masks[j]);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const ireg x = Source == QSource::prepped || Source == QSource::prepped_part ? I::broadcast_raw(a[i] + g * 4)
                                                                                    : I::broadcast4(a[i] + g * 4);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = I::dot(acc[i][j], x, b[j]);
      }
    }
  };
  if constexpr (Source == QSource::prepped || Source == QSource::prepped_part || Source == QSource::prepped_split) {
    // the call's lines and groups: all of them, or one part of the reduction
    const int64_t column = s.stride_w * Ci, g0 = call.group_begin;
    for (int64_t line = call.line_begin; line < call.line_end; ++line) {
      const int8_t* a[MR];
      const int8_t* x_line = call.prepped + line * call.prep_stride + g0 * 4;
      for (int i = 0; i < MR; ++i) a[i] = x_line + (ow0 + std::min(i, m - 1) - call.prep_col0) * column;
      if constexpr (Source == QSource::prepped_split) {
        // n0 is a multiple of the width here (the last tile is not moved back); vectors past C_out are zero weights
        constexpr int64_t Z = I::split_size;
        const int64_t V = call.split_vectors;
        const int16_t* w = call.split_weight + ((line * call.groups + g0) * V + n0 / I::width) * Z;
        for (int64_t g = 0; g < call.group_end - g0; ++g) {
#pragma GCC unroll 16
          for (int i = 0; i < MR; ++i) {
            const ireg x = I::broadcast_raw(a[i] + g * 4);
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) acc[i][j] = I::dot_split(acc[i][j], x, w + (g * V + j) * Z);
          }
        }
      } else {
        accumulate(a, call.folded_weight + ((line * call.groups + g0) * Cs + n0) * 4, call.group_end - g0);
      }
    }
  } else
  // Every tap runs, those in the T/H padding on pad_row (pad_line) too: the correction assumes all taps read something.
  for (int64_t kt = 0; kt < s.kernel_t; ++kt)
    for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
      const bool line_inside = kt >= kt_begin && kt < kt_end && kh >= kh_begin && kh < kh_end;
      const int8_t* x_line = line_inside ? input_n + ((it0 + kt) * s.in_h + ih0 + kh) * s.in_w * Ci : nullptr;
      if constexpr (Source == QSource::folded) {
        const int8_t* a[MR];
        for (int i = 0; i < MR; ++i)
          a[i] = line_inside ? x_line + ((ow0 + std::min(i, m - 1)) * s.stride_w - s.pad_w) * Ci : call.pad_line;
        accumulate(a, call.folded_weight + ((kt * s.kernel_h + kh) * call.groups * Cs + n0) * 4, call.groups);
      } else {
        for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
          const int8_t* a[MR];
          for (int i = 0; i < MR; ++i) {
            const int64_t iw = (ow0 + std::min(i, m - 1)) * s.stride_w - s.pad_w + kw;
            a[i] = (line_inside && iw >= 0 && iw < s.in_w) ? x_line + iw * Ci : call.pad_row;
          }
          const int64_t tap = (kt * s.kernel_h + kh) * s.kernel_w + kw;
          const int8_t* w = call.packed_weight + (tap * K4 * Cs + n0) * 4;
          accumulate(a, w, full_groups);
          if (tail_bytes) {
            const int64_t g = full_groups;
            ireg b[NV];
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) b[j] = Full ? I::load_w(w + (g * Cs + j * I::width) * 4)
                                               : I::load_w(w + (g * Cs + j * I::width) * 4, masks[j]);
#pragma GCC unroll 16
            for (int i = 0; i < MR; ++i) {
              const ireg x = I::broadcast_partial(a[i] + g * 4, tail_bytes);
#pragma GCC unroll 4
              for (int j = 0; j < NV; ++j) acc[i][j] = I::dot(acc[i][j], x, b[j]);
            }
          }
        }
      }
    }
  // Requantize straight from the registers, with constant indices: columns past m are skipped by a branch. Indexed
  // at run time (for i < m) the accumulators would live in memory through the whole reduction loop, so that loop
  // parked them first and read them back (with the correction added here): 1.04-1.3x faster without, X3D's small-K
  // layers the most (bench/conv3d_layers.py --int8, AVX-512 VNNI, seventeenth session). The two loops below are
  // written out: one loop taking the store as a lambda made GCC 12 store the accumulators to the stack in every
  // iteration of the reduction loop, and one loop choosing the store per vector measured 0.94-0.98x on X3D-S's layers
  // (against this form, same tool).
  auto requantize = [&](auto&& sum_of) {
    if (call.linear_scale) {  // identity / relu, no residual: one FMA
      const bool relu = q.activation == Activation::relu;
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        const int64_t c = n0 + j * I::width;
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
          if (i >= m) break;
          requantize_linear_store<F>(I::to_float(sum_of(i, j)), call.linear_scale + c, out_offset + (ow0 + i) * Cs + c,
                                     lanes[j], relu, q, call.output);
        }
      }
      return;
    }
    const Requantizer<F> requantizer(q);
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      const int64_t c = n0 + j * I::width;
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        if (i >= m) break;
        requantizer.store(I::to_float(sum_of(i, j)), c, out_offset + (ow0 + i) * Cs + c, lanes[j], call.output);
      }
    }
  };
  if constexpr (corrected) {
    requantize([&](int i, int j) { return acc[i][j]; });
  } else {
    // A part of the reduction: park the accumulators (constant indices), add the earlier parts' sums (accumulators
    // start at zero in every part: started from the partial sums in registers, GCC kept them in memory through the
    // whole reduction loop) and park them for the next part, or after the last part add the correction and
    // requantize.
    alignas(64) int32_t parked[MR][NV * I::width];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) I::store_i32(&parked[i][j * I::width], acc[i][j]);
    for (int i = 0; i < m; ++i) {
      int32_t* p = call.partial + (ow0 + i - call.prep_col0) * call.partial_ld + n0;
      for (int j = 0; j < NV; ++j) {
        ireg v = I::load_i32(&parked[i][j * I::width]);
        if (!call.first) v = I::add(v, I::load_i32(p + j * I::width));
        if (call.last) v = I::add(v, I::load_i32(call.correction + n0 + j * I::width));
        I::store_i32(call.last ? &parked[i][j * I::width] : p + j * I::width, v);
      }
    }
    if (call.last) requantize([&](int i, int j) { return I::load_i32(&parked[i][j * I::width]); });
  }
}

// Output columns ow0 + [0, m) of a layer of at most 8 output channels from the item's prepped lines, paired groups (see
// the top): `paired` holds the weights as [line][pair][8 channels][2 groups][4 bytes], zero for channels past C_out
// and for the group past an odd count (whose input bytes, up to 7 past a line's window, are the line's spare bytes).
template <class I, int MR>
void qconv3d_tile_paired(const QConvCall& call, const int8_t* paired, int64_t pairs, int64_t out_offset, int64_t ow0,
                         int m) {
  using ireg = typename I::ireg;
  using F = typename I::F;
  const Conv3dShape& s = *call.s;
  const Requant& q = *call.q;
  const int64_t Co = s.out_channels, Cs = s.co_stride(), lines = s.kernel_t * s.kernel_h;
  const int64_t column = s.stride_w * s.in_channels;
  ireg acc[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc[i] = I::zero();
  for (int64_t line = 0; line < lines; ++line) {
    const int8_t* a[MR];
    const int8_t* x_line = call.prepped + line * call.prep_stride;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) a[i] = x_line + (ow0 + std::min(i, m - 1) - call.prep_col0) * column;
    const int8_t* w = paired + line * pairs * 64;
    for (int64_t p = 0; p < pairs; ++p) {
      const ireg b = I::load(w + p * 64);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) acc[i] = I::dot(acc[i], I::broadcast_pair(a[i] + 8 * p), b);
    }
  }
  alignas(64) int32_t parked[MR][I::width];  // constant indices here, the runtime-bounded loop below reads memory
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) I::store_i32(parked[i], I::sum_pairs(acc[i]));
  const Requantizer<F> requantizer(q);
  const ireg correction = I::load_i32(call.correction);
  const bool relu = q.activation == Activation::relu;
  for (int i = 0; i < m; ++i) {
    const typename F::reg v = I::to_float(I::add(I::load_i32(parked[i]), correction));
    const int64_t o = out_offset + (ow0 + i) * Cs;
    if (call.linear_scale)
      requantize_linear_store<F>(v, call.linear_scale, o, int(Co), relu, q, call.output);
    else
      requantizer.store(v, 0, o, int(Co), call.output);
  }
}

// Output columns [ow_begin, ow_end) of a row for channel vectors n0 / width + [0, NV), in tiles of MR columns;
// [fold_lo, fold_hi): the folded columns (empty when folding is off); on x86 every column reads the prepped item.
template <class I, int MR, int NV>
void qconv3d_columns(const QConvCall& call, const int8_t* input_n, int64_t it0, int64_t ih0, int64_t kt_begin,
                     int64_t kt_end, int64_t kh_begin, int64_t kh_end, int64_t out_offset, int64_t ow_begin,
                     int64_t ow_end, int64_t fold_lo, int64_t fold_hi, int64_t n0) {
  auto tiles = [&](auto source, int64_t from, int64_t to) {
    for (int64_t ow0 = from; ow0 < to; ow0 += MR)
      qconv3d_tile<I, MR, NV, decltype(source)::value>(call, input_n, it0, ih0, kt_begin, kt_end, kh_begin, kh_end,
                                                        out_offset, ow0, int(std::min<int64_t>(MR, to - ow0)), n0);
  };
  if constexpr (I::input_offset != 0) {
    if (call.partial) {
      tiles(std::integral_constant<QSource, QSource::prepped_part>{}, ow_begin, ow_end);
    } else if (call.split_weight) {  // set only where I::presplit
      if constexpr (I::presplit) tiles(std::integral_constant<QSource, QSource::prepped_split>{}, ow_begin, ow_end);
    } else {
      tiles(std::integral_constant<QSource, QSource::prepped>{}, ow_begin, ow_end);
    }
  } else {
    const int64_t lo = std::clamp(fold_lo, ow_begin, ow_end), hi = std::clamp(fold_hi, lo, ow_end);
    tiles(std::integral_constant<QSource, QSource::taps>{}, ow_begin, lo);
    tiles(std::integral_constant<QSource, QSource::folded>{}, lo, hi);
    tiles(std::integral_constant<QSource, QSource::taps>{}, hi, ow_end);
  }
}

// The last `vectors` (< NV) channel vectors from n0, as one tile of that width.
template <class I, int MR, int NV>
void qconv3d_remainder(int vectors, const QConvCall& call, const int8_t* input_n, int64_t it0, int64_t ih0,
                       int64_t kt_begin, int64_t kt_end, int64_t kh_begin, int64_t kh_end, int64_t out_offset,
                       int64_t ow_begin, int64_t ow_end, int64_t fold_lo, int64_t fold_hi, int64_t n0) {
  if constexpr (NV > 1) {
    if (vectors == NV - 1)
      qconv3d_columns<I, MR, NV - 1>(call, input_n, it0, ih0, kt_begin, kt_end, kh_begin, kh_end, out_offset,
                                     ow_begin, ow_end, fold_lo, fold_hi, n0);
    else
      qconv3d_remainder<I, MR, NV - 1>(vectors, call, input_n, it0, ih0, kt_begin, kt_end, kh_begin, kh_end,
                                       out_offset, ow_begin, ow_end, fold_lo, fold_hi, n0);
  }
}

// Pointwise layers over at most qconv3d_gemv_max_positions output positions in all (qconv3d_is_gemv: a network's head
// after its global pool, one position per clip) run each position as a matrix-vector product that reads the packed
// weights [ceil(C_in / 4)][co_stride][4] in memory order: a panel of gemv_panel 4-byte groups at a time, every channel
// vector of the panel before the next, the int32 sums held in `sums` between panels. A tile reads one channel block's
// whole column of groups instead: NV vectors every co_stride * 4 bytes, a new page every load for a wide layer, which
// the hardware prefetchers do not follow; and a head's weights are cold in a network (its other layers have been
// through the caches since the previous clip). The sums are exact, so the results are the tiles' bits. X3D-XS's int8
// 432 -> 2048 head step: 0.190 -> 0.058 ms at one thread.
constexpr int gemv_panel = 8;

template <class I>
void qconv3d_gemv(const QConvCall& call, const int8_t* input, int64_t position, int32_t* sums) {
  using ireg = typename I::ireg;
  using F = typename I::F;
  constexpr int W = I::width, P = gemv_panel;
  const Conv3dShape& s = *call.s;
  const Requant& q = *call.q;
  const int64_t Ci = s.in_channels, Co = s.out_channels, Cs = s.co_stride(), K4 = (Ci + 3) / 4, full = Ci / 4;
  const int64_t full_vectors = Co / W, vectors = (Co + W - 1) / W;
  const typename I::mask_t last_mask = I::mask(int(Co - full_vectors * W));
  const int8_t* x = input + position * Ci;
  for (int64_t v = 0; v < vectors; ++v) I::store_i32(sums + v * W, I::zero());
  auto group = [&](int64_t g) {
    return g < full ? I::broadcast4(x + 4 * g) : I::broadcast_partial(x + 4 * g, int(Ci - 4 * g));
  };
  // groups [g0, g0 + n) against every channel vector: n = P unrolled, fewer (the last panel) in a loop
  auto panel = [&](int64_t g0, auto count) {
    constexpr bool fixed = !std::is_same_v<decltype(count), int>;
    const int n = int(count);
    ireg xb[P];
#pragma GCC unroll 8
    for (int k = 0; k < (fixed ? P : n); ++k) xb[k] = group(g0 + k);
    const int8_t* w = call.packed_weight + g0 * Cs * 4;
    for (int64_t v = 0; v < full_vectors; ++v) {
      ireg a = I::load_i32(sums + v * W);
#pragma GCC unroll 8
      for (int k = 0; k < (fixed ? P : n); ++k) a = I::dot(a, xb[k], I::load_w(w + (k * Cs + v * W) * 4));
      I::store_i32(sums + v * W, a);
    }
    if (full_vectors < vectors) {
      ireg a = I::load_i32(sums + full_vectors * W);
      for (int k = 0; k < n; ++k) a = I::dot(a, xb[k], I::load_w(w + (k * Cs + full_vectors * W) * 4, last_mask));
      I::store_i32(sums + full_vectors * W, a);
    }
  };
  int64_t g0 = 0;
  for (; g0 + P <= K4; g0 += P) panel(g0, std::integral_constant<int, P>{});
  if (g0 < K4) panel(g0, int(K4 - g0));
  const Requantizer<F> requantizer(q);
  const bool relu = q.activation == Activation::relu;
  for (int64_t v = 0; v < vectors; ++v) {
    const int64_t c = v * W, o = position * Cs + c;
    const int lanes = int(std::min<int64_t>(W, Co - c));
    const typename F::reg y = I::to_float(I::add(I::load_i32(sums + c), I::load_i32(call.correction + c)));
    if (call.linear_scale)
      requantize_linear_store<F>(y, call.linear_scale + c, o, lanes, relu, q, call.output);
    else
      requantizer.store(y, c, o, lanes, call.output);
  }
}

// Int8 weights beyond which qconv3d_simd groups items and (x86) cuts the reduction into parts. Measured on Slow-R50's
// layers (AVX-512 VNNI, one thread, A/B against item-by-item full reductions): 1.25-1.8x on its 1.6-3.1 MB layers,
// neutral at 0.8 MB, 0.85-0.9x on 0.15-0.6 MB ones (the parts' extra passes, where the weights fit L2 anyway).
constexpr int64_t large_weight_bytes = int64_t(1) << 20;

// d[b] = x[b] + 128 (as the unsigned byte dot takes it) for b < n.
inline void offset_bytes(int8_t* d, const int8_t* x, int64_t n) {
  constexpr uint64_t flip = 0x8080808080808080ull;
  int64_t b = 0;
  for (; b + 8 <= n; b += 8) {
    uint64_t v;
    std::memcpy(&v, x + b, 8);
    v ^= flip;
    std::memcpy(d + b, &v, 8);
  }
  if (b < n && n >= 8) {  // the last 8 bytes, overlapping the ones already copied
    uint64_t v;
    std::memcpy(&v, x + n - 8, 8);
    v ^= flip;
    std::memcpy(d + n - 8, &v, 8);
    b = n;
  }
  for (; b < n; ++b) d[b] = int8_t(uint8_t(x[b]) ^ 0x80u);
}

template <class I, int MR, int NV>
void qconv3d_simd(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                  const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end) {
  const int64_t Ci = s.in_channels, Co = s.out_channels, Cs = s.co_stride(), K4 = (Ci + 3) / 4;
  const int64_t To = s.out_t(), Ho = s.out_h(), Wo = s.out_w(), blocks = s.column_blocks();
  const int64_t vectors = (Co + I::width - 1) / I::width;
  QConvCall call{&s, packed_weight, weight_sum, &q, pad_row, output, 0, nullptr, nullptr,
                 nullptr, 0, 0, nullptr, nullptr};

  // Per-call workspace, reused by each thread: the folded weights, their zero-point line, the combined scales, the
  // accumulator corrections.
  thread_local std::vector<int8_t> folded, pad_line, prepped;
  thread_local std::vector<float> linear_scale;
  thread_local std::vector<int32_t> correction;
  correction.assign(size_t(vectors * I::width), 0);
  for (int64_t c = 0; c < Co; ++c)
    correction[size_t(c)] = q.bias[c] - (q.input_zero_point + I::input_offset) * weight_sum[c];
  call.correction = correction.data();
  if (linear_requant(q)) {
    linear_scale.resize(size_t(vectors * I::width));
    linear_scales(q, Co, vectors * I::width, linear_scale.data());
    call.linear_scale = linear_scale.data();
  }
  if (qconv3d_is_gemv(s)) {  // reads the packed weights as they are: no folding, no tiles
    thread_local std::vector<int32_t> sums;
    sums.resize(size_t(vectors * I::width));
    s.for_each_row_span(item_begin, item_end, [&](int64_t row, int64_t ow_begin, int64_t ow_end) {
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) qconv3d_gemv<I>(call, input, row * Wo + ow, sums.data());
    });
    return;
  }
  const int64_t groups = (s.kernel_w * Ci + 3) / 4;
  int64_t fold_lo = 0, fold_hi = 0;
  constexpr bool prep = I::input_offset != 0;  // x86: prepped items (see the top); ARM: taps and folded columns
  if (!prep && Ci % 4 != 0) {
    // folded columns: the window starts inside the input and its 4 * groups bytes end inside the input row
    fold_lo = std::min(Wo, (s.pad_w + s.stride_w - 1) / s.stride_w);
    const int64_t last = s.in_w * Ci - 4 * groups;  // largest start byte (iw0 * Ci) allowed
    fold_hi = last < 0 ? fold_lo : std::max(fold_lo, std::min(Wo, (last / Ci + s.pad_w) / s.stride_w + 1));
    pad_line.assign(size_t(4 * groups), int8_t(q.input_zero_point));
    call.pad_line = pad_line.data();
  }
  call.groups = groups;
  call.folded_weight = packed_weight;  // with C_in a multiple of 4, [tap][K4] is already [line][groups]
  if (Ci % 4 != 0 && (prep || fold_hi > fold_lo)) {
    fold_kernel_lines(s, packed_weight, Cs, folded);
    call.folded_weight = folded.data();
  }
  // no byte dot (plain AVX2, AVX-512 without VNNI): the weights split once per call (QSource::prepped_split), where
  // they are small enough
  if constexpr (I::presplit) {
    thread_local std::vector<int16_t> split_weight;
    const int64_t line_groups = s.kernel_t * s.kernel_h * groups;
    if (line_groups * Cs * 4 <= I::presplit_max_bytes) {
      constexpr int64_t Z = I::split_size;
      split_weight.resize(size_t(line_groups * vectors * Z));
      for (int64_t lg = 0; lg < line_groups; ++lg)
        for (int64_t v = 0; v < vectors; ++v)
          I::split_weights(call.folded_weight + (lg * Cs + v * I::width) * 4,
                           I::mask(int(std::min<int64_t>(I::width, Co - v * I::width))),
                           split_weight.data() + (lg * vectors + v) * Z);
      call.split_weight = split_weight.data();
      call.split_vectors = vectors;
    }
  }

  // Layers with large weights (above large_weight_bytes: ResNet's res4 / res5 convs and strided projections) group
  // consecutive items: whole items of at most tile_w output columns in all (a wider row's item is a group alone),
  // and each group runs channel block by channel block over all its items, so a block's weights come from memory
  // once per group and are reused from cache by all its items. Item by item, every item (often one row of 7 or 14
  // columns) read the whole weight tensor from L3 or memory. Integer sums are exact: the order changes no result.
  const bool large = s.kernel_t * s.kernel_h * s.kernel_w * K4 * 4 * Co > large_weight_bytes;
  const int64_t max_group_columns = large ? Conv3dShape::tile_w : 0;
  struct Span {  // one item of the group
    const int8_t* input_n;
    int64_t it0, ih0, kt_begin, kt_end, kh_begin, kh_end, out_offset, ow_begin, ow_end;
    int64_t prep_offset, prep_stride;  // x86: its prepped lines in `prepped`
    int64_t group_pos;                 // its first column's position in the group (partial sums)
  };
  thread_local std::vector<Span> group;
  group.clear();
  int64_t group_columns = 0, prepped_bytes = 0;
  // NV vectors at a time; when one vector would be left over and NV > 2, the last NV + 1 go as two narrower tiles
  // instead (a one-vector tile needs a broadcast per dot).
  const int64_t tail = (NV > 2 && vectors > NV && vectors % NV == 1) ? NV + 1 : vectors % NV;
  // x86 with a long reduction (more than part_groups 4-byte groups over the kernel's lines: ResNet's res3-res5
  // layers): each channel block's reduction goes in parts of one prepped line x up to part_groups groups, every
  // part over all the group's items before the next, the int32 partial sums parked in `partial` between parts. A
  // part's weights (part_groups x the block's channels, 24 KB for 3 vectors) then stay in L1 for all the group's
  // tiles, where a whole block's weights (up to 9 lines x 128 groups x 48 channels x 4 bytes = 221 KB) were streamed
  // from L2 by every tile.
  constexpr int64_t part_groups = 128;
  const int64_t lines = s.kernel_t * s.kernel_h;
  const bool split = prep && large && lines * groups > part_groups;
  thread_local std::vector<int32_t> partial;
  if (split) partial.resize(size_t(Conv3dShape::tile_w * vectors * I::width));
  // AVX-512, at most 8 output channels: the weights for paired groups (qconv3d_tile_paired)
  thread_local std::vector<int8_t> paired;
  int64_t paired_pairs = 0;
  if constexpr (I::pairs_groups) {
    if (Co <= 8 && !split) {
      paired_pairs = (groups + 1) / 2;
      paired.assign(size_t(lines * paired_pairs * 64), 0);
      for (int64_t line = 0; line < lines; ++line)
        for (int64_t g = 0; g < groups; ++g)
          for (int64_t c = 0; c < Co; ++c)
            std::memcpy(&paired[size_t(((line * paired_pairs + g / 2) * 8 + c) * 8 + (g % 2) * 4)],
                        call.folded_weight + ((line * groups + g) * Cs + c) * 4, 4);
    }
  }
  call.line_begin = 0, call.line_end = lines, call.group_begin = 0, call.group_end = groups;
  call.partial_ld = vectors * I::width;
  auto run_group = [&]() {
    auto each_span = [&](auto&& fn) {
      auto spans = [&]() {
        for (const Span& sp : group) {
          if constexpr (prep) {
            call.prepped = prepped.data() + sp.prep_offset;
            call.prep_stride = sp.prep_stride;
            call.prep_col0 = sp.ow_begin;
            if (split) call.partial = partial.data() + sp.group_pos * call.partial_ld;
          }
          fn(sp);
        }
      };
      if (!split) return spans();
      for (int64_t line = 0; line < lines; ++line)
        for (int64_t g0 = 0; g0 < groups; g0 += part_groups) {
          call.line_begin = line, call.line_end = line + 1;
          call.group_begin = g0, call.group_end = std::min(groups, g0 + part_groups);
          call.first = line == 0 && g0 == 0;
          call.last = line == lines - 1 && call.group_end == groups;
          spans();
        }
    };
    auto all_channels = [&]() {
      if constexpr (I::pairs_groups) {
        if (paired_pairs > 0)
          return each_span([&](const Span& sp) {
            for (int64_t ow0 = sp.ow_begin; ow0 < sp.ow_end; ow0 += MR)
              qconv3d_tile_paired<I, MR>(call, paired.data(), paired_pairs, sp.out_offset, ow0,
                                         int(std::min<int64_t>(MR, sp.ow_end - ow0)));
          });
      }
      // The first channel of the tile of `count` vectors at vector v0. The last tile, when its last vector is
      // partial and partial loads cost (I::costly_partial_loads), is moved back to end at the last channel: all its
      // vectors whole (qconv3d_tile's Full form). It computes again the few channels it then shares with the tile
      // before it and stores the same bytes there (exact integer sums, each channel's own requantization). Not with
      // a reduction in parts: both tiles would add their parts into the shared channels' parked sums. Nor with split
      // weights: their tiles start at whole vectors (their zero weights past C_out make every load whole anyway).
      auto tile_start = [&](int64_t v0, int64_t count) {
        if constexpr (I::costly_partial_loads) {
          if (!split && !call.split_weight && v0 + count == vectors && Co % I::width != 0 && Co >= count * I::width)
            return Co - count * I::width;
        }
        return v0 * I::width;
      };
      int64_t v0 = 0;
      for (; v0 + NV <= vectors - tail; v0 += NV)
        each_span([&](const Span& sp) {
          qconv3d_columns<I, MR, NV>(call, sp.input_n, sp.it0, sp.ih0, sp.kt_begin, sp.kt_end, sp.kh_begin,
                                     sp.kh_end, sp.out_offset, sp.ow_begin, sp.ow_end, fold_lo, fold_hi,
                                     tile_start(v0, NV));
        });
      while (v0 < vectors) {
        const int part = int(std::min<int64_t>(vectors - v0, tail > NV ? (NV + 1) / 2 : tail));
        const int64_t n0 = tile_start(v0, part);
        each_span([&](const Span& sp) {
          qconv3d_remainder<I, MR, NV>(part, call, sp.input_n, sp.it0, sp.ih0, sp.kt_begin, sp.kt_end, sp.kh_begin,
                                       sp.kh_end, sp.out_offset, sp.ow_begin, sp.ow_end, fold_lo, fold_hi, n0);
        });
        v0 += part;
      }
    };
    all_channels();
    group.clear();
    group_columns = prepped_bytes = 0;
  };

  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t row = item / blocks, ow_begin = (item % blocks) * s.item_width();
    const int64_t ow_end = std::min(Wo, ow_begin + s.item_width());
    if (!group.empty() && group_columns + (ow_end - ow_begin) > max_group_columns) run_group();
    const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
    Span sp{input + n * s.in_t * s.in_h * s.in_w * Ci, ot * s.stride_t - s.pad_t, oh * s.stride_h - s.pad_h,
            0, 0, 0, 0, row * Wo * Cs, ow_begin, ow_end, 0, 0, group_columns};
    sp.kt_begin = std::max<int64_t>(0, -sp.it0), sp.kt_end = std::min<int64_t>(s.kernel_t, s.in_t - sp.it0);
    sp.kh_begin = std::max<int64_t>(0, -sp.ih0), sp.kh_end = std::min<int64_t>(s.kernel_h, s.in_h - sp.ih0);
    if constexpr (prep) {
      // the item's kt * kh input lines over input columns iw0 + [0, width), padding as the zero point (offset), and
      // 8 spare bytes per line: a last group (or pair of groups) may read past the window (any value: zero weights)
      const int64_t iw0 = ow_begin * s.stride_w - s.pad_w, width = (ow_end - 1 - ow_begin) * s.stride_w + s.kernel_w;
      const int64_t in_lo = std::clamp<int64_t>(-iw0, 0, width);
      const int64_t in_hi = std::clamp<int64_t>(s.in_w - iw0, in_lo, width);
      const int8_t pad_value = int8_t(uint8_t(int8_t(q.input_zero_point)) ^ 0x80u);
      sp.prep_offset = prepped_bytes;
      sp.prep_stride = width * Ci + 8;
      prepped_bytes += s.kernel_t * s.kernel_h * sp.prep_stride;
      if (prepped.size() < size_t(prepped_bytes)) prepped.resize(size_t(prepped_bytes));
      for (int64_t kt = 0; kt < s.kernel_t; ++kt)
        for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
          int8_t* d = prepped.data() + sp.prep_offset + (kt * s.kernel_h + kh) * sp.prep_stride;
          if (kt >= sp.kt_begin && kt < sp.kt_end && kh >= sp.kh_begin && kh < sp.kh_end) {
            std::fill(d, d + in_lo * Ci, pad_value);
            offset_bytes(d + in_lo * Ci,
                         sp.input_n + (((sp.it0 + kt) * s.in_h + sp.ih0 + kh) * s.in_w + iw0 + in_lo) * Ci,
                         (in_hi - in_lo) * Ci);
            std::fill(d + in_hi * Ci, d + width * Ci, pad_value);
          } else {
            std::fill(d, d + width * Ci, pad_value);
          }
        }
    }
    group.push_back(sp);
    group_columns += ow_end - ow_begin;
  }
  if (!group.empty()) run_group();
}

}  // namespace pyvideo::kernels::detail
