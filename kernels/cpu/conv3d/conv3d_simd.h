// The dense conv3d loop nest shared by every SIMD variant; V is a vector wrapper from simd.h.
//
// A convolution is computed as GEMMs: each output row (n, ot, oh) is a block of output columns (M) times C_out (N),
// reduced over taps x input channels (K). The register tile is MR output columns x NV channel vectors held in MR*NV
// accumulators: every weight vector loaded serves MR columns, every broadcast input value NV vectors.
//
// Channel blocking: C_out is cut into blocks of at most max_vectors() vectors, as evenly as possible (108 channels
// = 7 AVX-512 vectors -> 4 + 3, 48 -> 3, 96 -> 3 + 3), so no block is mostly empty; only the very last vector of
// C_out is masked. Each block size NV has its own MR (as many columns as the registers allow).
//
// Taps: for output columns whose whole window lies inside the input width ("interior"), the kw taps of one kernel row
// read kernel_w * C_in contiguous input floats against kernel_w * C_in contiguous weight rows, so they form one K loop
// of that length and neighbouring columns are a fixed stride (stride_w * C_in) apart. An interior tile therefore
// needs one input pointer plus one offset per (kt, kh) tap that lands inside the input; a pointwise layer is a single
// tap with K = C_in (the plain GEMM). Border columns (windows crossing the zero padding) are computed one column at a
// time; their in-range kw taps are contiguous as well, so they are the same taps with a shorter K.
//
// Blocking: the items of an output row are done together (for a pointwise layer, a thread's whole range is one row of
// columns), in chunks of columns whose inputs and outputs fit L2 (column_chunk), each chunk channel block by channel
// block, MR columns at a time. A long single-tap K (C_in > 128) is cut into parts so one channel block's weights stay
// in L1 while all column tiles read them. Each K step prefetches the next tile's input.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "../channel_tiles.h"
#include "../epilogue.h"
#include "conv3d.h"

namespace pyvideo::kernels::detail {

// Channel vectors per register tile: 4 where there are 32 vector registers, else 2. A tile of one or two columns
// (a GEMV such as the classifier head) takes 4 everywhere: its few accumulators are the only independent FMA chains.
template <class V>
constexpr int max_vectors() {
  return V::registers >= 32 ? 4 : 2;
}
constexpr int max_vectors_narrow = 4;

// A single column (a GEMV: a classifier head on a pooled vector, or one border column of a dense conv) takes channel
// blocks as wide as the register file allows, all but a broadcast register and a few spares as accumulators: each
// weight row is then read in runs of up to 28 vectors, nearly in memory order. With 4-vector blocks every row was
// read 256 bytes at a time, once per block, so weights coming from memory (a head's weights are evicted by the rest
// of the network) streamed at 8-12 GB/s where a contiguous read reaches ~20 on this project's VM. The arithmetic
// of each output is the same chain of FMAs whatever the block width.
template <class V>
constexpr int max_vectors_column() {
  return V::registers >= 32 ? 28 : 14;
}

// Output columns per register tile for NV channel vectors: the accumulators plus NV weight vectors and one broadcast
// input value fill the register file; at most 8 columns, since each column's input row needs a general register.
template <class V, int NV>
constexpr int tile_columns() {
  return std::min(8, (V::registers - NV - 1) / NV);
}

// What one register tile reads. Output column i, tap t, reduction index k (< k_len) multiplies
// a[i * lda + a_off[t] + k] with the weight vector at b[b_off[t] + k * ldb + channel].
struct GemmTaps {
  const float* a;
  int64_t lda;
  const int64_t* a_off;
  const int64_t* b_off;
  int taps;
  int64_t k_len;
  const float* b;
  int64_t ldb;
};

// Where one register tile writes: out[i * ldc + channel], residual (optional) laid out like out. A reduction split
// into parts (K blocking) adds the bias in its first part and the stored partial sums in the others; only the last
// part applies the residual and the activation.
struct GemmOut {
  float* out;
  const float* residual;
  int64_t ldc;
  bool first = true, last = true;
};

// The activation of a stored tile: rows x vectors at out (rows ldc apart), the last vector masked by `tail` if masked.
template <class V>
void activate_tile(float* out, int64_t ldc, int rows, int vectors, bool masked, decltype(V::mask(0)) tail,
                   Activation act) {
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < vectors; ++j) {
      float* q = out + i * ldc + j * V::width;
      if (masked && j == vectors - 1)
        V::store_m(q, activate<V>(V::load_m(q, tail), act), tail);
      else
        V::store(q, activate<V>(V::load(q), act));
    }
}

