// The kernel taps of one output position that land inside the input, for the scalar reference convolutions (dense
// and depthwise, fp32 and int8): zero padding contributes nothing, so those taps are skipped.
#pragma once
#include <cstdint>

namespace pyvideo::kernels {

// f(it, ih, iw, tap) for output position (ot, oh, ow) of shape s (a Conv3dShape or DwConv3dShape), in (kt, kh, kw)
// order -- the order the references accumulate in -- with tap = (kt * kernel_h + kh) * kernel_w + kw.
template <class Shape, class F>
inline void for_each_input_tap(const Shape& s, int64_t ot, int64_t oh, int64_t ow, F f) {
  for (int64_t kt = 0; kt < s.kernel_t; ++kt) {
    const int64_t it = ot * s.stride_t - s.pad_t + kt;
    if (it < 0 || it >= s.in_t) continue;
    for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
      const int64_t ih = oh * s.stride_h - s.pad_h + kh;
      if (ih < 0 || ih >= s.in_h) continue;
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
        const int64_t iw = ow * s.stride_w - s.pad_w + kw;
        if (iw < 0 || iw >= s.in_w) continue;
        f(it, ih, iw, (kt * s.kernel_h + kh) * s.kernel_w + kw);
      }
    }
  }
}

}  // namespace pyvideo::kernels
