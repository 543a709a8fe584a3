// The int8 depthwise conv3d on integer dot products (x86 VNNI vpdpbusd, ARM sdot); I is a wrapper from dot_simd.h.
//
// A dot instruction does four multiply-adds per int32 lane, but its four bytes must be four taps of ONE channel,
// while channels-last memory holds one tap of many channels side by side. So each input row (n, t, h) is rearranged
// once into "quads": for output column ow and channel c, the bytes of input columns ow * stride_w - pad_w + [0, 4)
// of channel c, i.e. a whole kernel row of up to 4 taps (wider kernels use ceil(kw / 4) quads, g = 0, 1, ...).
// One dot then applies a whole 3-wide kernel row (its fourth weight is zero): 9 dots per output vector for a 3x3x3
// kernel where the float kernel needs 27 FMAs. Columns in the W padding read the zero point, so border columns
// need no special path. The rearranging is a copy of the row into columns of `width` channel bytes, then one
// register load, one cross-lane dword permutation and one in-lane byte shuffle per quad (I::quads).
//
// Quad rows are cached in a ring of kernel_h slices, each holding the rows of one input h for every t the range
// needs: output rows are visited oh by oh and, within one oh, all ot of the range, so every input row is rearranged
// once per call and reused by all (up to kt * kh) output rows that read it, from L1/L2.
//
// Zero point: the dots sum (x + offset) * w over every tap of the in-range (kt, kh) kernel rows (padding columns
// hold the zero point, their weights included); bias - (zero_point + offset) * (sum of those kernel rows' weights)
// turns that into the reference's sum of (x - zero_point) * w, exactly, in int32.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "requant_simd.h"

