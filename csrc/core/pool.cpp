#include "pool.h"

#include <algorithm>
#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../../kernels/cpu/parallel.h"
#include "channel_requant.h"

namespace pyvideo {

void PoolWindow::check() const {
  for (int d = 0; d < 3; ++d) {
    if (kernel[d] <= 0 || stride[d] <= 0)
      throw std::invalid_argument("pool3d: kernel sizes and strides must be positive");
    // torch's bound: a padding of at most half the kernel leaves a real element in every window (first and last)
    if (padding[d] < 0 || padding[d] > kernel[d] / 2)
      throw std::invalid_argument("pool3d: a padding must be non-negative and at most half its kernel (padding " +
                                  std::to_string(padding[d]) + ", kernel " + std::to_string(kernel[d]) + " in dim " +
                                  std::to_string(d + 2) + ")");
  }
}

VolumeShape PoolWindow::output(const VolumeShape& in) const {
  if (in.batch < 0 || in.t <= 0 || in.h <= 0 || in.w <= 0 || in.channels <= 0)
    throw std::invalid_argument("pool3d: every dimension of the input but the batch must be positive");
  check();
  const int64_t sizes[3] = {in.t, in.h, in.w};
  int64_t extents[3];
  for (int d = 0; d < 3; ++d) {
    if (kernel[d] - 2 * padding[d] > sizes[d])  // no overflow: 2 * padding <= kernel
      throw std::invalid_argument("pool3d: kernel " + std::to_string(kernel[d]) + " is larger than the input (" +
                                  std::to_string(sizes[d]) + (padding[d] ? " + 2*" + std::to_string(padding[d]) : "") +
                                  ") in dim " + std::to_string(d + 2));
    extents[d] = (sizes[d] + 2 * padding[d] - kernel[d]) / stride[d] + 1;
  }
  return {in.batch, extents[0], extents[1], extents[2], in.channels};
}

namespace {

// The window of output row `row` = (n, ot, oh) clipped to the input (max pools: padded positions never win): sample
// n, frames [t0, t1), rows [h0, h1); columns(ow) gives output column ow's [w0, w1). A value the caller keeps as a
// local, so its fields stay in registers next to byte stores (which may alias anything a reference reaches).
struct ClippedRow {
  int64_t n, t0, t1, h0, h1, kernel_w, stride_w, pad_w, in_w;
  ClippedRow(const VolumeShape& in, const VolumeShape& o, const PoolWindow& window, int64_t row) {
    const int64_t ot = (row / o.h) % o.t, oh = row % o.h;
    const int64_t t_first = ot * window.stride[0] - window.padding[0];
    const int64_t h_first = oh * window.stride[1] - window.padding[1];
    n = row / (o.t * o.h);
    t0 = std::max<int64_t>(t_first, 0), t1 = std::min(t_first + window.kernel[0], in.t);
    h0 = std::max<int64_t>(h_first, 0), h1 = std::min(h_first + window.kernel[1], in.h);
    kernel_w = window.kernel[2], stride_w = window.stride[2], pad_w = window.padding[2], in_w = in.w;
  }
  std::pair<int64_t, int64_t> columns(int64_t ow) const {
    const int64_t w_first = ow * stride_w - pad_w;
    return {std::max<int64_t>(w_first, 0), std::min(w_first + kernel_w, in_w)};
  }
};

void reject_padding(const PoolWindow& window, const char* op) {
  if (window.padding[0] != 0 || window.padding[1] != 0 || window.padding[2] != 0)
    throw std::invalid_argument(std::string(op) + ": average pools take no padding");
}

// Sums every window of x per channel in Acc (float or int32), split across threads by output row (n, ot, oh), and
// hands each position's C sums to finish(sums, offset of the position in the output).
template <class T, class Acc, class Finish>
void window_sums(const VolumeShape& in, const PoolWindow& win, const T* x, int num_threads, Finish finish) {
  const VolumeShape o = win.output(in);
  const int64_t C = in.channels, kt = win.kernel[0], kh = win.kernel[1], kw = win.kernel[2];
  kernels::parallel_for_chunks(o.batch * o.t * o.h, num_threads, [&](int64_t begin, int64_t end) {
    std::vector<Acc> sum(static_cast<size_t>(C));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / (o.t * o.h), ot = (row / o.h) % o.t, oh = row % o.h;
      for (int64_t ow = 0; ow < o.w; ++ow) {
        std::fill(sum.begin(), sum.end(), Acc(0));
        for (int64_t a = 0; a < kt; ++a)
          for (int64_t b = 0; b < kh; ++b) {
            // the kw * C values of one kernel row are contiguous (channels-last)
            const T* line = x + (((n * in.t + ot * win.stride[0] + a) * in.h + oh * win.stride[1] + b) * in.w +
                                 ow * win.stride[2]) * C;
            for (int64_t k = 0; k < kw; ++k)
              for (int64_t c = 0; c < C; ++c) sum[size_t(c)] += Acc(line[k * C + c]);
          }
        finish(sum.data(), (row * o.w + ow) * C);
      }
    }
  });
}

}  // namespace

