// Fixed-kernel 3-D pooling on channels-last buffers: average pooling (a classifier head's AvgPool3d, as vanilla X3D's
// and ResNet's: no padding, so every window is whole and the divisor is always the window size) and max pooling (the
// MaxPool3d after a ResNet stem, padded).
//
//   x    [N, T, H, W, C]           out  [N, To, Ho, Wo, C]   To = (T + 2 pt - kt) / st + 1, likewise H and W
//
// fp32: each window summed in float in (kt, kh, kw) order, divided by the window size (as torch's AvgPool3d).
// int8: the exact integer sum of each window's (q - zp), times float32(scale) / float32(window size) in float32,
// then either kept as float32 or requantized, round(mean / out_scale) + out_zp (half to even) clamped to int8 (as
// QuantizedAvgPool3d and the global int8 pool).
// max (fp32): as torch's max_pool3d (ceil_mode false, dilation 1), bit for bit: padded positions never win (implicit
// -inf), and each window is scanned in (kt, kh, kw) order keeping an element only when it is greater than the maximum
// so far or NaN, so a window holding a NaN gives NaN and of equal values (0.0 and -0.0) the first one wins.
#pragma once
#include <cstdint>

#include "squeeze_excitation.h"  // VolumeShape

namespace pyvideo {

struct PoolWindow {
  // padding: max pooling only (the average pools reject it), at most half the kernel as torch requires, so every
  // window holds at least one real element.
  int64_t kernel[3] = {1, 1, 1}, stride[3] = {1, 1, 1}, padding[3] = {0, 0, 0};
  // std::invalid_argument for non-positive kernel sizes or strides, or a padding out of [0, kernel / 2].
  void check() const;
  // Output extents for `in`; std::invalid_argument as check(), for non-positive sizes, or for a window larger than
  // the padded input.
  VolumeShape output(const VolumeShape& in) const;
};

void avg_pool3d_f32(const VolumeShape& shape, const PoolWindow& window, const float* x, float* out, int num_threads);

void max_pool3d_f32(const VolumeShape& shape, const PoolWindow& window, const float* x, float* out, int num_threads);

// max (int8): the same windows on int8 codes; padded positions never win. For codes of one per-tensor scale and zero
// point the result is the quantized max pool exactly (quantization is monotone, so the max of the codes is the code
// of the max), in the same qparams.
void max_pool3d_i8(const VolumeShape& shape, const PoolWindow& window, const int8_t* x, int8_t* out, int num_threads);

// has_output_q false: `out` is float32, else int8 quantized with (output_scale, output_zero_point).
void quantized_avg_pool3d(const VolumeShape& shape, const PoolWindow& window, const int8_t* x, float input_scale,
                          int32_t input_zero_point, bool has_output_q, float output_scale, int32_t output_zero_point,
                          void* out, int num_threads);

}  // namespace pyvideo