namespace pyvideo::kernels::detail {

template <class I>
void qdwconv3d_dot(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                   int8_t* output, int64_t row_begin, int64_t row_end) {
  using ireg = typename I::ireg;
  using F = typename I::F;
  constexpr int W = I::width;
  constexpr int64_t QB = 4 * W;             // bytes of one quad register
  constexpr int COLS = I::registers / 4;    // output columns per register block: accumulators + loads fit
  if (row_begin >= row_end) return;
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t KT = s.kernel_t, KH = s.kernel_h, KW = s.kernel_w, KG = (KW + 3) / 4;
  const int64_t nb = (C + W - 1) / W, Cp = nb * W, kernel_rows = KT * KH;
  const int64_t wr = (Wo - 1) * s.stride_w + 4 * KG;  // rearranged columns: iw = -pad_w + [0, wr)
  const int64_t slot_bytes = nb * Wo * KG * QB;
  const int64_t first_plane = row_begin / Ho, last_plane = (row_end - 1) / Ho;
  const int64_t planes = std::min(To, last_plane - first_plane + 1);
  const int64_t t_slots = std::max<int64_t>(1, std::min(s.in_t, (planes - 1) * s.stride_t + KT));

  // Workspace, reused across calls by each thread: packed weights, per-kernel-row corrections, padded bias, one
  // rearranged row, the quad-row ring.
  auto round64 = [](int64_t b) { return (b + 63) / 64 * 64; };
  const int64_t wq_bytes = round64(kernel_rows * nb * KG * QB), corr_bytes = round64((kernel_rows + 1) * Cp * 4);
  const int64_t r_bytes = round64(wr * W), ring_bytes = KH * t_slots * slot_bytes;
  thread_local std::vector<uint8_t> workspace;
  thread_local std::vector<int64_t> tags;
  workspace.resize(size_t(wq_bytes + corr_bytes + r_bytes + ring_bytes + 64));
  uint8_t* base = workspace.data() + (64 - reinterpret_cast<uintptr_t>(workspace.data()) % 64) % 64;
  int8_t* wq = reinterpret_cast<int8_t*>(base);
  int32_t* corr = reinterpret_cast<int32_t*>(base + wq_bytes);  // [kernel_rows][Cp], then the padded bias [Cp]
  int32_t* bias = corr + kernel_rows * Cp;
  uint8_t* rearranged = base + wq_bytes + corr_bytes;
  uint8_t* ring = rearranged + r_bytes;

  // wq[r][cb][g][c][k] = weight of kernel row r, column 4g + k, channel cb * W + c (zero past kw or C), in the
  // byte order of the quads; corr[r][c] = (zero_point + offset) * sum of kernel row r's weights of channel c.
  const int32_t shift = q.input_zero_point + I::input_offset;
  for (int64_t r = 0; r < kernel_rows; ++r)
    for (int64_t c = 0; c < Cp; ++c) {
      int32_t sum = 0;
      for (int64_t g = 0; g < KG; ++g)
        for (int64_t k = 0; k < 4; ++k) {
          const int64_t kw = 4 * g + k;
          const int8_t w = (kw < KW && c < C) ? weight[(r * KW + kw) * C + c] : int8_t(0);
          wq[((r * nb + c / W) * KG + g) * QB + c % W * 4 + k] = w;
          sum += w;
        }
      corr[r * Cp + c] = shift * sum;
    }
  for (int64_t c = 0; c < Cp; ++c) bias[c] = c < C ? q.bias[c] : 0;

  const uint8_t flip = I::input_offset ? 0x80 : 0x00;
  const uint8_t pad_byte = uint8_t(int8_t(q.input_zero_point)) ^ flip;
  // Quads of input row (n, t, h) into `slot`, laid out [cb][ow][g][QB].
  auto rearrange = [&](int64_t n, int64_t t, int64_t h, uint8_t* slot) {
    const int8_t* line = input + ((n * s.in_t + t) * s.in_h + h) * s.in_w * C;
    const int64_t in_lo = std::min(wr, s.pad_w), in_hi = std::max(in_lo, std::min(wr, s.pad_w + s.in_w));
    for (int64_t cb = 0; cb < nb; ++cb) {
      const int64_t c0 = cb * W, lanes = std::min<int64_t>(W, C - c0);
      std::fill(rearranged, rearranged + in_lo * W, pad_byte);
      for (int64_t col = in_lo; col < in_hi; ++col) {
        const int8_t* x = line + (col - s.pad_w) * C + c0;
        uint8_t* d = rearranged + col * W;
        if (lanes == W) {
#pragma GCC unroll 16
          for (int b = 0; b < W; ++b) d[b] = uint8_t(x[b]) ^ flip;
        } else {
          for (int64_t b = 0; b < W; ++b) d[b] = b < lanes ? uint8_t(x[b]) ^ flip : pad_byte;
        }
      }
      std::fill(rearranged + in_hi * W, rearranged + wr * W, pad_byte);
      uint8_t* dst = slot + cb * Wo * KG * QB;
      for (int64_t ow = 0; ow < Wo; ++ow)
        for (int64_t g = 0; g < KG; ++g)
          I::store(dst + (ow * KG + g) * QB, I::quads(rearranged + (ow * s.stride_w + 4 * g) * W));
    }
  };

  std::vector<const uint8_t*> tap_quads(static_cast<size_t>(kernel_rows));
  std::vector<const int8_t*> tap_weights(static_cast<size_t>(kernel_rows));
  std::vector<const int32_t*> tap_corr(static_cast<size_t>(kernel_rows));
  for (int64_t n = first_plane / To; n <= last_plane / To; ++n) {
    const int64_t ot_a = std::max(first_plane, n * To) - n * To, ot_b = std::min(last_plane, n * To + To - 1) - n * To;
    const int64_t t_lo = std::max<int64_t>(0, ot_a * s.stride_t - s.pad_t);
    tags.assign(size_t(KH * t_slots), -1);
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ot = ot_a; ot <= ot_b; ++ot) {
        const int64_t row = (n * To + ot) * Ho + oh;
        if (row < row_begin || row >= row_end) continue;
        const int64_t it0 = ot * s.stride_t - s.pad_t, ih0 = oh * s.stride_h - s.pad_h;
        int taps = 0;
        for (int64_t kt = std::max<int64_t>(0, -it0); kt < std::min(KT, s.in_t - it0); ++kt)
          for (int64_t kh = std::max<int64_t>(0, -ih0); kh < std::min(KH, s.in_h - ih0); ++kh) {
            const int64_t t = it0 + kt, h = ih0 + kh, slot = h % KH * t_slots + (t - t_lo);
            uint8_t* quads = ring + slot * slot_bytes;
            if (tags[size_t(slot)] != t * s.in_h + h) {
              rearrange(n, t, h, quads);
              tags[size_t(slot)] = t * s.in_h + h;
            }
            const int64_t r = kt * KH + kh;
            tap_quads[size_t(taps)] = quads;
            tap_weights[size_t(taps)] = wq + r * nb * KG * QB;
            tap_corr[size_t(taps)] = corr + r * Cp;
            ++taps;
          }
        for (int64_t cb = 0; cb < nb; ++cb) {
          const int64_t c0 = cb * W;
          const int lanes = int(std::min<int64_t>(W, C - c0));
          ireg start = I::load_i32(bias + c0);
          for (int i = 0; i < taps; ++i) start = I::sub(start, I::load_i32(tap_corr[size_t(i)] + c0));
          for (int64_t ow0 = 0; ow0 < Wo; ow0 += COLS) {
            const int m = int(std::min<int64_t>(COLS, Wo - ow0));
            int64_t at[COLS];  // the last column repeats in a partial block; only m are stored
            for (int j = 0; j < COLS; ++j) at[j] = (cb * Wo + std::min<int64_t>(ow0 + j, Wo - 1)) * KG * QB;
            ireg acc[COLS];
#pragma GCC unroll 16
            for (int j = 0; j < COLS; ++j) acc[j] = start;
            for (int i = 0; i < taps; ++i) {
              const uint8_t* qr = tap_quads[size_t(i)];
              const int8_t* wr_ = tap_weights[size_t(i)] + cb * KG * QB;
              for (int64_t g = 0; g < KG; ++g) {
                const ireg w = I::load(wr_ + g * QB);
#pragma GCC unroll 16
                for (int j = 0; j < COLS; ++j) acc[j] = I::dot(acc[j], I::load(qr + at[j] + g * QB), w);
              }
            }
#pragma GCC unroll 16
            for (int j = 0; j < COLS; ++j)
              if (j < m) requantize_store<F>(I::to_float(acc[j]), c0, (row * Wo + ow0 + j) * C + c0, lanes, q, output);
          }
        }
      }
  }
}

}  // namespace pyvideo::kernels::detail
