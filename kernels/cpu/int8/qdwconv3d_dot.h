// The int8 depthwise conv3d on integer dot products (x86 VNNI vpdpbusd, ARM sdot); I is a wrapper from dot_simd.h.
//
// A dot instruction does four multiply-adds per int32 lane, but its four bytes must be four taps of ONE channel,
// while channels-last memory holds one tap of many channels side by side. So each input row (n, t, h) is rearranged
// once into "quads": for output column ow and channel c, the bytes of input columns ow * stride_w - pad_w + [0, 4)
// of channel c, i.e. a whole kernel row of 2 to 4 taps. One dot then applies a whole 3-wide kernel row (its fourth
// weight is zero): 9 dots per output vector for a 3x3x3
// kernel where the float kernel needs 27 FMAs. Columns in the W padding read the zero point, so border columns
// need no special path. The rearranging is a copy of the row into columns of `width` channel bytes, then one
// register load, one cross-lane dword permutation and one in-lane byte shuffle per quad (I::quads).
//
// Quad rows are cached in a ring of kernel_h slices, each holding the rows of one input h for every t of (up to 16)
// output planes: output rows are visited oh by oh and, within one oh, all ot, so every input row is rearranged once
// per call and reused by all (up to kt * kh) output rows that read it. Neighbouring ot are computed together block
// by block, so a block's quads come from L2 once and are reused from L1.
//
// Zero point: the dots sum (x + offset) * w over every tap of the in-range (kt, kh) kernel rows (padding columns
// hold the zero point, their weights included); bias - (zero_point + offset) * (sum of those kernel rows' weights)
// turns that into the reference's sum of (x - zero_point) * w, exactly, in int32.
//
// Other kernel widths (X3D's temporal 5x1x1 stem conv has kw = 1: quads would waste three quarters of each dot)
// take the single-tap mode: no rearranging; each tap widens 16 input bytes to int32 lanes and multiply-adds them
// (I::madd16: vpdpwssd on x86, the int16 halves of each lane against (w, 0); mla on ARM), with the same zero-point
// correction (offset 0), row groups, register blocks and requantization.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "../channel_tiles.h"
#include "requant_simd.h"

