// Reference implementation: the direct definition, one output value at a time. Every SIMD variant is tested against it.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "../taps.h"
#include "../cpu_features.h"
#include "conv3d.h"

namespace pyvideo::kernels {

bool Conv3dShape::is_pointwise() const {
  return kernel_t == 1 && kernel_h == 1 && kernel_w == 1 && stride_t == 1 && stride_h == 1 && stride_w == 1 &&
         pad_t == 0 && pad_h == 0 && pad_w == 0;
}

int64_t blocked_weight_bytes(long long l2_bytes) {
  constexpr int64_t low = int64_t(256) << 10, high = int64_t(1) << 20;
  return l2_bytes <= 0 ? high : std::min(high, std::max(low, int64_t(l2_bytes)));
}

bool Conv3dShape::blocked_reduction() const {
  // Weights above the L2's size, within 256 KB - 1 MB (1 MB where the L2 is unknown), and parts of at least 64 input
  // channels (fewer would re-read the partial sums too often). 1 MB was set on a 2 MB-L2 Intel server, where the
  // row-at-a-time nest lost from 1.6 MB up. On the Zen 1 (512 KB L2, one thread) the blocked nest ran 0.87-0.93x as
  // fast on 332 KB layers, level at 393 KB, and 1.13-1.15x faster on 590-786 KB ones (Slow-R50's res3 1x3x3
  // 128 -> 128, I3D's res3 3x1x1 512 -> 128), which the 1 MB bound had left row by row. Stride-1 pointwise layers are
  // one long row of columns (flatten_pointwise) whose K blocking already reuses each weight panel across all of them;
  // strided ones (ResNet's shortcut projections, 1024 -> 2048 is 8 MB) are row by row like the multi-tap layers.
  constexpr int64_t min_channels = 64;
  static const int64_t weight_bytes = blocked_weight_bytes(l2_cache_bytes());
  const int64_t taps = kernel_t * kernel_h * kernel_w;
  return !is_pointwise() && in_channels >= min_channels &&
         taps * in_channels * co_stride() * int64_t(sizeof(float)) > weight_bytes;
}

Conv3dShape Conv3dShape::flatten_pointwise() const {
  if (!is_pointwise()) return *this;
  Conv3dShape flat = *this;
  flat.in_w = batch * in_t * in_h * in_w;
  flat.batch = flat.in_t = flat.in_h = 1;
  return flat;
}

void Conv3dShape::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument("conv3d: " + what); };
  if (batch < 0 || in_channels <= 0 || out_channels <= 0 || in_t <= 0 || in_h <= 0 || in_w <= 0)
    fail("channel counts and input sizes must be positive");
  if (kernel_t <= 0 || kernel_h <= 0 || kernel_w <= 0) fail("kernel sizes must be positive");
  if (stride_t <= 0 || stride_h <= 0 || stride_w <= 0) fail("strides must be positive");
  if (pad_t < 0 || pad_h < 0 || pad_w < 0) fail("padding must be non-negative");
  if (out_stride != 0 && out_stride < out_channels) fail("out_stride must be 0 or at least out_channels");
  if (item_w < 0) fail("item_w must be 0 or positive");
  if (in_t + 2 * pad_t < kernel_t || in_h + 2 * pad_h < kernel_h || in_w + 2 * pad_w < kernel_w)
    fail("kernel is larger than the padded input");
}

namespace {

// Items [item_begin, item_end); `output` and ep.residual start at output row out_row0.
void conv3d_items(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep, float* output,
                  int64_t item_begin, int64_t item_end, int64_t out_row0) {
  const int64_t Ci = s.in_channels, Co = s.out_channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t CoS = s.co_stride();
  const int64_t blocks = s.column_blocks();
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t row = item / blocks, ow_begin = (item % blocks) * s.item_width();
    const int64_t ow_end = std::min(Wo, ow_begin + s.item_width());
    const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
    for (int64_t ow = ow_begin; ow < ow_end; ++ow)
      for (int64_t co = 0; co < Co; ++co) {
        float acc = ep.bias ? ep.bias[co] : 0.0f;
        for_each_input_tap(s, ot, oh, ow, [&](int64_t it, int64_t ih, int64_t iw, int64_t tap) {
          const int64_t position = ((n * s.in_t + it) * s.in_h + ih) * s.in_w + iw;
          const float* x = input + position * Ci;
          const float* w = weight + tap * Ci * CoS + co;
          if (const InputScale* in = ep.input_scale) {
            const float* scale = in->scale + position / in->positions * Ci;
            for (int64_t ci = 0; ci < Ci; ++ci) acc += activate_scalar(x[ci] * scale[ci], in->activation) * w[ci * CoS];
          } else {
            for (int64_t ci = 0; ci < Ci; ++ci) acc += x[ci] * w[ci * CoS];
          }
        });
        const int64_t o = ((row - out_row0) * Wo + ow) * CoS + co;
        if (ep.residual) acc += ep.residual[o];
        output[o] = activate_scalar(acc, ep.activation);
      }
  }
}

}  // namespace

void conv3d_f32_scalar(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                       const float* /*zeros*/, float* output, int64_t item_begin, int64_t item_end) {
  conv3d_items(s, input, weight, ep, output, item_begin, item_end, 0);
}

void conv3d_f32_rows_scalar(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                            float* output, int64_t row_begin, int64_t row_end) {
  conv3d_items(s, input, weight, ep, output, row_begin * s.column_blocks(), row_end * s.column_blocks(), row_begin);
}

}  // namespace pyvideo::kernels
