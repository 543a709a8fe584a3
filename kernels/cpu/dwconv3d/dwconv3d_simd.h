// The depthwise conv3d loop nest shared by every SIMD variant; V is a vector wrapper from simd.h.
//
// Channels are the vector dimension (channels-last layout), so every tap is one fused multiply-add per channel
// block. Output columns whose kernel window lies entirely inside the input take a branch-free path that computes
// four neighbouring outputs at once (each weight vector is loaded once and used four times); the few border columns
// take a checked path. Rows outside the input in T and H are excluded by clipping the kt/kh ranges once per row.
#pragma once
#include <algorithm>
#include <cstdint>

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
  const float* input_n;  // input of this row's batch element
  int64_t ot, oh;
  int64_t kt_begin, kt_end, kh_begin, kh_end;  // taps that land inside the input
};

template <class V, bool Full>
void dwconv3d_channel_block(const DwConv3dShape& s, const DwRow& r, const float* weight, const Epilogue& ep,
                            float* out_row, const float* residual_row, int64_t c0, DwLanes<V, Full> lanes) {
  using reg = typename V::reg;
  const int64_t C = s.channels, Wo = s.out_w(), KW = s.kernel_w, SW = s.stride_w;
  const reg bias_v = ep.bias ? lanes.load(ep.bias + c0) : V::zero();
  // Residual add and activation on the way out; `offset` indexes the output row (and the residual row alike).
  auto finish = [&](int64_t offset, reg acc) {
    if (residual_row) acc = V::add(acc, lanes.load(residual_row + offset));
    lanes.store(out_row + offset, detail::activate<V>(acc, ep.activation));
  };
  // [ow_lo, ow_hi): output columns whose whole window is inside the input width.
  const int64_t ow_lo = std::min<int64_t>(Wo, (s.pad_w + SW - 1) / SW);
  const int64_t last_full = s.in_w - KW + s.pad_w;  // largest ow*SW with iw0 + KW <= in_w
  const int64_t ow_hi = last_full < 0 ? ow_lo : std::max(ow_lo, std::min<int64_t>(Wo, last_full / SW + 1));

  auto input_row = [&](int64_t kt, int64_t kh) {
    const int64_t it = r.ot * s.stride_t - s.pad_t + kt, ih = r.oh * s.stride_h - s.pad_h + kh;
    return r.input_n + (it * s.in_h + ih) * s.in_w * C + c0;
  };
  auto weight_row = [&](int64_t kt, int64_t kh) { return weight + (kt * s.kernel_h + kh) * KW * C + c0; };

  auto one_checked = [&](int64_t ow) {
    reg acc = bias_v;
    const int64_t iw0 = ow * SW - s.pad_w;
    const int64_t kw_begin = std::max<int64_t>(0, -iw0), kw_end = std::min<int64_t>(KW, s.in_w - iw0);
    for (int64_t kt = r.kt_begin; kt < r.kt_end; ++kt)
      for (int64_t kh = r.kh_begin; kh < r.kh_end; ++kh) {
        const float* x = input_row(kt, kh);
        const float* w = weight_row(kt, kh);
        for (int64_t kw = kw_begin; kw < kw_end; ++kw)
          acc = V::fmadd(lanes.load(x + (iw0 + kw) * C), lanes.load(w + kw * C), acc);
      }
    finish(ow * C + c0, acc);
  };

  for (int64_t ow = 0; ow < ow_lo; ++ow) one_checked(ow);
  int64_t ow = ow_lo;
  const int64_t step = SW * C;
  for (; ow + 4 <= ow_hi; ow += 4) {
    reg a0 = bias_v, a1 = bias_v, a2 = bias_v, a3 = bias_v;
    const int64_t iw0 = ow * SW - s.pad_w;
    for (int64_t kt = r.kt_begin; kt < r.kt_end; ++kt)
      for (int64_t kh = r.kh_begin; kh < r.kh_end; ++kh) {
        const float* x = input_row(kt, kh) + iw0 * C;
        const float* w = weight_row(kt, kh);
        for (int64_t kw = 0; kw < KW; ++kw) {
          const reg wv = lanes.load(w + kw * C);
          const float* xk = x + kw * C;
          a0 = V::fmadd(lanes.load(xk), wv, a0);
          a1 = V::fmadd(lanes.load(xk + step), wv, a1);
          a2 = V::fmadd(lanes.load(xk + 2 * step), wv, a2);
          a3 = V::fmadd(lanes.load(xk + 3 * step), wv, a3);
        }
      }
    const int64_t o = ow * C + c0;
    finish(o, a0);
    finish(o + C, a1);
    finish(o + 2 * C, a2);
    finish(o + 3 * C, a3);
  }
  for (; ow < Wo; ++ow) one_checked(ow);
}

template <class V>
void dwconv3d_f32_simd(const DwConv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                       float* output, int64_t row_begin, int64_t row_end) {
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  for (int64_t row = row_begin; row < row_end; ++row) {
    DwRow r;
    const int64_t n = row / (To * Ho);
    r.ot = (row / Ho) % To;
    r.oh = row % Ho;
    r.input_n = input + n * s.in_t * s.in_h * s.in_w * C;
    const int64_t it0 = r.ot * s.stride_t - s.pad_t, ih0 = r.oh * s.stride_h - s.pad_h;
    r.kt_begin = std::max<int64_t>(0, -it0);
    r.kt_end = std::min<int64_t>(s.kernel_t, s.in_t - it0);
    r.kh_begin = std::max<int64_t>(0, -ih0);
    r.kh_end = std::min<int64_t>(s.kernel_h, s.in_h - ih0);
    float* out_row = output + row * Wo * C;
    const float* residual_row = ep.residual ? ep.residual + row * Wo * C : nullptr;
    int64_t c0 = 0;
    for (; c0 + V::width <= C; c0 += V::width)
      dwconv3d_channel_block<V, true>(s, r, weight, ep, out_row, residual_row, c0, DwLanes<V, true>{V::width});
    if (c0 < C)
      dwconv3d_channel_block<V, false>(s, r, weight, ep, out_row, residual_row, c0, DwLanes<V, false>{int(C - c0)});
  }
}

}  // namespace pyvideo::kernels::detail