// The register tile: columns [0, m) (m <= MR) x NV vectors of channels from n0. A tile with m < MR computes its last
// column again in the spare rows (never stored): cheaper than splitting it into narrower tiles whose few
// accumulator chains leave the FMA units waiting. Tail: the last vector holds only the lanes in `tail` (the end of
// C_out), loaded zero-extended and stored masked.
template <class V, int MR, int NV, bool Tail>
void gemm_tile(const GemmTaps& p, const GemmOut& o, const Epilogue& ep, int m, int64_t n0,
               decltype(V::mask(0)) tail) {
  using reg = typename V::reg;
  auto load_c = [tail](const float* q, int j) {
    return Tail && j == NV - 1 ? V::load_tail(q + j * V::width, tail) : V::load(q + j * V::width);
  };
  // A later K part starts from zero and adds the stored partial sums when it stores (initialising acc from them
  // instead would put a second initialisation path in front of the K loop, and GCC then keeps acc in memory).
  reg acc[MR][NV];
#pragma GCC unroll 32
  for (int j = 0; j < NV; ++j) {
    const reg bias = o.first && ep.bias ? load_c(ep.bias + n0, j) : V::zero();
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) acc[i][j] = bias;
  }
  if constexpr (MR > 1) {
    // The tile's output lines (for writing) and residual lines on their way while the K loop runs. A pointwise layer
    // with a short K and a wide output (Slow-R50's 64 -> 256 +res on 8x56x56: 26 MB out, 26 MB residual in) wrote
    // each line only after its tile's few multiply-adds, and waited for it from memory: 12.4 ms against 4 x 2.0 ms
    // for the 64 -> 64 layer on the same columns. With the prefetches 1.16x (Slow-R50's pointwise layers 1.05x,
    // geomean, one and two threads), the ResNet family's programs 1-6% (bench/conv3d_layers.py,
    // bench/accelerator_zoo.py --base; Zen 4); X3D's, whose outputs mostly stay in L2, level. Same bits.
    // One prefetch per 64 bytes, and one for the last float (the block need not start on a line). A masked last
    // vector may prefetch past C_out: prefetches never fault.
    constexpr int floats = NV * V::width, step = 16;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      if (i >= m) break;
      const float* out = o.out + i * o.ldc + n0;
      const float* residual = o.last && o.residual ? o.residual + i * o.ldc + n0 : nullptr;
#pragma GCC unroll 8
      for (int f = 0; f < floats + step - 1; f += step) {
        const int at = std::min(f, floats - 1);
        __builtin_prefetch(out + at, 1);
        if (residual) __builtin_prefetch(residual + at);
      }
    }
  }
  int64_t row[MR];  // input offset of each column
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) row[i] = std::min(i, m - 1) * p.lda;
  for (int t = 0; t < p.taps; ++t) {
    const float* a = p.a + p.a_off[t];
    const float* ar[MR];  // (an array of row pointers keeps GCC's register allocation clean; offsets into `a` did not)
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) ar[i] = a + row[i];
    const float* b = p.b + p.b_off[t] + n0;
    for (int64_t k = 0; k < p.k_len; ++k, b += p.ldb) {
      // The next tile's input (for a pointwise layer the MR * K floats after this tile's) on its way to L1.
      __builtin_prefetch(a + MR * p.lda + k * MR);
      if constexpr (MR == 1) {
        // A single column (a GEMV such as a classifier head, where every weight is read once) walks the weight rows
        // ldb floats apart, a stride the hardware prefetchers do not follow: fetch the rows 16 ahead (1.1-1.3x on
        // X3D's head layers, one thread; 4 and 64 rows ahead gained less). Each weight vector serves one FMA, so it
        // is its memory operand (loading the block's up to 28 vectors first spilled them to the stack).
        const float* ahead = b + 16 * p.ldb;
#pragma GCC unroll 32
        for (int j = 0; j < NV; ++j) __builtin_prefetch(ahead + j * V::width);
        const reg x = V::set1(ar[0][k]);
#pragma GCC unroll 32
        for (int j = 0; j < NV; ++j) acc[0][j] = V::fmadd(x, load_c(b, j), acc[0][j]);
        continue;
      }
      reg w[NV];
#pragma GCC unroll 32
      for (int j = 0; j < NV; ++j) w[j] = load_c(b, j);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const reg x = V::set1(ar[i][k]);
#pragma GCC unroll 32
        for (int j = 0; j < NV; ++j) acc[i][j] = V::fmadd(x, w[j], acc[i][j]);
      }
    }
  }
  // ReLU (X3D's activation for dense convs) is applied in registers; the rarer exp-based activations in a second
  // pass over the stored tile, because calling them here would spill every accumulator around each call.
  const bool relu = o.last && ep.activation == Activation::relu;
  const float* residual = o.last ? o.residual : nullptr;
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* out = o.out + i * o.ldc + n0;
#pragma GCC unroll 32
    for (int j = 0; j < NV; ++j) {
      reg v = acc[i][j];
      if (!o.first) v = V::add(v, load_c(out, j));
      if (residual) v = V::add(v, load_c(residual + i * o.ldc + n0, j));
      if (relu) v = V::relu(v);
      if (Tail && j == NV - 1) V::store_m(out + j * V::width, v, tail); else V::store(out + j * V::width, v);
    }
  }
  if (o.last && !relu && ep.activation != Activation::identity)
    activate_tile<V>(o.out + n0, o.ldc, m, NV, Tail, tail, ep.activation);
}