void avg_pool3d_f32(const VolumeShape& shape, const PoolWindow& window, const float* x, float* out, int num_threads) {
  reject_padding(window, "avg_pool3d");
  window.output(shape);  // validates
  if (shape.batch == 0) return;  // an empty batch: nothing to compute (its tensors' pointers may be null)
  if (!x || !out) throw std::invalid_argument("avg_pool3d: input and output must not be null");
  const int64_t C = shape.channels;
  const float count = float(window.kernel[0] * window.kernel[1] * window.kernel[2]);
  window_sums<float, float>(shape, window, x, num_threads, [&](const float* sum, int64_t dst) {
    for (int64_t c = 0; c < C; ++c) out[dst + c] = sum[c] / count;
  });
}

void quantized_avg_pool3d(const VolumeShape& shape, const PoolWindow& window, const int8_t* x, float input_scale,
                          int32_t input_zero_point, bool has_output_q, float output_scale, int32_t output_zero_point,
                          void* out, int num_threads) {
  reject_padding(window, "quantized_avg_pool3d");
  window.output(shape);
  if (shape.batch == 0) return;  // an empty batch: nothing to compute (its tensors' pointers may be null)
  if (!x || !out) throw std::invalid_argument("quantized_avg_pool3d: input and output must not be null");
  check_quantization(input_scale, input_zero_point, "quantized_avg_pool3d", "input");
  if (has_output_q) check_quantization(output_scale, output_zero_point, "quantized_avg_pool3d", "output");
  const int64_t C = shape.channels, count = window.kernel[0] * window.kernel[1] * window.kernel[2];
  if (count > (int64_t{1} << 23))  // int32 sums of up to 2^23 values of |q| <= 128 stay exact
    throw std::invalid_argument("quantized_avg_pool3d: windows of more than 2^23 elements are not supported");
  const float per_element = input_scale / float(count);
  const int64_t offset = int64_t(input_zero_point) * count;
  window_sums<int8_t, int32_t>(shape, window, x, num_threads, [&](const int32_t* sum, int64_t dst) {
    for (int64_t c = 0; c < C; ++c) {
      const float mean = float(int64_t(sum[c]) - offset) * per_element;
      if (!has_output_q) {
        static_cast<float*>(out)[dst + c] = mean;
      } else {
        const float q = std::nearbyint(mean / output_scale) + float(output_zero_point);
        static_cast<int8_t*>(out)[dst + c] = int8_t(std::min(127.0f, std::max(-128.0f, q)));
      }
    }
  });
}

void max_pool3d_f32(const VolumeShape& shape, const PoolWindow& window, const float* x, float* out, int num_threads) {
  const VolumeShape o = window.output(shape);  // validates
  if (shape.batch == 0) return;  // an empty batch: nothing to compute (its tensors' pointers may be null)
  if (!x || !out) throw std::invalid_argument("max_pool3d: input and output must not be null");
  const VolumeShape& in = shape;
  const int64_t C = in.channels;
  kernels::parallel_for_chunks(o.batch * o.t * o.h, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      // Each window clipped to the real input: padded positions are -inf, which never wins (nor replaces -inf).
      const ClippedRow r(in, o, window, row);
      const int64_t n = r.n;
      for (int64_t ow = 0; ow < o.w; ++ow) {
        const auto [w0, w1] = r.columns(ow);
        float* __restrict dst = out + (row * o.w + ow) * C;
        std::fill(dst, dst + C, -std::numeric_limits<float>::infinity());
        for (int64_t t = r.t0; t < r.t1; ++t)
          for (int64_t h = r.h0; h < r.h1; ++h)
            for (int64_t w = w0; w < w1; ++w) {
              // C contiguous values: a branch-free select the compiler vectorises. Not std::max, which drops a
              // NaN: taking v when it is NaN keeps the NaN (nothing is greater than it afterwards), as torch does.
              const float* __restrict src = x + (((n * in.t + t) * in.h + h) * in.w + w) * C;
              for (int64_t c = 0; c < C; ++c) {
                const float v = src[c], m = dst[c];
                dst[c] = ((v > m) | (v != v)) ? v : m;
              }
            }
      }
    }
  });
}

