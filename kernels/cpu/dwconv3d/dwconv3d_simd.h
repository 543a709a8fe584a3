// The depthwise conv3d loop nest shared by every SIMD variant; V is a vector wrapper from simd.h.
//
// Channels are the vector dimension (channels-last layout), so every tap is one fused multiply-add per channel
// block. Each output row is walked in blocks of BLOCK columns, and all channel blocks of a column block are computed
// before moving on: the few KB of input they read stay in L1 and are streamed sequentially. Interior columns (whole
// window inside the input) take a branch-free path with the kernel width and stride as compile-time constants for
// the common X3D cases, so loads shared by neighbouring outputs are issued once and accumulators stay in registers;
// border columns take a checked path. Rows outside the input in T and H are excluded by clipping kt/kh once per row.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../epilogue.h"
#include "dwconv3d.h"

namespace pyvideo::kernels::detail {

template <class V, bool Full>
struct DwLanes {
  int n;  // active lanes when !Full
  typename V::reg load(const float* p) const { return Full ? V::load(p) : V::load_n(p, n); }
  void store(float* p, typename V::reg v) const {
    if (Full) V::store(p, v); else V::store_n(p, v, n);
  }
};

struct DwRow {
  const DwConv3dShape* s;
  const float* input_n;  // input of this row's batch element
  const float* weight;
  const Epilogue* ep;
  float* out;            // this row's output
  const float* residual; // this row's residual (laid out like out), or nullptr
  int64_t ot, oh;
  int64_t kt_begin, kt_end, kh_begin, kh_end;  // taps that land inside the input

