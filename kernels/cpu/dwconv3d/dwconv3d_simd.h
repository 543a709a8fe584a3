// The depthwise conv3d loop nest shared by every SIMD variant; V is a vector wrapper from simd.h.
//
// Channels are the vector dimension (channels-last layout), so every tap is one fused multiply-add per channel
// block. Each output row first lists its (kt, kh) taps that land inside the input (T/H padding is thereby handled
// once per row). Rows are computed in groups that share input (same oh, neighbouring ot), column block by column
// block, so a block's input is read from L2 once and reused from L1. Interior columns (whole window inside the
// input) are blocks of registers/2 columns with the kernel width and stride as compile-time constants for the common
// X3D cases: each input column is loaded once into a register and feeds all its FMAs, accumulators stay in
// registers. Leftover interior columns take halving block sizes, and border columns only their in-range taps; such
// narrow blocks process several channel blocks at once to keep enough independent FMA chains. With X3D's padding of
// 1 the border columns of wide rows instead join the first and last blocks, which skip the padding column. The
// activation, if any, is a pass over each finished row (activate_row), its kind a template argument.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../epilogue.h"
#include "dwconv3d.h"
#include "dwconv3d_input.h"

namespace pyvideo::kernels::detail {

// A channel block: all V::width lanes, or (!Full) the lanes of a precomputed mask.
template <class V, bool Full>
struct DwLanes {
  decltype(V::mask(0)) mask;
  typename V::reg load(const float* p) const { return Full ? V::load(p) : V::load_m(p, mask); }
  void store(float* p, typename V::reg v) const {
    if (Full) V::store(p, v); else V::store_m(p, v, mask);
  }
};

// One output row (n, ot, oh) and the taps that reach inside the input.
struct DwRow {
  const DwConv3dShape* s;
  int64_t channels;
  int taps;                    // (kt, kh) pairs whose input row exists
  const float* const* inputs;  // [taps] input row of each tap, at iw = 0, c = 0
  const float* const* weights; // [taps] weight row of each tap, at kw = 0, c = 0
  const Epilogue* ep;
  float* out;                  // this row's output
  const float* residual;       // this row's residual (laid out like out), or nullptr
  float* sums;                 // this row's channel sums (Epilogue::row_sums) for finish() to add, or nullptr; rows
                               // with an activation get their sums from activate_row instead
};

// Accumulators of a block of CB channel blocks (V::width apart, from c0) x COLS neighbouring output columns,
// indexed [cb * COLS + j].
template <class V, int CB, int COLS>
using DwAcc = typename V::reg[CB * COLS];

// Residual add and store of the block of columns from ow, channels from c0; with row sums (rows without an
// activation, see DwRow::sums), the block's columns are added to the row's running sums in registers, so each channel
// vector of the sums is read and written once per block. They are added one column after the other (not summed
// first): every path visits a row's columns in increasing ow, so the sums come out bit-identical however the columns
// were blocked or the rows grouped (the scalar reference's order), e.g. whether a row was computed paired with another.
template <class V, int CB, int COLS, bool Full>
[[gnu::always_inline]] inline void finish(const DwRow& r, int64_t ow, int64_t c0, DwAcc<V, CB, COLS>& acc,
                                          DwLanes<V, Full> lanes) {
  const int64_t C = r.channels, offset = ow * C + c0;
  auto at = [&](int i) { return offset + i / COLS * V::width + i % COLS * C; };
  if (r.residual) {
#pragma GCC unroll 16
    for (int i = 0; i < CB * COLS; ++i) acc[i] = V::add(acc[i], lanes.load(r.residual + at(i)));
  }
#pragma GCC unroll 16
  for (int i = 0; i < CB * COLS; ++i) lanes.store(r.out + at(i), acc[i]);
  if (r.sums) {
#pragma GCC unroll 8
    for (int cb = 0; cb < CB; ++cb) {
      float* dst = r.sums + c0 + cb * V::width;
      typename V::reg sum = lanes.load(dst);
#pragma GCC unroll 16
      for (int j = 0; j < COLS; ++j) sum = V::add(sum, acc[cb * COLS + j]);
      lanes.store(dst, sum);
    }
  }
}

// The activation of a computed output row of Wo columns, in place, then (sums non-null) its channel sums, column
// after column as finish() adds them. The activation is a template argument so that it inlines into this short loop;
// applied in finish() instead, the per-vector runtime switch stayed an out-of-line call and spilled the accumulators
// (and an activation of every block instance would multiply the loop nest's code). The row was just written, so
// this pass reads it from L1/L2.
template <class V, Activation A>
void activate_row(float* out, int64_t Wo, int64_t C, float* sums) {
  if (!sums) {  // elementwise: the row as one run of Wo * C values, no masked vector per column
    const int64_t n = Wo * C;
    int64_t i = 0;
    // Four (two with 16 registers) vectors per iteration: a swish is a chain of ~18 dependent operations (the exp
    // polynomial, the reciprocal and its Newton step), and independent chains side by side keep the units busy where
    // one per iteration left them waiting (perf showed the samples on the Newton step). Depthwise steps with a swish
    // 1.02-1.04x faster in X3D-XS's program (in-process A/B, one thread); the same per-element arithmetic.
    constexpr int U = 4;
    for (; i + U * V::width <= n; i += U * V::width) {
      typename V::reg y[U];
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) y[u] = V::load(out + i + u * V::width);
      activate_n<V, U, A>(y);
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) V::store(out + i + u * V::width, y[u]);
    }
    for (; i + V::width <= n; i += V::width) V::store(out + i, activate<V>(V::load(out + i), A));
    if (i < n) {
      const auto m = V::mask(int(n - i));
      V::store_m(out + i, activate<V>(V::load_tail(out + i, m), A), m);
    }
    return;
  }
  for (int64_t c0 = 0; c0 < C; c0 += V::width) {
    const auto m = V::mask(int(std::min<int64_t>(V::width, C - c0)));
    typename V::reg sum = V::load_tail(sums + c0, m);
    for (int64_t ow = 0; ow < Wo; ++ow) {
      float* p = out + ow * C + c0;
      const typename V::reg y = activate<V>(V::load_tail(p, m), A);
      V::store_m(p, y, m);
      sum = V::add(sum, y);
    }
    V::store_m(sums + c0, sum, m);
  }
}