// Columns [0, m) of one channel block: tiles of MR columns; a remainder of more than MR / 2 columns in one more
// MR tile, a smaller one in tiles of the largest power of two below MR (and so on).
template <class V, int MR, int NV, bool Tail>
void tile_columns_range(GemmTaps p, GemmOut o, const Epilogue& ep, int64_t m, int64_t n0, decltype(V::mask(0)) tail) {
  for (; m > 0; m -= MR) {
    if (m < MR && 2 * m <= MR && MR > 1) break;
    gemm_tile<V, MR, NV, Tail>(p, o, ep, int(std::min<int64_t>(m, MR)), n0, tail);
    p.a += MR * p.lda;
    o.out += MR * o.ldc;
    if (o.residual) o.residual += MR * o.ldc;
  }
  if constexpr (MR > 1) {
    constexpr int smaller = (MR & (MR - 1)) == 0 ? MR / 2 : 1 << (31 - __builtin_clz(unsigned(MR)));
    if (m > 0) tile_columns_range<V, smaller, NV, Tail>(p, o, ep, m, n0, tail);
  }
}

template <class V>
void channel_blocks(const GemmTaps& p, const GemmOut& o, const Epilogue& ep, int64_t m, int64_t Co);

// All output channels of m columns.
template <class V>
void all_channel_blocks(const GemmTaps& p, const GemmOut& o, const Epilogue& ep, int64_t m, int64_t Co) {
  // K blocking for a single long tap (pointwise layers with many input channels): parts of at most kc_max so a
  // channel block's weights (kc x NV vectors) stay in L1 while every column tile reads them.
  constexpr int64_t kc_max = 128;
  const int64_t parts = p.taps == 1 ? std::max<int64_t>(1, (p.k_len + kc_max - 1) / kc_max) : 1;
  for (int64_t part = 0; part < parts; ++part) {
    const int64_t k0 = p.k_len * part / parts, k1 = p.k_len * (part + 1) / parts;
    GemmTaps pk = p;
    GemmOut ok = o;
    if (parts > 1) {
      pk.a += k0;
      pk.b += k0 * p.ldb;
      pk.k_len = k1 - k0;
      ok.first = part == 0;
      ok.last = part == parts - 1;
    }
    channel_blocks<V>(pk, ok, ep, m, Co);
  }
}

