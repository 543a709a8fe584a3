// The dense conv3d loop nest shared by every SIMD variant; V is a vector wrapper from simd.h.
//
// Each output tile is MR output columns x NV vectors of output channels, held in MR*NV accumulator registers
// (register blocking: every weight vector loaded is used MR times, every broadcast input value NV times). The tile
// loops over the kernel taps and, per tap, over the input channels: a rank-1 update per input channel, i.e. the
// pointwise case is exactly a GEMM microkernel. Per tap, each tile row gets its own input pointer; a row whose tap
// falls into the zero padding reads the caller's zero vector, so borders need no separate code path. A short last
// tile repeats its last column (computed, never stored).
#pragma once
#include <algorithm>
#include <cstdint>

#include "../epilogue.h"
#include "conv3d.h"

namespace pyvideo::kernels::detail {

struct ConvRow {
  const float* input_n;  // input of this row's batch element
  int64_t it0, ih0;      // first input frame / line of the window (may be negative)
  int64_t kt_begin, kt_end, kh_begin, kh_end;  // taps that land inside the input
};

template <class V, int MR, int NV, bool Full>
void conv3d_tile(const Conv3dShape& s, const ConvRow& r, const float* weight, const Epilogue& ep, const float* zeros,
                 float* out, const float* residual, int64_t ow0, int m, int64_t n0) {
  using reg = typename V::reg;
  using mask_t = decltype(V::mask(0));
  const int64_t Ci = s.in_channels, Co = s.out_channels;
  // Lanes of each channel vector inside C_out, as precomputed masks (a tail tile has partial or empty vectors).
  int lanes[NV];
  mask_t masks[NV];
  for (int j = 0; j < NV; ++j) {
    lanes[j] = int(std::min<int64_t>(V::width, std::max<int64_t>(0, Co - n0 - j * V::width)));
    masks[j] = V::mask(lanes[j]);
  }
  auto load_c = [&masks](const float* p, int j) { return Full ? V::load(p) : V::load_m(p, masks[j]); };

  reg acc[MR][NV];
  for (int j = 0; j < NV; ++j) {
    const reg b = ep.bias ? load_c(ep.bias + n0 + j * V::width, j) : V::zero();
    for (int i = 0; i < MR; ++i) acc[i][j] = b;
  }
  for (int64_t kt = r.kt_begin; kt < r.kt_end; ++kt)
    for (int64_t kh = r.kh_begin; kh < r.kh_end; ++kh) {
      const float* x_line = r.input_n + ((r.it0 + kt) * s.in_h + r.ih0 + kh) * s.in_w * Ci;
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
        const float* a[MR];
        for (int i = 0; i < MR; ++i) {
          const int64_t iw = (ow0 + std::min(i, m - 1)) * s.stride_w - s.pad_w + kw;
          a[i] = (iw >= 0 && iw < s.in_w) ? x_line + iw * Ci : zeros;
        }
        const float* w = weight + ((kt * s.kernel_h + kh) * s.kernel_w + kw) * Ci * Co + n0;
        for (int64_t k = 0; k < Ci; ++k, w += Co) {
          reg b[NV];
          for (int j = 0; j < NV; ++j) b[j] = Full ? V::load(w + j * V::width) : V::load_m(w + j * V::width, masks[j]);
          for (int i = 0; i < MR; ++i) {
            const reg x = V::set1(a[i][k]);
            for (int j = 0; j < NV; ++j) acc[i][j] = V::fmadd(x, b[j], acc[i][j]);
          }
        }
      }
    }
  // A tail tile first parks its accumulators in a stack tile with constant indices: GCC spills a register array
  // that is indexed by runtime lane counts on every iteration of the K loop above.
  alignas(64) float parked[Full ? 1 : MR][Full ? 1 : NV * V::width];
  if constexpr (!Full) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) V::store(&parked[i][j * V::width], acc[i][j]);
  }
  for (int i = 0; i < m; ++i) {
    const int64_t o = (ow0 + i) * Co + n0;
    for (int j = 0; j < NV; ++j) {
      if (!Full && lanes[j] == 0) break;
      reg v;
      if constexpr (Full) v = acc[i][j]; else v = V::load(&parked[i][j * V::width]);
      if (residual) v = V::add(v, load_c(residual + o + j * V::width, j));
      v = activate<V>(v, ep.activation);
      if (Full) V::store(out + o + j * V::width, v); else V::store_m(out + o + j * V::width, v, masks[j]);
    }
  }
}

template <class V, int MR, int NV>
void conv3d_f32_simd(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                     const float* zeros, float* output, int64_t item_begin, int64_t item_end) {
  const int64_t Co = s.out_channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t blocks = s.column_blocks();
  constexpr int64_t block_n = int64_t(NV) * V::width;
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t row = item / blocks, ow_begin = (item % blocks) * Conv3dShape::tile_w;
    const int64_t ow_end = std::min(Wo, ow_begin + Conv3dShape::tile_w);
    const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
    ConvRow r;
    r.input_n = input + n * s.in_t * s.in_h * s.in_w * s.in_channels;
    r.it0 = ot * s.stride_t - s.pad_t;
    r.ih0 = oh * s.stride_h - s.pad_h;
    r.kt_begin = std::max<int64_t>(0, -r.it0);
    r.kt_end = std::min<int64_t>(s.kernel_t, s.in_t - r.it0);
    r.kh_begin = std::max<int64_t>(0, -r.ih0);
    r.kh_end = std::min<int64_t>(s.kernel_h, s.in_h - r.ih0);
    float* out = output + row * Wo * Co;
    const float* residual = ep.residual ? ep.residual + row * Wo * Co : nullptr;
    for (int64_t n0 = 0; n0 < Co; n0 += block_n)
      for (int64_t ow0 = ow_begin; ow0 < ow_end; ow0 += MR) {
        const int m = int(std::min<int64_t>(MR, ow_end - ow0));
        if (n0 + block_n <= Co)
          conv3d_tile<V, MR, NV, true>(s, r, weight, ep, zeros, out, residual, ow0, m, n0);
        else
          conv3d_tile<V, MR, NV, false>(s, r, weight, ep, zeros, out, residual, ow0, m, n0);
      }
  }
}

}  // namespace pyvideo::kernels::detail