using ActivateRowFn = void (*)(float* out, int64_t Wo, int64_t C, float* sums);

// The activate_row for `act`; nullptr for the identity (finish() then adds the row sums itself).
template <class V>
ActivateRowFn activate_row_fn(Activation act) {
  switch (act) {
    case Activation::identity: return nullptr;
    case Activation::relu: return &activate_row<V, Activation::relu>;
    case Activation::swish: return &activate_row<V, Activation::swish>;
    case Activation::hswish: return &activate_row<V, Activation::hswish>;
    case Activation::sigmoid: return &activate_row<V, Activation::sigmoid>;
  }
  return nullptr;
}

template <class V, int CB, int COLS, bool Full>
inline void init_with_bias(const DwRow& r, int64_t c0, DwAcc<V, CB, COLS>& acc, DwLanes<V, Full> lanes) {
#pragma GCC unroll 16
  for (int i = 0; i < CB * COLS; ++i)
    acc[i] = r.ep->bias ? lanes.load(r.ep->bias + c0 + i / COLS * V::width) : V::zero();
}

// Pins a loaded vector to a register. Left alone, GCC folds the load of an input column into each of the KW FMAs that
// use it, so the column is read KW times; with channel counts such as 54, most of those reads straddle two cache
// lines and loads, not FMAs, become the bottleneck.
template <class R>
inline R in_register(R v) {
#if defined(__x86_64__)
  __asm__("" : "+v"(v));
#elif defined(__aarch64__)
  __asm__("" : "+w"(v));
#endif
  return v;
}