// One channel block of NV vectors (1 <= NV <= max_vectors_column) of a single column.
template <class V, int NV = 1>
void column_block(const GemmTaps& p, const GemmOut& o, const Epilogue& ep, int nv, bool tail, int64_t n0,
                  decltype(V::mask(0)) tail_mask) {
  if constexpr (NV <= max_vectors_column<V>()) {
    if (nv != NV) return column_block<V, NV + 1>(p, o, ep, nv, tail, n0, tail_mask);
    if (tail)
      gemm_tile<V, 1, NV, true>(p, o, ep, 1, n0, tail_mask);
    else
      gemm_tile<V, 1, NV, false>(p, o, ep, 1, n0, tail_mask);
  }
}

// One K part of all output channels of m columns, in channel blocks of at most max_vectors() vectors (a single
// column: max_vectors_column()), sized as evenly as possible.
template <class V>
void channel_blocks(const GemmTaps& p, const GemmOut& o, const Epilogue& ep, int64_t m, int64_t Co) {
  const int nv_max = m == 1 ? max_vectors_column<V>() : m <= 2 ? max_vectors_narrow : max_vectors<V>();
  const int64_t vectors = (Co + V::width - 1) / V::width;
  const int64_t blocks = (vectors + nv_max - 1) / nv_max;
  const auto tail_mask = V::mask(int(Co - (vectors - 1) * V::width));
  const bool partial = Co % V::width != 0;
  int64_t v0 = 0;
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int nv = int(vectors / blocks + (blk < vectors % blocks ? 1 : 0));
    const bool tail = partial && blk == blocks - 1;
    const int64_t n0 = v0 * V::width;
    v0 += nv;
    if (m == 1) {
      column_block<V>(p, o, ep, nv, tail, n0, tail_mask);
      continue;
    }
    // One case per (vectors, tail) pair.
    switch (nv * 2 + (tail ? 1 : 0)) {
#define PYVIDEO_CONV_BLOCK(NV)                                                                                         \
  case 2 * NV:                                                                                                         \
    tile_columns_range<V, tile_columns<V, NV>(), NV, false>(p, o, ep, m, n0, tail_mask);                               \
    break;                                                                                                             \
  case 2 * NV + 1:                                                                                                     \
    tile_columns_range<V, tile_columns<V, NV>(), NV, true>(p, o, ep, m, n0, tail_mask);                                \
    break;
      PYVIDEO_CONV_BLOCK(1)
      PYVIDEO_CONV_BLOCK(2)
      PYVIDEO_CONV_BLOCK(3)
      PYVIDEO_CONV_BLOCK(4)
#undef PYVIDEO_CONV_BLOCK
    }
  }
}

// Rows [g, g + m) of the input as act(x * scale[sample]) into `packed` (rows C_in apart). The activation is a template
// argument so the per-vector switch folds away. Each sample's rows are one flat run in full vectors with the sample's
// scales tiled by channel (channel_tiles.h), U vectors side by side (a swish is a chain of ~18 dependent operations);
// the same arithmetic per element as a loop per row. Alone (one-off microbenchmark, swish, AVX-512) 0.64x the time of
// that loop at C_in = 54, 0.92x at 432; X3D-XS's gated steps 0.93x / 0.95x at one / two threads (in-process A/B).
template <class V, Activation A>
void scale_rows(const float* x, float* packed, int64_t g, int64_t m, int64_t Ci, const InputScale& in) {
  constexpr int W = V::width, U = 4;
  const int64_t P = channel_period(Ci, W), len = P + W;
  thread_local std::vector<float> tiled;
  tiled.resize(size_t(len));
  for (int64_t r = 0; r < m;) {
    const int64_t sample = (g + r) / in.positions, sample_end = std::min(m, (sample + 1) * in.positions - g);
    const float* scale = in.scale + sample * Ci;
    tile_channels(Ci, len, [&](int64_t c) { return scale[c]; }, tiled.data());
    const float* src = x + r * Ci;
    float* dst = packed + r * Ci;
    const float* t = tiled.data();
    for_each_tile_vector<U>(
        (sample_end - r) * Ci, W, P,  // the run starts at channel 0: tile offset 0
        [&](int64_t f, const int64_t (&at)[U]) {
          typename V::reg y[U];
#pragma GCC unroll 4
          for (int u = 0; u < U; ++u) y[u] = V::mul(V::load(src + f + u * W), V::load(t + at[u]));
          activate_n<V, U, A>(y);
#pragma GCC unroll 4
          for (int u = 0; u < U; ++u) V::store(dst + f + u * W, y[u]);
        },
        [&](int64_t f, int64_t p, int lanes) {
          if (lanes == W) {
            V::store(dst + f, activate<V>(V::mul(V::load(src + f), V::load(t + p)), A));
          } else {
            const auto tail = V::mask(lanes);
            V::store_m(dst + f, activate<V>(V::mul(V::load_m(src + f, tail), V::load_m(t + p, tail)), A), tail);
          }
        });
    r = sample_end;
  }
}

