// The int8 depthwise conv3d shared by every SIMD variant; V is a float vector wrapper from simd.h.
//
// Products (x - zp) * w are exact in float32 and so are their sums while |sum| < 2^24: a tap count up to 500 keeps
// 255 * 127 * taps below that, so accumulating in float gives the int32 accumulator exactly (validate() bounds the
// kernel volume), at fp32 FMA speed without widening multiplies. The bias is added as float (exact below 2^24).
#pragma once
#include <algorithm>
#include <cstdint>

#include "requant_simd.h"

namespace pyvideo::kernels::detail {

template <class V>
void qdwconv3d_simd(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                    int8_t* output, int64_t begin, int64_t end) {
  using reg = typename V::reg;
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const reg zp = V::set1(float(q.input_zero_point));
  const Requantizer<V> requantizer(q);
  const bool swish = q.activation == Activation::swish;
  for (int64_t p = begin; p < end; ++p) {
    const int64_t row = DwConv3dShape::row_at(p, To, Ho);  // positions in line order (dwconv3d.h)
    const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
    const int8_t* input_n = input + n * s.in_t * s.in_h * s.in_w * C;
    const int64_t it0 = ot * s.stride_t - s.pad_t, ih0 = oh * s.stride_h - s.pad_h;
    const int64_t kt_begin = std::max<int64_t>(0, -it0), kt_end = std::min<int64_t>(s.kernel_t, s.in_t - it0);
    const int64_t kh_begin = std::max<int64_t>(0, -ih0), kh_end = std::min<int64_t>(s.kernel_h, s.in_h - ih0);
    // [ow_lo, ow_hi): columns whose window lies inside the input width; they go four at a time, sharing each
    // converted weight vector. The others take the clipped single-column path.
    const int64_t ow_lo = std::min<int64_t>(Wo, (s.pad_w + s.stride_w - 1) / s.stride_w);
    const int64_t last_full = s.in_w - s.kernel_w + s.pad_w;
    const int64_t ow_hi = last_full < 0 ? ow_lo : std::max(ow_lo, std::min<int64_t>(Wo, last_full / s.stride_w + 1));
    auto line = [&](int64_t kt, int64_t kh) { return input_n + ((it0 + kt) * s.in_h + ih0 + kh) * s.in_w * C; };
    auto single = [&](int64_t ow) {
      const int64_t iw0 = ow * s.stride_w - s.pad_w;
      const int64_t kw_begin = std::max<int64_t>(0, -iw0), kw_end = std::min<int64_t>(s.kernel_w, s.in_w - iw0);
      for (int64_t c0 = 0; c0 < C; c0 += V::width) {
        const int lanes = int(std::min<int64_t>(V::width, C - c0));
        reg acc = load_lanes<V>(q.bias_float + c0, lanes);
        for (int64_t kt = kt_begin; kt < kt_end; ++kt)
          for (int64_t kh = kh_begin; kh < kh_end; ++kh) {
            const int8_t* x = line(kt, kh) + c0;
            const int8_t* w = weight + (kt * s.kernel_h + kh) * s.kernel_w * C + c0;
            for (int64_t kw = kw_begin; kw < kw_end; ++kw)
              acc = V::fmadd(V::sub(V::load_i8(x + (iw0 + kw) * C, lanes), zp), V::load_i8(w + kw * C, lanes), acc);
          }
        requantizer.store(acc, c0, (row * Wo + ow) * C + c0, lanes, output);
      }
    };
    int64_t ow = 0;
    for (; ow < ow_lo; ++ow) single(ow);
    const int64_t step = s.stride_w * C;
    for (; ow + 4 <= ow_hi; ow += 4) {
      const int64_t iw0 = ow * s.stride_w - s.pad_w;
      for (int64_t c0 = 0; c0 < C; c0 += V::width) {
        const int lanes = int(std::min<int64_t>(V::width, C - c0));
        reg a0 = load_lanes<V>(q.bias_float + c0, lanes), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t kt = kt_begin; kt < kt_end; ++kt)
          for (int64_t kh = kh_begin; kh < kh_end; ++kh) {
            const int8_t* x = line(kt, kh) + iw0 * C + c0;
            const int8_t* w = weight + (kt * s.kernel_h + kh) * s.kernel_w * C + c0;
            for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
              const reg wv = V::load_i8(w + kw * C, lanes);
              const int8_t* xk = x + kw * C;
              a0 = V::fmadd(V::sub(V::load_i8(xk, lanes), zp), wv, a0);
              a1 = V::fmadd(V::sub(V::load_i8(xk + step, lanes), zp), wv, a1);
              a2 = V::fmadd(V::sub(V::load_i8(xk + 2 * step, lanes), zp), wv, a2);
              a3 = V::fmadd(V::sub(V::load_i8(xk + 3 * step, lanes), zp), wv, a3);
            }
          }
        const int64_t o = (row * Wo + ow) * C + c0;
        auto store4 = [&](auto store) { store(a0, o), store(a1, o + C), store(a2, o + 2 * C), store(a3, o + 3 * C); };
        if (swish)  // inlined with its constants in registers (qdwconv3d_dot.h does the same)
          store4([&](reg v, int64_t at) { requantizer.store_as(v, c0, at, lanes, output, Activation::swish); });
        else
          store4([&](reg v, int64_t at) { requantizer.store(v, c0, at, lanes, output); });
      }
    }
    for (; ow < Wo; ++ow) single(ow);
  }
}

}  // namespace pyvideo::kernels::detail