// acc[cb][j] += sum over kw < KW of x[(j * SW + kw) * column + cb * width] * w[kw * C + cb * width]: one kernel row
// for the block. Each input column is loaded once and feeds every accumulator that uses it, so loads stay well
// below the FMA count, and the CB * COLS independent accumulator chains hide the FMA latency. EDGES (see
// interior_columns): bit 0, the block's first input column m = 0 is zero padding, skipped, and x points at m = 1;
// bit 1, its last one is.
template <class V, int CB, int COLS, int KW, int SW, int EDGES, bool Full>
inline void accumulate_kernel_row(DwAcc<V, CB, COLS>& acc, const float* x, const float* w, int64_t column, int64_t C,
                                  DwLanes<V, Full> lanes) {
  constexpr int M = (COLS - 1) * SW + KW, first = EDGES & 1, end = EDGES & 2 ? M - 1 : M;
#pragma GCC unroll 16
  for (int cb = 0; cb < CB; ++cb) {
    typename V::reg wv[KW];
#pragma GCC unroll 16
    for (int kw = 0; kw < KW; ++kw) wv[kw] = lanes.load(w + kw * C + cb * V::width);
    typename V::reg* a = acc + cb * COLS;
#pragma GCC unroll 64
    for (int m = first; m < end; ++m) {
      const typename V::reg xv = in_register(lanes.load(x + (m - first) * column + cb * V::width));
#pragma GCC unroll 16
      for (int kw = 0; kw < KW; ++kw)  // the outputs j with j * SW + kw == m
        if (kw <= m && (m - kw) % SW == 0 && (m - kw) / SW < COLS)
          a[(m - kw) / SW] = V::fmadd(xv, wv[kw], a[(m - kw) / SW]);
    }
  }
}

// COLS neighbouring output columns from ow, channel blocks c0 + [0, CB) * width, using taps
// [kw_begin, kw_begin + kernel_w) of each kernel row: the whole row for interior columns, the in-range part for
// border columns. KW_ > 0: the window width and SW_ the stride as compile-time constants (SW_ is free when
// COLS == 1); KW_ == 0: runtime values. EDGES: the block's outermost input columns that are padding (KW_ > 0 only).
template <class V, int CB, int COLS, int KW_, int SW_, int EDGES, bool Full>
inline void column_block(const DwRow& r, int64_t ow, int64_t kw_begin, int64_t kernel_w, int64_t c0,
                         DwLanes<V, Full> lanes) {
  const int64_t C = r.channels, stride_w = r.s->stride_w;
  DwAcc<V, CB, COLS> acc;
  init_with_bias<V, CB, COLS>(r, c0, acc, lanes);
  // The first input column read (the one after the padding column with EDGES bit 0).
  const int64_t column = (ow * stride_w - r.s->pad_w + kw_begin + (EDGES & 1)) * C + c0;
  for (int i = 0; i < r.taps; ++i) {
    const float* x = r.inputs[i] + column;
    const float* w = r.weights[i] + kw_begin * C + c0;
    if constexpr (KW_ > 0)
      accumulate_kernel_row<V, CB, COLS, KW_, SW_, EDGES>(acc, x, w, C, C, lanes);
    else
      for (int64_t kw = 0; kw < kernel_w; ++kw)
        accumulate_kernel_row<V, CB, COLS, 1, 1, 0>(acc, x + kw * C, w + kw * C, stride_w * C, C, lanes);
  }
  finish<V, CB, COLS>(r, ow, c0, acc, lanes);
}

// Full channel blocks from c0 on, CB at a time, then CB / 2, ..., 1 at a time; returns where the masked tail starts.
template <class V, int CB, int COLS, int KW_, int SW_, int EDGES>
inline int64_t full_channel_blocks(const DwRow* rows, int count, int64_t ow, int64_t kw_begin, int64_t kernel_w,
                                   int64_t c0) {
  const DwLanes<V, true> full{V::mask(V::width)};
  for (; c0 + CB * V::width <= rows->channels; c0 += CB * V::width)
    for (int g = 0; g < count; ++g)
      column_block<V, CB, COLS, KW_, SW_, EDGES>(rows[g], ow, kw_begin, kernel_w, c0, full);
  if constexpr (CB > 1)
    return full_channel_blocks<V, CB / 2, COLS, KW_, SW_, EDGES>(rows, count, ow, kw_begin, kernel_w, c0);
  return c0;
}