namespace {

// The window max of one output position's `Lanes` (8 or 16) int8 channels, explicitly vectorised: written as a
// loop over a compile-time 8 channels, GCC kept the running max in a general register and rebuilt it byte by byte.
template <int Lanes>
inline void max_window_fixed(const int8_t* x, int64_t row_stride, int64_t plane_stride, int64_t t0, int64_t t1,
                             int64_t h0, int64_t h1, int64_t w0, int64_t w1, int8_t* dst) {
  static_assert(Lanes == 8 || Lanes == 16, "8 or 16 channels");
#if defined(__SSE2__)
  // pmaxub on codes with their sign bit flipped (the same order), starting at the flipped -128
  const __m128i flip = _mm_set1_epi8(char(0x80));
  __m128i acc = _mm_setzero_si128();
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const auto* src = reinterpret_cast<const __m128i*>(x + t * plane_stride + h * row_stride + w * Lanes);
        acc = _mm_max_epu8(acc, _mm_xor_si128(Lanes == 8 ? _mm_loadl_epi64(src) : _mm_loadu_si128(src), flip));
      }
  acc = _mm_xor_si128(acc, flip);
  if (Lanes == 8) _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), acc);
  else _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), acc);
#elif defined(__ARM_NEON)
  int8x16_t acc = vdupq_n_s8(-128);
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const int8_t* src = x + t * plane_stride + h * row_stride + w * Lanes;
        acc = vmaxq_s8(acc, Lanes == 8 ? vcombine_s8(vld1_s8(src), vdup_n_s8(-128)) : vld1q_s8(src));
      }
  if (Lanes == 8) vst1_s8(dst, vget_low_s8(acc));
  else vst1q_s8(dst, acc);
#else
  int8_t acc[Lanes];
  std::fill(acc, acc + Lanes, int8_t(-128));
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w)
        for (int c = 0; c < Lanes; ++c)
          acc[c] = std::max(acc[c], x[t * plane_stride + h * row_stride + w * Lanes + c]);
  std::copy(acc, acc + Lanes, dst);
#endif
}

// One output row (n, ot, oh) of the int8 max pool. Fixed (8 or 16, else 0 for any count): the channel count as a
// compile-time constant, each position's window one vector per tap (SlowFast's 8-channel fast pathway: the generic
// loop's 16-byte vectors never ran there, 37 ns per output). The generic loop runs on codes with their sign bit
// flipped (x ^ 0x80, as unsigned bytes: the same order), which x86's baseline SSE2 takes in one instruction (pmaxub;
// the signed byte max is SSE4.1), in a buffer that starts at 0 (-128, which padded positions would be and never
// beat). The sizes are locals: byte stores may alias anything, so bounds read through references were reloaded in
// the loop and it stayed scalar (13 ms against the fp32 pool's 8 on a ResNet stem's 64 x 8 x 112 x 112 output).
template <int64_t Fixed>
void max_pool_row_i8(const VolumeShape& in, const VolumeShape& o, const PoolWindow& window, const int8_t* x,
                     int8_t* out, int64_t row) {
  const int64_t C = Fixed > 0 ? Fixed : in.channels, in_h = in.h, in_w = in.w, Wo = o.w;
  const ClippedRow r(in, o, window, row);
  const int64_t t0 = r.t0, t1 = r.t1, h0 = r.h0, h1 = r.h1;
  const int8_t* x_n = x + r.n * in.t * in_h * in_w * C;
  int8_t* out_row = out + row * Wo * C;
  if constexpr (Fixed > 0) {
    for (int64_t ow = 0; ow < Wo; ++ow) {
      const auto [w0, w1] = r.columns(ow);
      max_window_fixed<int(Fixed)>(x_n, in_w * C, in_h * in_w * C, t0, t1, h0, h1, w0, w1, out_row + ow * C);
    }
  } else {
    std::vector<uint8_t> acc(static_cast<size_t>(C));
    uint8_t* __restrict m = acc.data();
    for (int64_t ow = 0; ow < Wo; ++ow) {
      const auto [w0, w1] = r.columns(ow);
      std::fill(m, m + C, uint8_t(0));
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            const uint8_t* __restrict src = reinterpret_cast<const uint8_t*>(x_n) + ((t * in_h + h) * in_w + w) * C;
            for (int64_t c = 0; c < C; ++c) m[c] = std::max<uint8_t>(m[c], uint8_t(src[c] ^ 0x80u));
          }
      uint8_t* __restrict dst = reinterpret_cast<uint8_t*>(out_row) + ow * C;
      for (int64_t c = 0; c < C; ++c) dst[c] = uint8_t(m[c] ^ 0x80u);
    }
  }
}

}  // namespace

void max_pool3d_i8(const VolumeShape& shape, const PoolWindow& window, const int8_t* x, int8_t* out, int num_threads) {
  const VolumeShape o = window.output(shape);  // validates
  if (shape.batch == 0) return;  // an empty batch: nothing to compute (its tensors' pointers may be null)
  if (!x || !out) throw std::invalid_argument("max_pool3d (int8): input and output must not be null");
  auto row_fn = shape.channels == 8    ? &max_pool_row_i8<8>
                : shape.channels == 16 ? &max_pool_row_i8<16>
                                       : &max_pool_row_i8<0>;
  kernels::parallel_for_chunks(o.batch * o.t * o.h, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) row_fn(shape, o, window, x, out, row);
  });
}

}  // namespace pyvideo