// A pointwise stride-1 conv whose input is transformed by ep.input_scale (a fused squeeze-excitation). The thread's
// columns (input rows) are done in blocks: a block's rows are transformed once into per-call scratch, which the
// GEMM then reads for every channel block and K part, so each input element is loaded from memory and activated
// once, not once per channel block.
// `output` and ep.residual start at output row out_row0.
template <class V>
void pointwise_scaled(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                      float* output, int64_t item_begin, int64_t item_end, int64_t out_row0) {
  const InputScale& in = *ep.input_scale;
  const int64_t Ci = s.in_channels, Co = s.out_channels, CoS = s.co_stride(), Wo = s.out_w();
  const int64_t blocks = s.column_blocks();
  // Items are consecutive column blocks of consecutive rows, so a range of items is one range of input rows.
  auto first_column = [&](int64_t item) {
    return item / blocks * Wo + std::min(Wo, item % blocks * s.item_width());
  };
  const int64_t begin = first_column(item_begin), end = first_column(item_end);
  // Rows per block: a multiple of 24 (whole 8-, 6- and 4-column register tiles) with about 32 KB of packed input,
  // which stays in L1/L2 while every channel block reads it.
  const int64_t block = std::max<int64_t>(24, 32768 / int64_t(sizeof(float)) / Ci / 24 * 24);
  std::vector<float> packed(size_t(std::min(block, end - begin) * Ci));
  const int64_t zero_offset = 0;
  for (int64_t g = begin; g < end; g += block) {
    const int64_t m = std::min(block, end - g);
    const float* x = input + g * Ci;
    switch (in.activation) {
      case Activation::identity: scale_rows<V, Activation::identity>(x, packed.data(), g, m, Ci, in); break;
      case Activation::relu: scale_rows<V, Activation::relu>(x, packed.data(), g, m, Ci, in); break;
      case Activation::swish: scale_rows<V, Activation::swish>(x, packed.data(), g, m, Ci, in); break;
      case Activation::hswish: scale_rows<V, Activation::hswish>(x, packed.data(), g, m, Ci, in); break;
      case Activation::sigmoid: scale_rows<V, Activation::sigmoid>(x, packed.data(), g, m, Ci, in); break;
    }
    const GemmTaps taps{packed.data(), Ci, &zero_offset, &zero_offset, 1, Ci, weight, CoS};
    const int64_t o = (g - out_row0 * Wo) * CoS;
    all_channel_blocks<V>(taps, GemmOut{output + o, ep.residual ? ep.residual + o : nullptr, CoS}, ep, m, Co);
  }
}

// Row-by-row layers with large weights (Conv3dShape::blocked_reduction; ResNet's res4 / res5 1x3x3 and 3x1x1 convs and
// strided shortcut projections: 1.6-9.4 MB): the row-at-a-time loop nest above reads a row's whole weight tensor for
// each output row, so once the weights outgrow L2 every row streams them from L3 or memory (a 512-channel 1x3x3 conv on
// 7x7 ran at a fifth of torch's oneDNN speed). Such layers take the loop nest below: the thread's outputs are done in
// groups of rows (about blocked_group_bytes of output per block of up to blocked_out_channels channels, which stays in
// L2); within a group and channel block the reduction is cut into parts of one (kt, kh, kw) tap x up to
// blocked_part_channels input channels, and each part's weight panel (part channels x block channels, 256 KB) serves
// every output of the group before the next part is read. A group's outputs are first set to the bias, every part adds
// its partial sums to them (gemm_tile with first = last = false), and a final pass adds the residual and applies the
// activation. The sum of every output is bias + the parts in (kt, kh, kw, channel) order whatever the rows, groups or
// items, so per-layer ops, programs and the row-ring variant agree bit for bit; against the row-at-a-time nest the
// grouping of the float sums differs (float rounding, not bits).
constexpr int64_t blocked_part_channels = 128;
constexpr int64_t blocked_group_bytes = int64_t(512) << 10;
constexpr int64_t blocked_out_channels = 512;