// The same columns of `count` output rows, for every channel. The rows are chosen to share most of their input rows,
// so a block's input comes from L2 once and is reused from L1 by the following rows. Narrow column blocks take
// several channel blocks at once, so that up to 8 independent accumulators hide the FMA latency.
template <class V, int COLS, int KW_, int SW_, int EDGES = 0>
inline void all_channels(const DwRow* rows, int count, int64_t ow, int64_t kw_begin, int64_t kernel_w) {
  constexpr int CB = COLS >= 8 ? 1 : 8 / COLS;
  const int64_t C = rows->channels;
  const int64_t c0 = full_channel_blocks<V, CB, COLS, KW_, SW_, EDGES>(rows, count, ow, kw_begin, kernel_w, 0);
  if (c0 < C) {
    const DwLanes<V, false> tail{V::mask(int(C - c0))};
    for (int g = 0; g < count; ++g)
      column_block<V, 1, COLS, KW_, SW_, EDGES>(rows[g], ow, kw_begin, kernel_w, c0, tail);
  }
}

// One column whose window crosses the left or right edge of the input: only its in-range taps.
template <class V, int KW_>
inline void border_column(const DwRow* rows, int count, int64_t ow) {
  const DwConv3dShape& s = *rows->s;
  const int64_t iw0 = ow * s.stride_w - s.pad_w;
  const int64_t kw_begin = std::max<int64_t>(0, -iw0), kw_end = std::min(s.kernel_w, s.in_w - iw0);
  if (KW_ == 3 && kw_end - kw_begin == 2)  // a 3-wide kernel hanging one column over the padding
    all_channels<V, 1, 2, 1>(rows, count, ow, kw_begin, 2);
  else
    all_channels<V, 1, 0, 1>(rows, count, ow, kw_begin, kw_end - kw_begin);
}

// One block of COLS columns from ow; edges: which of its outermost input columns are padding (bit 0 first, bit 1 last;
// the last only at stride 1, see dwconv3d_rows).
template <class V, int COLS, int KW_, int SW_>
inline void columns_block(const DwRow* rows, int count, int64_t ow, int edges) {
  const int64_t kernel_w = rows->s->kernel_w;
  if constexpr (KW_ == 3) {
    if (edges == 1) return all_channels<V, COLS, 3, SW_, 1>(rows, count, ow, 0, kernel_w);
    if constexpr (SW_ == 1) {
      if (edges == 2) return all_channels<V, COLS, 3, 1, 2>(rows, count, ow, 0, kernel_w);
      if (edges == 3) return all_channels<V, COLS, 3, 1, 3>(rows, count, ow, 0, kernel_w);
    }
  }
  all_channels<V, COLS, KW_, SW_>(rows, count, ow, 0, kernel_w);
}