namespace pyvideo::kernels::detail {

// One output row (n, ot, oh) of the dot kernel: its in-range kernel rows and where the results go.
struct QDwRow {
  int taps;                     // in-range (kt, kh) kernel rows
  const void* const* sources;   // [taps] quad rows, [cb][ow][4 * width] bytes; single-tap: input rows at iw = 0
  const void* const* weights;   // [taps] packed weights, [cb][4 * width] bytes; single-tap: int32 [kw][cb * width]
  const int32_t* start;         // [cb * width] accumulator start: bias minus the zero-point correction of these taps
  int64_t channels, blocks, out_w;
  int64_t kernel_w, stride_w, pad_w, in_w;  // single-tap mode only
  const int8_t* pad;            // single-tap: cb * width bytes of the zero point, read by taps in the W padding
  const Requant* q;
  const float* linear_scale;    // [cb * width] dequant / output scale when linear_requant(q), else nullptr
  int8_t* output;               // the whole output tensor (the residual has its layout)
  int64_t out_offset;           // where this row starts in it
};

// Channel blocks cb0 + [0, CBS) x output columns ow0 + [0, COLS): one dot per kernel row, then requantization.
// Every weight register feeds COLS dots and CBS * COLS independent accumulators hide the dot latency.
template <class I, bool Single, int CBS, int COLS>
inline void qdw_block(const QDwRow& r, int64_t cb0, int64_t ow0) {
  using ireg = typename I::ireg;
  constexpr int W = I::width;
  constexpr int64_t QB = 4 * W;
  ireg acc[CBS][COLS];
#pragma GCC unroll 8
  for (int k = 0; k < CBS; ++k)
#pragma GCC unroll 8
    for (int j = 0; j < COLS; ++j) acc[k][j] = I::zero();
  if constexpr (!Single) {
    const int64_t cb_bytes = r.out_w * QB;
    for (int i = 0; i < r.taps; ++i) {
      const uint8_t* x = static_cast<const uint8_t*>(r.sources[i]) + cb0 * cb_bytes + ow0 * QB;
      const int8_t* w = static_cast<const int8_t*>(r.weights[i]) + cb0 * QB;
#pragma GCC unroll 8
      for (int k = 0; k < CBS; ++k) {
        const ireg wk = I::load(w + k * QB);
#pragma GCC unroll 8
        for (int j = 0; j < COLS; ++j) acc[k][j] = I::dot(acc[k][j], I::load(x + k * cb_bytes + j * QB), wk);
      }
    }
  } else {
    const int64_t C = r.channels, Cp = r.blocks * W, kernel_w = r.kernel_w, stride_w = r.stride_w;
    const int64_t pad_w = r.pad_w, in_w = r.in_w;
    const int8_t* pad = r.pad;
    typename I::mask_t masks[CBS];
    bool full[CBS];
#pragma GCC unroll 8
    for (int k = 0; k < CBS; ++k) {
      const int lanes = int(std::min<int64_t>(W, C - (cb0 + k) * W));
      masks[k] = I::mask(lanes);
      full[k] = lanes == W;
    }
    for (int i = 0; i < r.taps; ++i) {
      const int8_t* line = static_cast<const int8_t*>(r.sources[i]) + cb0 * W;
      const int32_t* w = static_cast<const int32_t*>(r.weights[i]) + cb0 * W;
      for (int64_t kw = 0; kw < kernel_w; ++kw) {
        const int64_t iw0 = ow0 * stride_w - pad_w + kw;
        if (iw0 >= 0 && iw0 + (COLS - 1) * stride_w < in_w) {
          // all columns inside: one pointer stepping through them (a pointer per column would spill)
#pragma GCC unroll 8
          for (int k = 0; k < CBS; ++k) {
            const ireg wk = I::load_i32(w + kw * Cp + k * W);
            const int8_t* x = line + iw0 * C + k * W;
#pragma GCC unroll 8
            for (int j = 0; j < COLS; ++j, x += stride_w * C)
              acc[k][j] = I::madd16(acc[k][j], full[k] ? I::widen(x) : I::widen(x, masks[k]), wk);
          }
        } else {
#pragma GCC unroll 8
          for (int k = 0; k < CBS; ++k) {
            const ireg wk = I::load_i32(w + kw * Cp + k * W);
#pragma GCC unroll 8
            for (int j = 0; j < COLS; ++j) {
              const int64_t iw = iw0 + j * stride_w;
              const int8_t* x = (iw >= 0 && iw < in_w) ? line + iw * C : pad + cb0 * W;
              acc[k][j] = I::madd16(acc[k][j], I::widen(x + k * W, masks[k]), wk);
            }
          }
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < CBS; ++k) {
    const ireg start = I::load_i32(r.start + (cb0 + k) * W);
#pragma GCC unroll 8
    for (int j = 0; j < COLS; ++j) acc[k][j] = I::add(acc[k][j], start);
  }
  // The int8 stores below may alias anything, so what they need is read into locals first (else reloaded each time).
  const int64_t channels = r.channels, out_offset = r.out_offset;
  const float* linear_scale = r.linear_scale;
  const bool relu = r.q->activation == Activation::relu;
  const Requant& q = *r.q;
  const Requantizer<typename I::F> requantizer(q);
  int8_t* output = r.output;
  auto each_output = [&](auto store) {
#pragma GCC unroll 8
    for (int k = 0; k < CBS; ++k) {
      const int64_t c0 = (cb0 + k) * W;
      const int lanes = int(std::min<int64_t>(W, channels - c0));
#pragma GCC unroll 8
      for (int j = 0; j < COLS; ++j) store(I::to_float(acc[k][j]), c0, out_offset + (ow0 + j) * channels + c0, lanes);
    }
  };
  using freg = typename I::F::reg;
  if (linear_scale)
    each_output([&](freg v, int64_t c0, int64_t o, int lanes) {
      requantize_linear_store<typename I::F>(v, linear_scale + c0, o, lanes, relu, q, output);
    });
  else if (q.activation == Activation::swish)  // X3D's depthwise convs without an SE: those steps 4-5% faster
    each_output([&](freg v, int64_t c0, int64_t o, int lanes) {
      requantizer.store_as(v, c0, o, lanes, output, Activation::swish);
    });
  else
    each_output([&](freg v, int64_t c0, int64_t o, int lanes) { requantizer.store(v, c0, o, lanes, output); });
}

// COLS columns from ow0 for every channel block of `count` output rows: CBS = blocks / COLS at a time (a narrow
// block takes several channel blocks so that enough accumulators stay independent), then the leftover channel
// blocks one by one. Each block is done for all rows before the next: the rows share most of their quad rows, so a
// block's quads come from L2 once and are reused from L1 (a whole output row's quads would not fit in L1).
template <class I, bool Single, int COLS>
inline void qdw_columns(const QDwRow* rows, int count, int64_t ow0) {
  constexpr int CBS = I::registers / 4 / COLS;
  const int64_t blocks = rows->blocks;
  int64_t cb = 0;
  for (; cb + CBS <= blocks; cb += CBS)
    for (int g = 0; g < count; ++g) qdw_block<I, Single, CBS, COLS>(rows[g], cb, ow0);
  for (; cb < blocks; ++cb)
    for (int g = 0; g < count; ++g) qdw_block<I, Single, 1, COLS>(rows[g], cb, ow0);
}

// Columns [ow, out_w) in blocks of COLS, then at most one block each of COLS / 2, ..., 1.
template <class I, bool Single, int COLS>
inline void qdw_rows(const QDwRow* rows, int count, int64_t ow) {
  for (; ow + COLS <= rows->out_w; ow += COLS) qdw_columns<I, Single, COLS>(rows, count, ow);
  if constexpr (COLS > 1) qdw_rows<I, Single, COLS / 2>(rows, count, ow);
}

// Rearranges input rows into quad rows. The row is first copied (offset applied) into `scratch` as [cb][column][W]
// for every channel block, and only then read back as quads: a quad load right after the small stores it spans
// would stall on store-to-load forwarding. Everything is held by value: the byte stores may alias anything, and
// values read through a reference would be reloaded after each of them.
template <class I>
struct Rearrange {
  static constexpr int W = I::width;
  static constexpr int64_t QB = 4 * W;
  const int8_t* input;
  int64_t channels, in_t, in_h, in_w, pad_w, stride_w, out_w, blocks, columns;  // columns: iw = -pad_w + [0, columns)
  int8_t zero_point;
  uint8_t* scratch;

  // Quads of input row (n, t, h) into `slot`, laid out [cb][ow][QB].
  void operator()(int64_t n, int64_t t, int64_t h, uint8_t* slot) const {
    const int64_t C = channels, wr = columns, pw = pad_w, sw = stride_w, Wo = out_w, nb = blocks;
    const int8_t zp = zero_point;
    uint8_t* const r0 = scratch;
    const uint8_t pad_byte = uint8_t(zp) ^ uint8_t(I::input_offset ? 0x80 : 0x00);
    const int8_t* line = input + ((n * in_t + t) * in_h + h) * in_w * C;
    const int64_t in_lo = std::min(wr, pw), in_hi = std::max(in_lo, std::min(wr, pw + in_w));
    for (int64_t cb = 0; cb < nb; ++cb) {
      const int64_t c0 = cb * W, lanes = std::min<int64_t>(W, C - c0);
      uint8_t* r = r0 + cb * wr * W;
      const int8_t* x = line - pw * C + c0;
      for (int64_t col = 0; col < in_lo; ++col) std::memset(r + col * W, pad_byte, W);  // constant size: inlined
      if (lanes == W) {
        for (int64_t col = in_lo; col < in_hi; ++col) I::copy_flipped(r + col * W, x + col * C);
      } else {
        for (int64_t col = in_lo; col < in_hi; ++col) I::copy_flipped_n(r + col * W, x + col * C, int(lanes), zp);
      }
      for (int64_t col = in_hi; col < wr; ++col) std::memset(r + col * W, pad_byte, W);
    }
    for (int64_t cb = 0; cb < nb; ++cb) {
      const uint8_t* r = r0 + cb * wr * W;
      uint8_t* dst = slot + cb * Wo * QB;
      for (int64_t ow = 0; ow < Wo; ++ow) I::store(dst + ow * QB, I::quads(r + ow * sw * W));
    }
  }
};

// The in-range taps of each of `outs` outputs along one axis, [begin, end) of the kernel (the borders clip them), as
// ids into the few distinct ranges that occur: id[o] indexes `distinct`.
inline void distinct_tap_ranges(int64_t outs, int64_t stride, int64_t pad, int64_t kernel, int64_t in,
                                std::vector<int64_t>& id, std::vector<std::pair<int64_t, int64_t>>& distinct) {
  id.resize(size_t(outs));
  distinct.clear();
  for (int64_t o = 0; o < outs; ++o) {
    const int64_t i0 = o * stride - pad;
    const std::pair<int64_t, int64_t> range{std::max<int64_t>(0, -i0), std::min(kernel, in - i0)};
    const auto at = std::find(distinct.begin(), distinct.end(), range);
    id[size_t(o)] = at - distinct.begin();
    if (at == distinct.end()) distinct.push_back(range);
  }
}

// Depthwise kernels of one tap in H and in W with stride 1 and no padding there (kt x 1 x 1: X3D's 5x1x1 stem conv).
// Output row (n, ot, oh) is then the sum over the in-range kt of input row (n, ot * stride_t - pad_t + kt, oh) times
// that tap's weights, position by position: each row runs as one flat run of out_w * C bytes in full vectors whatever
// C is, with the weights, the accumulator start and the per-channel requantization arrays tiled (value i is channel
// i mod C's), so that the lanes of the vector at byte f read them from f mod C on. The single-tap blocks (8 columns
// of one channel block a call) left half of every second vector idle at C = 24 and spent most of their time on
// per-call setup and pointer spills: this path took X3D-XS's int8 stem step from 0.344 to 0.227 ms (one thread).
inline bool qdw_temporal_only(const DwConv3dShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

template <class I>
void qdw_temporal(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                  int8_t* output, int64_t begin, int64_t end) {
  using ireg = typename I::ireg;
  using F = typename I::F;
  constexpr int W = I::width;
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), KT = s.kernel_t;
  const int64_t run = s.out_w() * C, plane = s.in_h * run;  // bytes of a row, of an input frame
  // p = f mod P (channel_tiles.h); tiled arrays are read at [p, p + W)
  const int64_t P = channel_period(C, W), len = P + W;
  auto tile = [&](auto value, auto* out) { tile_channels(C, len, value, out); };
  thread_local std::vector<int32_t> taps, starts;
  thread_local std::vector<float> scale, dequant, inverse, zero_points;
  taps.resize(size_t(KT * len));
  for (int64_t kt = 0; kt < KT; ++kt)
    tile([&](int64_t c) { return I::weight16(weight[kt * C + c]); }, taps.data() + kt * len);
  // accumulator starts, one per range [kt_begin, kt_end) of in-range taps: bias - zero_point * their weights' sum
  thread_local std::vector<std::pair<int64_t, int64_t>> ranges;
  thread_local std::vector<int64_t> range_of;
  distinct_tap_ranges(To, s.stride_t, s.pad_t, KT, s.in_t, range_of, ranges);
  starts.resize(ranges.size() * size_t(len));
  for (size_t r = 0; r < ranges.size(); ++r)
    tile([&](int64_t c) {
      int32_t sum = 0;
      for (int64_t kt = ranges[r].first; kt < ranges[r].second; ++kt) sum += weight[kt * C + c];
      return q.bias[c] - q.input_zero_point * sum;
    }, starts.data() + r * size_t(len));
  const bool linear = linear_requant(q), relu = q.activation == Activation::relu;
  Requant tiled = q;  // the per-channel arrays tiled like the weights
  if (linear) {  // linear_scales' factors for the C channels, then tiled in place
    scale.resize(size_t(len));
    linear_scales(q, C, C, scale.data());
    tile([&](int64_t c) { return scale[size_t(c)]; }, scale.data());
  } else {
    dequant.resize(size_t(len));
    tile([&](int64_t c) { return q.dequant_scale[c]; }, dequant.data());
    tiled.dequant_scale = dequant.data();
    if (q.per_channel_output()) {
      inverse.resize(size_t(len));
      zero_points.resize(size_t(len));
      tile([&](int64_t c) { return q.output_inverse_scales[c]; }, inverse.data());
      tile([&](int64_t c) { return q.output_zero_points[c]; }, zero_points.data());
      tiled.output_inverse_scales = inverse.data();
      tiled.output_zero_points = zero_points.data();
    }
  }
  const Requantizer<F> requantizer(tiled);
  const int32_t* w = taps.data();
  const float* linear_scale = scale.data();
  for (int64_t position = begin; position < end; ++position) {
    const int64_t row = DwConv3dShape::row_at(position, To, Ho);
    const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
    const auto [kt_begin, kt_end] = ranges[size_t(range_of[size_t(ot)])];
    const int8_t* x = input + (n * s.in_t + ot * s.stride_t - s.pad_t) * plane + oh * run;  // at tap kt: + kt * plane
    const int32_t* start = starts.data() + range_of[size_t(ot)] * len;
    const int64_t o = row * run;
    int64_t p = 0;  // f % P
    for (int64_t f = 0; f < run; f += W) {
      const int lanes = int(std::min<int64_t>(W, run - f));
      const typename I::mask_t mask = I::mask(lanes);
      ireg acc = I::load_i32(start + p);
      for (int64_t kt = kt_begin; kt < kt_end; ++kt) {
        const int8_t* xk = x + kt * plane + f;
        acc = I::madd16(acc, lanes == W ? I::widen(xk) : I::widen(xk, mask), I::load_i32(w + kt * len + p));
      }
      const typename F::reg v = I::to_float(acc);
      if (linear)
        requantize_linear_store<F>(v, linear_scale + p, o + f, lanes, relu, q, output);
      else
        requantizer.store(v, p, o + f, lanes, output);
      p = next_tile_offset(p, W, P);
    }
  }
}

template <class I>
void qdwconv3d_dot(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                   int8_t* output, int64_t begin, int64_t end) {
  constexpr int W = I::width;
  constexpr int64_t QB = 4 * W;  // bytes of one quad register
  using ireg = typename I::ireg;
  if (begin >= end) return;
  if (qdw_temporal_only(s)) return qdw_temporal<I>(s, input, weight, q, output, begin, end);
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t KT = s.kernel_t, KH = s.kernel_h, KW = s.kernel_w;
  const int64_t nb = (C + W - 1) / W, Cp = nb * W, kernel_rows = KT * KH;
  const bool single = KW < 2 || KW > 4;  // the single-tap mode (no quads)
  const int64_t wr = single ? 0 : (Wo - 1) * s.stride_w + 4;  // rearranged columns: iw = -pad_w + [0, wr)
  const int64_t slot_bytes = single ? 0 : nb * Wo * QB;
  // Positions [begin, end) in line order (dwconv3d.h): the output lines (n, oh) first_line..last_line, all of their
  // rows but the ot before begin in the first line and from end on in the last. A split between threads thus gives
  // each thread a range of oh in every frame, so each rearranges only the input rows of its oh (and the few its
  // range's edge shares with the next) and reuses every quad row across all its frames; a split into frames made
  // each of two threads rearrange three of four input frames at T = 4, and left it two frames to share them.
  const int64_t first_line = begin / To, last_line = (end - 1) / To;
  // Output planes go in chunks of up to PLANES, each with its own pass over oh: that bounds the ring (kernel_h
  // slices of the chunk's input planes) whatever T is; X3D's T = 4 to 16 is a single chunk.
  constexpr int64_t PLANES = 16;
  const int64_t planes = std::min({To, first_line == last_line ? end - begin : To, PLANES});
  const int64_t t_slots = std::max<int64_t>(1, std::min(s.in_t, (planes - 1) * s.stride_t + KT));

  // Workspace, reused across calls by each thread: packed weights, per-kernel-row corrections, padded bias, combined
  // scales, one rearranged row, the quad-row ring.
  auto round64 = [](int64_t b) { return (b + 63) / 64 * 64; };
  const int64_t wq_bytes = round64(single ? kernel_rows * KW * Cp * 4 + Cp : kernel_rows * nb * QB);
  const int64_t corr_bytes = round64((kernel_rows + 2) * Cp * 4);
  const int64_t r_bytes = round64(nb * wr * W), ring_bytes = KH * t_slots * slot_bytes;
  thread_local std::vector<uint8_t> workspace;
  thread_local std::vector<int64_t> tags;
  workspace.resize(size_t(wq_bytes + corr_bytes + r_bytes + ring_bytes + 64));
  uint8_t* base = workspace.data() + (64 - reinterpret_cast<uintptr_t>(workspace.data()) % 64) % 64;
  int8_t* wq = reinterpret_cast<int8_t*>(base);            // quads: [kernel_rows][cb][QB]
  int32_t* ws = reinterpret_cast<int32_t*>(base);          // single-tap: [kernel_rows][KW][Cp], then the pad [Cp]
  int8_t* pad = reinterpret_cast<int8_t*>(ws + kernel_rows * KW * Cp);
  // [kernel_rows][Cp] corrections, then bias [Cp], linear_scale [Cp]
  int32_t* corr = reinterpret_cast<int32_t*>(base + wq_bytes);
  int32_t* bias = corr + kernel_rows * Cp;
  float* linear_scale = reinterpret_cast<float*>(bias + Cp);
  uint8_t* rearranged = base + wq_bytes + corr_bytes;
  uint8_t* ring = rearranged + r_bytes;

  if (!single) {
    // wq[r][cb][c][k] = weight of kernel row r, column k, channel cb * W + c (zero past kw or C), in the byte order
    // of the quads (the kernel row's columns transposed like input columns); corr[r][c] = (zero_point + offset) *
    // sum of kernel row r's weights of channel c, as one dot of those weights with the shift in every byte.
    // First the kernel rows' columns as they are into the slots, then every slot transposed in place: transposing
    // each right after its four small stores would stall every load on store-to-load forwarding.
    const ireg shift = I::splat(uint8_t(q.input_zero_point + I::input_offset));
    for (int64_t r = 0; r < kernel_rows; ++r)
      for (int64_t cb = 0; cb < nb; ++cb) {
        const int64_t c0 = cb * W, lanes = std::min<int64_t>(W, C - c0);
        int8_t* slot = wq + (r * nb + cb) * QB;
        for (int64_t k = 0; k < 4; ++k) {
          int8_t* column = slot + k * W;
          if (k < KW && lanes == W) {
            std::memcpy(column, weight + (r * KW + k) * C + c0, W);  // a constant size: one move, not a call
          } else {
            std::memset(column, 0, W);
            if (k < KW) std::memcpy(column, weight + (r * KW + k) * C + c0, size_t(lanes));
          }
        }
      }
    for (int64_t r = 0; r < kernel_rows; ++r)
      for (int64_t cb = 0; cb < nb; ++cb) {
        int8_t* slot = wq + (r * nb + cb) * QB;
        const ireg packed = I::quads(reinterpret_cast<const uint8_t*>(slot));
        I::store(slot, packed);
        I::store_i32(corr + r * Cp + cb * W, I::dot(I::zero(), shift, packed));
      }
  } else {
    // ws[r][kw][c]: the weight as madd16 takes it; corr[r][c] = zero_point * sum of kernel row r's weights.
    for (int64_t r = 0; r < kernel_rows; ++r)
      for (int64_t c = 0; c < Cp; ++c) {
        int32_t sum = 0;
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int8_t w = c < C ? weight[(r * KW + kw) * C + c] : int8_t(0);
          ws[(r * KW + kw) * Cp + c] = I::weight16(w);
          sum += w;
        }
        corr[r * Cp + c] = q.input_zero_point * sum;
      }
    std::fill(pad, pad + Cp, int8_t(q.input_zero_point));
  }
  for (int64_t c = 0; c < Cp; ++c) bias[c] = c < C ? q.bias[c] : 0;
  const bool linear = linear_requant(q);
  if (linear) linear_scales(q, C, Cp, linear_scale);

  const Rearrange<I> rearrange{input, C, s.in_t, s.in_h, s.in_w, s.pad_w, s.stride_w, Wo, nb, wr,
                               int8_t(q.input_zero_point), rearranged};
  const int64_t line_bytes = s.in_w * C;

  // The in-range kernel rows of an output row are ranges [begin, end) in kt and in kh, and only a few distinct ranges
  // occur (the borders clip them): number them, and compute each combination's accumulator start, the bias minus
  // the correction of its kernel rows, once.
  thread_local std::vector<int64_t> kt_id, kh_id, h_slot;
  thread_local std::vector<std::pair<int64_t, int64_t>> kt_ranges, kh_ranges;
  thread_local std::vector<int32_t> starts;
  distinct_tap_ranges(To, s.stride_t, s.pad_t, KT, s.in_t, kt_id, kt_ranges);
  distinct_tap_ranges(Ho, s.stride_h, s.pad_h, KH, s.in_h, kh_id, kh_ranges);
  const int64_t n_kh = int64_t(kh_ranges.size());
  starts.resize(size_t(int64_t(kt_ranges.size()) * n_kh * Cp));
  for (size_t a = 0; a < kt_ranges.size(); ++a)
    for (size_t b = 0; b < kh_ranges.size(); ++b) {
      int32_t* st = starts.data() + (int64_t(a) * n_kh + int64_t(b)) * Cp;
      for (int64_t c = 0; c < Cp; c += W) {
        ireg v = I::load_i32(bias + c);
        for (int64_t kt = kt_ranges[a].first; kt < kt_ranges[a].second; ++kt)
          for (int64_t kh = kh_ranges[b].first; kh < kh_ranges[b].second; ++kh)
            v = I::sub(v, I::load_i32(corr + (kt * KH + kh) * Cp + c));
        I::store_i32(st + c, v);
      }
    }
  h_slot.resize(size_t(s.in_h));  // ring slice of input row h (h % KH, without a division per tap)
  for (int64_t h = 0; h < s.in_h; ++h) h_slot[size_t(h)] = h % KH * t_slots;

  // Output rows go in groups of up to GROUP neighbours in time (same oh): they share most of their quad rows.
  constexpr int GROUP = 4;
  std::vector<const void*> tap_sources(static_cast<size_t>(GROUP * kernel_rows));
  std::vector<const void*> tap_weights(static_cast<size_t>(GROUP * kernel_rows));
  QDwRow rows[GROUP];
  for (int64_t n = first_line / Ho; n <= last_line / Ho; ++n) {
    // this call's output lines of sample n: oh in [oh_lo, oh_hi]; its frames: ot in [ot_lo, ot_hi] (every frame
    // unless the call is part of one line)
    const int64_t oh_lo = std::max(first_line, n * Ho) - n * Ho, oh_hi = std::min(last_line, n * Ho + Ho - 1) - n * Ho;
    const int64_t ot_lo = first_line == last_line ? begin % To : 0;
    const int64_t ot_hi = first_line == last_line ? (end - 1) % To : To - 1;
    for (int64_t ot_a = ot_lo; ot_a <= ot_hi; ot_a += PLANES) {
      const int64_t ot_b = std::min(ot_hi, ot_a + PLANES - 1);
      const int64_t t_lo = std::max<int64_t>(0, ot_a * s.stride_t - s.pad_t);
      tags.assign(size_t(KH * t_slots), -1);
      for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
        for (int64_t ot0 = ot_a; ot0 <= ot_b; ot0 += GROUP) {
          int count = 0;
          for (int64_t ot = ot0; ot <= std::min(ot_b, ot0 + GROUP - 1); ++ot) {
            const int64_t row = (n * To + ot) * Ho + oh;
            const int64_t position = (n * Ho + oh) * To + ot;
            if (position < begin || position >= end) continue;
            const int64_t it0 = ot * s.stride_t - s.pad_t, ih0 = oh * s.stride_h - s.pad_h;
            const auto& kt_range = kt_ranges[size_t(kt_id[size_t(ot)])];
            const auto& kh_range = kh_ranges[size_t(kh_id[size_t(oh)])];
            const void** row_sources = tap_sources.data() + count * kernel_rows;
            const void** row_weights = tap_weights.data() + count * kernel_rows;
            int taps = 0;
            for (int64_t kt = kt_range.first; kt < kt_range.second; ++kt)
              for (int64_t kh = kh_range.first; kh < kh_range.second; ++kh) {
                const int64_t t = it0 + kt, h = ih0 + kh;
                if (single) {
                  row_sources[taps] = input + ((n * s.in_t + t) * s.in_h + h) * line_bytes;
                  row_weights[taps] = ws + (kt * KH + kh) * KW * Cp;
                } else {
                  const int64_t slot = h_slot[size_t(h)] + (t - t_lo);
                  uint8_t* quads = ring + slot * slot_bytes;
                  if (tags[size_t(slot)] != t * s.in_h + h) {
                    rearrange(n, t, h, quads);
                    tags[size_t(slot)] = t * s.in_h + h;
                  }
                  row_sources[taps] = quads;
                  row_weights[taps] = wq + (kt * KH + kh) * nb * QB;
                }
                ++taps;
              }
            const int32_t* start = starts.data() + (kt_id[size_t(ot)] * n_kh + kh_id[size_t(oh)]) * Cp;
            rows[count++] = QDwRow{taps, row_sources, row_weights, start, C, nb, Wo, KW, s.stride_w, s.pad_w, s.in_w,
                                   pad, &q, linear ? linear_scale : nullptr, output, row * Wo * C};
          }
          if (count == 0) continue;
          if (single)
            qdw_rows<I, true, I::registers / 4>(rows, count, 0);
          else
            qdw_rows<I, false, I::registers / 4>(rows, count, 0);
        }
    }
  }
}

}  // namespace pyvideo::kernels::detail