// The residual add and activation of `columns` finished outputs at out (C_out channels each, ldc floats apart).
template <class V>
void finish_columns(float* out, const float* residual, int64_t columns, int64_t ldc, int64_t Co, Activation act) {
  const int64_t full = Co / V::width * V::width;
  const auto tail = V::mask(int(Co - full));
  for (int64_t i = 0; i < columns; ++i, out += ldc, residual = residual ? residual + ldc : nullptr) {
    int64_t c = 0;
    for (; c < full; c += V::width) {
      typename V::reg v = V::load(out + c);
      if (residual) v = V::add(v, V::load(residual + c));
      V::store(out + c, activate<V>(v, act));
    }
    if (c < Co) {
      typename V::reg v = V::load_m(out + c, tail);
      if (residual) v = V::add(v, V::load_m(residual + c, tail));
      V::store_m(out + c, activate<V>(v, act), tail);
    }
  }
}

// Items [item_begin, item_end) of a shape with blocked_reduction(); arguments as conv3d_f32_simd's.
template <class V>
void conv3d_blocked(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep, float* output,
                    int64_t item_begin, int64_t item_end, int64_t out_row0) {
  const int64_t Ci = s.in_channels, Co = s.out_channels, CoS = s.co_stride();
  const int64_t To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t KT = s.kernel_t, KH = s.kernel_h, KW = s.kernel_w, SW = s.stride_w;
  const int64_t parts_per_tap = (Ci + blocked_part_channels - 1) / blocked_part_channels;
  const int64_t co_block = std::min(Co, blocked_out_channels);
  const int64_t group_columns = std::max<int64_t>(1, blocked_group_bytes / int64_t(sizeof(float)) / co_block);
  const int64_t zero_offset = 0;
  struct Span {  // output columns [ow0, ow1) of output row `row`
    int64_t row, ow0, ow1;
  };
  std::vector<Span> group;
  auto out_at = [&](int64_t row, int64_t ow) { return output + ((row - out_row0) * Wo + ow) * CoS; };
  // Channels [n0, n1) of the group's outputs.
  auto run_channels = [&](int64_t n0, int64_t n1) {
    for (const Span& sp : group)
      for (int64_t ow = sp.ow0; ow < sp.ow1; ++ow) {
        float* o = out_at(sp.row, ow);
        if (ep.bias) std::copy(ep.bias + n0, ep.bias + n1, o + n0); else std::fill(o + n0, o + n1, 0.0f);
      }
    for (int64_t kt = 0; kt < KT; ++kt)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw)
          for (int64_t part = 0; part < parts_per_tap; ++part) {
            const int64_t c0 = Ci * part / parts_per_tap, c1 = Ci * (part + 1) / parts_per_tap;
            const float* b = weight + (((kt * KH + kh) * KW + kw) * Ci + c0) * CoS + n0;
            // Output columns whose kw tap lies inside the input width: iw = ow * SW - pad_w + kw in [0, in_w).
            const int64_t ow_first = std::max<int64_t>(0, (s.pad_w - kw + SW - 1) / SW);
            const int64_t last_iw = s.in_w - 1 + s.pad_w - kw;
            const int64_t ow_last = last_iw < 0 ? -1 : last_iw / SW;
            for (const Span& sp : group) {
              const int64_t n = sp.row / (To * Ho), ot = sp.row / Ho % To, oh = sp.row % Ho;
              const int64_t it = ot * s.stride_t - s.pad_t + kt, ih = oh * s.stride_h - s.pad_h + kh;
              if (it < 0 || it >= s.in_t || ih < 0 || ih >= s.in_h) continue;
              const int64_t a = std::max(sp.ow0, ow_first), e = std::min(sp.ow1, ow_last + 1);
              if (a >= e) continue;
              const float* x = input + (((n * s.in_t + it) * s.in_h + ih) * s.in_w + a * SW - s.pad_w + kw) * Ci + c0;
              const GemmTaps p{x, SW * Ci, &zero_offset, &zero_offset, 1, c1 - c0, b, CoS};
              GemmOut o{out_at(sp.row, a) + n0, nullptr, CoS};
              o.first = o.last = false;
              channel_blocks<V>(p, o, ep, e - a, n1 - n0);
            }
          }
  };
  auto run_group = [&]() {
    for (int64_t n0 = 0; n0 < Co; n0 += co_block) run_channels(n0, std::min(Co, n0 + co_block));
    if (ep.residual || ep.activation != Activation::identity)
      for (const Span& sp : group) {
        const int64_t offset = ((sp.row - out_row0) * Wo + sp.ow0) * CoS;
        finish_columns<V>(output + offset, ep.residual ? ep.residual + offset : nullptr, sp.ow1 - sp.ow0, CoS, Co,
                          ep.activation);
      }
    group.clear();
  };
  int64_t columns = 0;
  s.for_each_row_span(item_begin, item_end, [&](int64_t row, int64_t ow0, int64_t ow1) {
    group.push_back(Span{row, ow0, ow1});
    columns += ow1 - ow0;
    if (columns >= group_columns) {
      run_group();
      columns = 0;
    }
  });
  if (!group.empty()) run_group();
}