// Columns [ow, ow_hi) in blocks of BLOCK, the rest in blocks of BLOCK / 2, ..., 4, 3, 2, 1. Without edges they are
// interior columns, at most one block of each smaller size; the 3 saves a pass over the taps for the 3 interior
// columns of 5-wide rows. edges (a 3-wide kernel with padding 1, X3D's): bit 0, column 0 is in the range and reaches
// one column into the padding; bit 1, so does the range's last column, ow_hi - 1. Such border columns join the
// neighbouring interior columns' blocks, which skip the padding column, instead of taking passes of their own over
// the taps (border_column: one column's FMAs, with as many weight as input loads). With bit 1 no block leaves a
// single column to the right: 21 columns go as 16 + 3 + 2, not 16 + 4 + 1.
template <class V, int BLOCK, int KW_, int SW_>
inline void interior_columns(const DwRow* rows, int count, int64_t ow, int64_t ow_hi, int edges) {
  for (; ow + BLOCK <= ow_hi && !(edges & 2 && BLOCK > 1 && ow_hi - ow - BLOCK == 1); ow += BLOCK)
    columns_block<V, BLOCK, KW_, SW_>(rows, count, ow,
                                      (edges & 1 && ow == 0 ? 1 : 0) | (edges & 2 && ow + BLOCK == ow_hi ? 2 : 0));
  if constexpr (BLOCK > 1) interior_columns<V, BLOCK == 4 ? 3 : BLOCK / 2, KW_, SW_>(rows, count, ow, ow_hi, edges);
}

// Two output rows computed together (2-D register blocking): rows (n, ot, oh) and (n, ot + 1, oh) read the same input
// lines for kernel_t - 1 of their kt taps, so a column block of both rows loads each shared input column once for
// both rows' FMAs (4 input lines per kernel row instead of 6 for a 3x3x3 kernel). A line lists the weight row each of
// the two output rows applies to it (nullptr where that row does not read the line).
struct DwLine {
  const float* input;
  const float* weights[2];
};

// The lines of rows a and b: every tap of either, taps reading the same input line merged. Returns the count.
inline int shared_lines(const DwRow& a, const DwRow& b, DwLine* lines) {
  int n = 0;
  for (int i = 0; i < a.taps; ++i) lines[n++] = DwLine{a.inputs[i], {a.weights[i], nullptr}};
  for (int i = 0; i < b.taps; ++i) {
    int j = 0;
    while (j < n && lines[j].input != b.inputs[i]) ++j;
    if (j == n) lines[n++] = DwLine{b.inputs[i], {nullptr, nullptr}};
    lines[j].weights[1] = b.weights[i];
  }
  return n;
}

// accumulate_kernel_row for one channel block of the rows whose accumulators are listed in USE (bit r: row r):
// each input column is loaded once and feeds both rows. LEFT: input column m = 0 is zero padding, skipped, and
// `column` is the offset of m = 1.
template <class V, int COLS, int KW, int SW, int USE, int LEFT, bool Full>
inline void accumulate_shared_line(DwAcc<V, 1, COLS>* acc, const DwLine& line, int64_t column, int64_t C,
                                   DwLanes<V, Full> lanes) {
  typename V::reg wv[2][KW];
#pragma GCC unroll 2
  for (int r = 0; r < 2; ++r)
#pragma GCC unroll 16
    for (int kw = 0; kw < KW; ++kw)
      if (USE & (1 << r)) wv[r][kw] = lanes.load(line.weights[r] + kw * C);
  const float* x = line.input + column;
#pragma GCC unroll 64
  for (int m = LEFT; m < (COLS - 1) * SW + KW; ++m) {
    const typename V::reg xv = in_register(lanes.load(x + (m - LEFT) * C));
#pragma GCC unroll 16
    for (int kw = 0; kw < KW; ++kw)  // the outputs j with j * SW + kw == m
      if (kw <= m && (m - kw) % SW == 0 && (m - kw) / SW < COLS)
#pragma GCC unroll 2
        for (int r = 0; r < 2; ++r)
          if (USE & (1 << r)) acc[r][(m - kw) / SW] = V::fmadd(xv, wv[r][kw], acc[r][(m - kw) / SW]);
  }
}