  const float* input_row(int64_t kt, int64_t kh) const {
    const int64_t it = ot * s->stride_t - s->pad_t + kt, ih = oh * s->stride_h - s->pad_h + kh;
    return input_n + (it * s->in_h + ih) * s->in_w * s->channels;
  }
  const float* weight_row(int64_t kt, int64_t kh) const {
    return weight + (kt * s->kernel_h + kh) * s->kernel_w * s->channels;
  }
};

// The fused epilogue on the way out: residual add, activation, store. `offset` indexes this row's output.
template <class V, bool Full>
inline void finish(const DwRow& r, int64_t offset, typename V::reg acc, DwLanes<V, Full> lanes) {
  if (r.residual) acc = V::add(acc, lanes.load(r.residual + offset));
  lanes.store(r.out + offset, activate<V>(acc, r.ep->activation));
}

// BLOCK neighbouring interior columns starting at ow, channels [c0, c0 + lanes). KW_/SW_ == 0: runtime values.
template <class V, int BLOCK, int KW_, int SW_, bool Full>
inline void interior_block(const DwRow& r, int64_t ow, int64_t c0, DwLanes<V, Full> lanes) {
  using reg = typename V::reg;
  const DwConv3dShape& s = *r.s;
  const int64_t C = s.channels;
  const int64_t KW = KW_ ? KW_ : s.kernel_w, SW = SW_ ? SW_ : s.stride_w;
  const reg bias_v = r.ep->bias ? lanes.load(r.ep->bias + c0) : V::zero();
  reg acc[BLOCK];
#pragma GCC unroll 8
  for (int j = 0; j < BLOCK; ++j) acc[j] = bias_v;
  const int64_t iw0 = ow * SW - s.pad_w;
  for (int64_t kt = r.kt_begin; kt < r.kt_end; ++kt)
    for (int64_t kh = r.kh_begin; kh < r.kh_end; ++kh) {
      const float* x = r.input_row(kt, kh) + iw0 * C + c0;
      const float* w = r.weight_row(kt, kh) + c0;
#pragma GCC unroll 8
      for (int64_t kw = 0; kw < KW; ++kw) {
        const reg wv = lanes.load(w + kw * C);
#pragma GCC unroll 8
        for (int j = 0; j < BLOCK; ++j) acc[j] = V::fmadd(lanes.load(x + (j * SW + kw) * C), wv, acc[j]);
      }
    }
  const int64_t o = ow * C + c0;
#pragma GCC unroll 8
  for (int j = 0; j < BLOCK; ++j) finish<V>(r, o + j * C, acc[j], lanes);
}

// One column whose window may cross the left or right edge of the input.
template <class V, bool Full>
inline void border_column(const DwRow& r, int64_t ow, int64_t c0, DwLanes<V, Full> lanes) {
  using reg = typename V::reg;
  const DwConv3dShape& s = *r.s;
  const int64_t C = s.channels;
  reg acc = r.ep->bias ? lanes.load(r.ep->bias + c0) : V::zero();
  const int64_t iw0 = ow * s.stride_w - s.pad_w;
  const int64_t kw_begin = std::max<int64_t>(0, -iw0), kw_end = std::min<int64_t>(s.kernel_w, s.in_w - iw0);
  for (int64_t kt = r.kt_begin; kt < r.kt_end; ++kt)
    for (int64_t kh = r.kh_begin; kh < r.kh_end; ++kh) {
      const float* x = r.input_row(kt, kh) + c0;
      const float* w = r.weight_row(kt, kh) + c0;
      for (int64_t kw = kw_begin; kw < kw_end; ++kw)
        acc = V::fmadd(lanes.load(x + (iw0 + kw) * C), lanes.load(w + kw * C), acc);
    }
  finish<V>(r, ow * C + c0, acc, lanes);
}

// Applies `body(c0, lanes)` to every channel block: full vectors, then a masked tail.
template <class V, class Body>
inline void for_channel_blocks(int64_t C, Body&& body) {
  int64_t c0 = 0;
  for (; c0 + V::width <= C; c0 += V::width) body(c0, DwLanes<V, true>{V::width});
  if (c0 < C) body(c0, DwLanes<V, false>{int(C - c0)});
}

template <class V, int KW_, int SW_>
void dwconv3d_row(const DwRow& r, int64_t ow_lo, int64_t ow_hi) {
  constexpr int BLOCK = V::registers >= 32 ? 8 : 4;
  const int64_t C = r.s->channels, Wo = r.s->out_w();
  auto border = [&](int64_t ow) { for_channel_blocks<V>(C, [&](int64_t c0, auto lanes) { border_column<V>(r, ow, c0, lanes); }); };
  for (int64_t ow = 0; ow < ow_lo; ++ow) border(ow);
  int64_t ow = ow_lo;
  for (; ow + BLOCK <= ow_hi; ow += BLOCK)
    for_channel_blocks<V>(C, [&](int64_t c0, auto lanes) { interior_block<V, BLOCK, KW_, SW_>(r, ow, c0, lanes); });
  for (; ow < ow_hi; ++ow)
    for_channel_blocks<V>(C, [&](int64_t c0, auto lanes) { interior_block<V, 1, KW_, SW_>(r, ow, c0, lanes); });
  for (; ow < Wo; ++ow) border(ow);
}

template <class V>
void dwconv3d_f32_simd(const DwConv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                       float* output, int64_t row_begin, int64_t row_end) {
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t KW = s.kernel_w, SW = s.stride_w;
  // [ow_lo, ow_hi): output columns whose whole window is inside the input width.
  const int64_t ow_lo = std::min<int64_t>(Wo, (s.pad_w + SW - 1) / SW);
  const int64_t last_full = s.in_w - KW + s.pad_w;  // largest ow*SW with iw0 + KW <= in_w
  const int64_t ow_hi = last_full < 0 ? ow_lo : std::max(ow_lo, std::min<int64_t>(Wo, last_full / SW + 1));
  using std::integral_constant;
  for (int64_t row = row_begin; row < row_end; ++row) {
    DwRow r;
    r.s = &s;
    r.weight = weight;
    r.ep = &ep;
    const int64_t n = row / (To * Ho);
    r.ot = (row / Ho) % To;
    r.oh = row % Ho;
    r.input_n = input + n * s.in_t * s.in_h * s.in_w * C;
    r.out = output + row * Wo * C;
    r.residual = ep.residual ? ep.residual + row * Wo * C : nullptr;
    const int64_t it0 = r.ot * s.stride_t - s.pad_t, ih0 = r.oh * s.stride_h - s.pad_h;
    r.kt_begin = std::max<int64_t>(0, -it0);
    r.kt_end = std::min<int64_t>(s.kernel_t, s.in_t - it0);
    r.kh_begin = std::max<int64_t>(0, -ih0);
    r.kh_end = std::min<int64_t>(s.kernel_h, s.in_h - ih0);
    if (KW == 3 && SW == 1)
      dwconv3d_row<V, 3, 1>(r, ow_lo, ow_hi);
    else if (KW == 3 && SW == 2)
      dwconv3d_row<V, 3, 2>(r, ow_lo, ow_hi);
    else if (KW == 1 && SW == 1)
      dwconv3d_row<V, 1, 1>(r, ow_lo, ow_hi);
    else
      dwconv3d_row<V, 0, 0>(r, ow_lo, ow_hi);
  }
}

}  // namespace pyvideo::kernels::detail