// Columns per chunk of a long row of interior columns (a flattened pointwise conv: all of a thread's positions). Below
// a chunk the loop nest is K part > channel block > column tiles, so every channel block sweeps all of the chunk's
// columns. Without chunks the whole row's inputs were re-read, and its output lines rewritten, once per channel block
// and K part, from L3 or memory once the row outgrew L2: Slow-R50's 512 -> 128 layer on 8x28x28 took 1.76x as long,
// X3D-S's 24 -> 108 on 13x40x40 1.41x (bench/conv3d_layers.py, Zen 1, one thread). A chunk's inputs and outputs
// (k_len + ldc floats per column) take about chunk_bytes, so they stay in L2 across the passes; a chunk has at least 48
// columns, so that each pass's weights (read again for every chunk) serve enough tiles, and a multiple of 24 (whole
// 4-, 6- and 8-column register tiles, so only the row's last chunk ends in a partial tile, as the whole row did).
// Every output is the same chain of FMAs however the row is cut: chunks change no bits.
inline int64_t column_chunk(int64_t k_len, int64_t ldc) {
  constexpr int64_t chunk_bytes = 128 * 1024, min_columns = 48;
  const int64_t bytes_per_column = (k_len + ldc) * int64_t(sizeof(float));
  return std::max(min_columns, chunk_bytes / bytes_per_column / 24 * 24);
}

// Interior columns from which a pointwise conv with badly strided weight rows reads a padded copy (below the copy costs
// more than a 96th of the multiply-adds).
constexpr int64_t padded_weights_min_columns = 96;