// COLS interior columns from ow of both rows, channel block c0; LEFT: ow = 0, whose window starts one column into
// the padding.
template <class V, int COLS, int KW, int SW, int LEFT, bool Full>
inline void pair_column_block(const DwRow* rows, const DwLine* lines, int n_lines, int64_t ow, int64_t c0,
                              DwLanes<V, Full> lanes) {
  const int64_t C = rows->channels;
  DwAcc<V, 1, COLS> acc[2];
  init_with_bias<V, 1, COLS>(rows[0], c0, acc[0], lanes);
  init_with_bias<V, 1, COLS>(rows[1], c0, acc[1], lanes);
  const int64_t column = (ow * SW - rows->s->pad_w + LEFT) * C + c0;
  for (int i = 0; i < n_lines; ++i) {
    DwLine line = lines[i];
    for (auto& w : line.weights)
      if (w) w += c0;
    if (line.weights[0] && line.weights[1])
      accumulate_shared_line<V, COLS, KW, SW, 3, LEFT>(acc, line, column, C, lanes);
    else if (line.weights[0])
      accumulate_shared_line<V, COLS, KW, SW, 1, LEFT>(acc, line, column, C, lanes);
    else
      accumulate_shared_line<V, COLS, KW, SW, 2, LEFT>(acc, line, column, C, lanes);
  }
  finish<V, 1, COLS>(rows[0], ow, c0, acc[0], lanes);
  finish<V, 1, COLS>(rows[1], ow, c0, acc[1], lanes);
}

// The pairs' column blocks of PAIR columns from ow, every channel block; LEFT: see pair_column_block.
template <class V, int PAIR, int SW_, int LEFT>
inline void pair_blocks(const DwRow* rows, int pairs, const DwLine* lines, int max_lines, const int* n_lines,
                        int64_t ow) {
  const int64_t C = rows->channels;
  int64_t c0 = 0;
  const DwLanes<V, true> full{V::mask(V::width)};
  for (; c0 + V::width <= C; c0 += V::width)
    for (int q = 0; q < pairs; ++q)
      pair_column_block<V, PAIR, 3, SW_, LEFT>(rows + 2 * q, lines + q * max_lines, n_lines[q], ow, c0, full);
  if (c0 < C) {
    const DwLanes<V, false> tail{V::mask(int(C - c0))};
    for (int q = 0; q < pairs; ++q)
      pair_column_block<V, PAIR, 3, SW_, LEFT>(rows + 2 * q, lines + q * max_lines, n_lines[q], ow, c0, tail);
  }
}

template <class V, int KW_, int SW_>
void dwconv3d_rows(const DwRow* rows, int count, int64_t ow_lo, int64_t ow_hi, DwLine* lines) {
  constexpr int BLOCK = V::registers / 2;  // accumulators; the rest hold weights and input columns
  const int64_t Wo = rows->s->out_w();
  // Padding 1 on both sides: the border columns join the blocks (interior_columns). Only on rows of 16 columns or
  // more: on X3D's 10- and 5-wide rows the blocks are narrow either way and it measured no faster (10) or 2-5% slower
  // (5), while 20- and 40-wide rows gained 6-20% (AVX-512 and AVX2, bench/depthwise_f32.py).
  if (KW_ == 3 && SW_ == 1 && ow_lo == 1 && ow_hi == Wo - 1 && Wo >= 16) {
    interior_columns<V, BLOCK, KW_, SW_>(rows, count, 0, Wo, 3);
    return;
  }
  if constexpr (KW_ == 3 && SW_ == 2) {
    // Interior columns of row pairs in blocks of BLOCK / 2 columns (the same BLOCK accumulators); for each block the
    // pairs follow each other, so lines shared between pairs are reused from L1 as well. Only for stride 2, where a
    // single row's block loads two input columns per output: at stride 1 a single row's block of BLOCK columns
    // already reuses its loads well and measured as fast or faster than pairs (bench/conv3d_layers.py). With
    // padding 1, column 0 (one column into the padding) joins the first block, as at stride 1; the right edge, if
    // any (odd widths), keeps its border_column.
    constexpr int PAIR_COLS = BLOCK / 2;
    const bool left = rows->s->pad_w == 1 && ow_lo == 1 && ow_hi >= PAIR_COLS;
    if (!left)
      for (int64_t ow = 0; ow < ow_lo; ++ow) border_column<V, KW_>(rows, count, ow);
    const int pairs = count / 2;
    int n_lines[8];
    const int max_lines = 2 * (rows->s->kernel_t * rows->s->kernel_h);
    for (int q = 0; q < pairs; ++q) n_lines[q] = shared_lines(rows[2 * q], rows[2 * q + 1], lines + q * max_lines);
    const int64_t start = left ? 0 : ow_lo;
    int64_t ow = start;
    if (left) {
      pair_blocks<V, PAIR_COLS, SW_, 1>(rows, pairs, lines, max_lines, n_lines, ow);
      ow += PAIR_COLS;
    }
    for (; ow + PAIR_COLS <= ow_hi; ow += PAIR_COLS)
      pair_blocks<V, PAIR_COLS, SW_, 0>(rows, pairs, lines, max_lines, n_lines, ow);
    interior_columns<V, PAIR_COLS / 2, KW_, SW_>(rows, 2 * pairs, ow, ow_hi, 0);
    if (count % 2) interior_columns<V, BLOCK, KW_, SW_>(rows + count - 1, 1, start, ow_hi, left ? 1 : 0);
  } else {
    for (int64_t ow = 0; ow < ow_lo; ++ow) border_column<V, KW_>(rows, count, ow);
    interior_columns<V, BLOCK, KW_, SW_>(rows, count, ow_lo, ow_hi, 0);
  }
  for (int64_t ow = ow_hi; ow < Wo; ++ow) border_column<V, KW_>(rows, count, ow);
}

// Output row `row` (n, ot, oh), stored at `out` (Wo * C floats): its in-range (kt, kh) taps are written to tap_inputs
// / tap_weights.
template <class Input>
inline DwRow make_row(const DwConv3dShape& s, const Input& input, const float* weight, const Epilogue& ep, float* out,
                      int64_t row, const float** tap_inputs, const float** tap_weights) {
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), row_size = s.out_w() * C;
  const int64_t n = row / (To * Ho), it0 = (row / Ho) % To * s.stride_t - s.pad_t;
  const int64_t ih0 = row % Ho * s.stride_h - s.pad_h;
  DwRow r;
  r.s = &s;
  r.channels = C;
  r.taps = 0;
  for (int64_t kt = std::max<int64_t>(0, -it0); kt < std::min(s.kernel_t, s.in_t - it0); ++kt)
    for (int64_t kh = std::max<int64_t>(0, -ih0); kh < std::min(s.kernel_h, s.in_h - ih0); ++kh) {
      tap_inputs[r.taps] = input.row(s, n, it0 + kt, ih0 + kh);
      tap_weights[r.taps] = weight + (kt * s.kernel_h + kh) * s.kernel_w * C;
      ++r.taps;
    }
  r.inputs = tap_inputs;
  r.weights = tap_weights;
  r.ep = &ep;
  r.out = out;
  r.residual = ep.residual ? ep.residual + row * row_size : nullptr;
  r.sums = ep.row_sums && ep.activation == Activation::identity ? ep.row_sums + row * C : nullptr;
  return r;
}

// Output rows computed together. 8 rather than 4: on 13-frame clips (X3D-S) the stride-2 layers gain 3-9% and
// nothing measured loses (bench/conv3d_layers.py).
constexpr int kDwGroup = 8;

// Computes groups of up to kDwGroup output rows of one oh (neighbouring planes), whatever the order the entry point
// visits them in; holds the per-call scratch (tap tables, shared lines), the interior column range and the
// activation pass.
template <class V>
class DwRowGroups {
 public:
  DwRowGroups(const DwConv3dShape& s, const Epilogue& ep)
      : s_(s), ep_(ep), activate_(activate_row_fn<V>(ep.activation)), max_taps_(size_t(s.kernel_t * s.kernel_h)),
        tap_inputs_(kDwGroup * max_taps_), tap_weights_(kDwGroup * max_taps_), lines_(kDwGroup / 2 * 2 * max_taps_) {
    const int64_t Wo = s.out_w(), KW = s.kernel_w, SW = s.stride_w;
    // [ow_lo, ow_hi): output columns whose whole window is inside the input width.
    ow_lo_ = std::min<int64_t>(Wo, (s.pad_w + SW - 1) / SW);
    const int64_t last_full = s.in_w - KW + s.pad_w;  // largest ow*SW with iw0 + KW <= in_w
    ow_hi_ = last_full < 0 ? ow_lo_ : std::max(ow_lo_, std::min<int64_t>(Wo, last_full / SW + 1));
  }