// Items [item_begin, item_end); `output` and ep.residual start at output row out_row0 (0: they are whole tensors).
template <class V>
void conv3d_f32_simd(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                     float* output, int64_t item_begin, int64_t item_end, int64_t out_row0 = 0) {
  if (ep.input_scale) return pointwise_scaled<V>(s, input, weight, ep, output, item_begin, item_end, out_row0);
  if (s.blocked_reduction()) return conv3d_blocked<V>(s, input, weight, ep, output, item_begin, item_end, out_row0);
  const int64_t Ci = s.in_channels, Co = s.out_channels, CoS = s.co_stride();
  const int64_t To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t KT = s.kernel_t, KH = s.kernel_h, KW = s.kernel_w, SW = s.stride_w;
  // [ow_lo, ow_hi): output columns whose whole window is inside the input width.
  const int64_t ow_lo = std::min<int64_t>(Wo, (s.pad_w + SW - 1) / SW);
  const int64_t last_full = s.in_w - KW + s.pad_w;  // largest ow * SW whose window ends inside the input
  const int64_t ow_hi = last_full < 0 ? ow_lo : std::max(ow_lo, std::min<int64_t>(Wo, last_full / SW + 1));
  std::vector<int64_t> a_off(size_t(KT * KH)), b_off(size_t(KT * KH));
  // The padded weight copy (below), made by the first row that reads it and reused by the call's later rows.
  std::unique_ptr<float[]> padded;
  const int64_t padded_ld = CoS + 64 / int64_t(sizeof(float));
  // The items of one output row are done together, so that a row's columns split into as few tiles as possible.
  s.for_each_row_span(item_begin, item_end, [&](int64_t row, int64_t ow_begin, int64_t ow_end) {
    const int64_t n = row / (To * Ho), it0 = (row / Ho) % To * s.stride_t - s.pad_t;
    const int64_t ih0 = row % Ho * s.stride_h - s.pad_h;
    const float* input_n = input + n * s.in_t * s.in_h * s.in_w * Ci;
    // One tap per in-range (kt, kh): its input line and weights at kw = 0.
    int taps = 0;
    for (int64_t kt = std::max<int64_t>(0, -it0); kt < std::min(KT, s.in_t - it0); ++kt)
      for (int64_t kh = std::max<int64_t>(0, -ih0); kh < std::min(KH, s.in_h - ih0); ++kh, ++taps) {
        a_off[size_t(taps)] = ((it0 + kt) * s.in_h + ih0 + kh) * s.in_w * Ci;
        b_off[size_t(taps)] = (kt * KH + kh) * KW * Ci * CoS;
      }
    GemmTaps p{input_n, SW * Ci, a_off.data(), b_off.data(), taps, KW * Ci, weight, CoS};
    auto at_column = [&](int64_t ow) {
      const int64_t o = ((row - out_row0) * Wo + ow) * CoS;
      return GemmOut{output + o, ep.residual ? ep.residual + o : nullptr, CoS};
    };

    // Interior columns: K = kernel_w * C_in per tap.
    const int64_t lo = std::max(ow_begin, ow_lo), hi = std::min(ow_end, ow_hi);
    if (lo < hi) {
      GemmTaps interior = p;
      interior.a += (lo * SW - s.pad_w) * Ci;
      // Weight rows a multiple of 2 KB apart (C_out a multiple of 512: ResNet's 1024- and 2048-channel expansions)
      // map a K part's 128 rows onto a few cache sets, so a channel block's panel cannot stay in L1 (or, at 4 KB and
      // more, in L2) while the columns sweep it: a long row reads them from a copy with rows 64 bytes further apart
      // (Slow-R50's 256 -> 1024 and 512 -> 2048 layers 1.2-1.3x faster at one thread, with the chunks).
      if (taps == 1 && KW == 1 && hi - lo >= padded_weights_min_columns && CoS * int64_t(sizeof(float)) % 2048 == 0) {
        if (!padded) {
          padded.reset(new float[size_t(Ci * padded_ld)]);
          for (int64_t k = 0; k < Ci; ++k)
            std::copy(weight + k * CoS, weight + k * CoS + Co, padded.get() + k * padded_ld);
        }
        interior.b = padded.get();
        interior.ldb = padded_ld;
      }
      const int64_t chunk = column_chunk(int64_t(taps) * KW * Ci, CoS);
      for (int64_t c0 = lo; c0 < hi; c0 += chunk) {
        const int64_t c1 = std::min(hi, c0 + chunk);
        GemmTaps part = interior;
        part.a += (c0 - lo) * SW * Ci;
        all_channel_blocks<V>(part, at_column(c0), ep, c1 - c0, Co);
      }
    }
    // Border columns, one at a time: their in-range kw taps are still contiguous, K = (kw_end - kw_begin) * C_in.
    for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
      if (ow >= ow_lo && ow < ow_hi) continue;
      const int64_t iw0 = ow * SW - s.pad_w;
      const int64_t kw_begin = std::max<int64_t>(0, -iw0), kw_end = std::min(KW, s.in_w - iw0);
      GemmTaps border = p;
      border.a += (iw0 + kw_begin) * Ci;
      border.b += kw_begin * Ci * CoS;
      border.k_len = std::max<int64_t>(0, kw_end - kw_begin) * Ci;
      all_channel_blocks<V>(border, at_column(ow), ep, 1, Co);
    }
  });
}

}  // namespace pyvideo::kernels::detail