  template <class Input>
  void run(const Input& input, const float* weight, float* output, const int64_t* row_ids, int count) {
    float* outs[kDwGroup];
    for (int g = 0; g < count; ++g) outs[g] = output + row_ids[g] * s_.out_w() * s_.channels;
    run_into(input, weight, outs, row_ids, count);
  }

  // run() with row g stored at outs[g] (Wo * C floats) instead of at its place in an output tensor. The residual and
  // the row sums are still found by row id in the epilogue's tensors.
  template <class Input>
  void run_into(const Input& input, const float* weight, float* const* outs, const int64_t* row_ids, int count) {
    for (int g = 0; g < count; ++g)
      rows_[g] = make_row(s_, input, weight, ep_, outs[g], row_ids[g], tap_inputs_.data() + g * max_taps_,
                          tap_weights_.data() + g * max_taps_);
    const int64_t KW = s_.kernel_w, SW = s_.stride_w;
    if (KW == 3 && SW == 1)
      dwconv3d_rows<V, 3, 1>(rows_, count, ow_lo_, ow_hi_, lines_.data());
    else if (KW == 3 && SW == 2)
      dwconv3d_rows<V, 3, 2>(rows_, count, ow_lo_, ow_hi_, lines_.data());
    else if (KW == 1 && SW == 1)
      dwconv3d_rows<V, 1, 1>(rows_, count, ow_lo_, ow_hi_, lines_.data());
    else
      dwconv3d_rows<V, 0, 0>(rows_, count, ow_lo_, ow_hi_, lines_.data());
    if (activate_)
      for (int g = 0; g < count; ++g)
        activate_(rows_[g].out, s_.out_w(), s_.channels,
                  ep_.row_sums ? ep_.row_sums + row_ids[g] * s_.channels : nullptr);
  }

 private:
  const DwConv3dShape& s_;
  const Epilogue& ep_;
  const ActivateRowFn activate_;  // nullptr: identity
  size_t max_taps_;
  int64_t ow_lo_, ow_hi_;
  std::vector<const float*> tap_inputs_, tap_weights_;
  std::vector<DwLine> lines_;  // the shared lines of each row pair
  DwRow rows_[kDwGroup];
};

// Both entry points: the rows at positions [begin, end) of the line order, each line's rows in groups; a group's
// rows share most of their input planes (reused from L1), and the next line's rows share input rows in H (from L2).
template <class V, class Input>
void dwconv3d_f32_positions(const DwConv3dShape& s, const Input& input, const float* weight, const Epilogue& ep,
                            float* output, int64_t begin, int64_t end) {
  DwRowGroups<V> groups(s, ep);
  for_each_row_group<kDwGroup>(s, begin, end, [&](const int64_t* rows, int count) {
    groups.run(input, weight, output, rows, count);
  });
}

template <class V>
void dwconv3d_f32_simd(const DwConv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                       float* output, int64_t begin, int64_t end) {
  dwconv3d_f32_positions<V>(s, DwTensorInput{input}, weight, ep, output, begin, end);
}

template <class V>
void dwconv3d_f32_lines_simd(const DwConv3dShape& s, const float* const* input_rows, const float* weight,
                             const Epilogue& ep, float* output, int64_t line_begin, int64_t line_end) {
  const int64_t To = s.out_t();
  dwconv3d_f32_positions<V>(s, DwRowTable{input_rows}, weight, ep, output, line_begin * To, line_end * To);
}

}  // namespace pyvideo::kernels::detail
