// Depthwise 3-D convolution, fp32, channels-last (NDHWC).
//
//   input  [N, T,  H,  W,  C]
//   weight [kt, kh, kw, C]            (PyTorch's [C, 1, kt, kh, kw] transposed so channels are contiguous)
//   output [N, To, Ho, Wo, C]         To = (T + 2*pad_t - kt) / stride_t + 1, likewise H and W
//   epilogue: bias [C], residual [N, To, Ho, Wo, C] (each optional) and the activation, fused into the store;
//             optionally also the per-row channel sums of the stored output (Epilogue::row_sums, [N*To*Ho, C])
//
// Zero padding, dilation 1, any kernel size and stride. A "row" is one (n, ot, oh) output row of Wo*C values, stored
// as row (n * To + ot) * Ho + oh; a "line" is the To rows (n, 0..To-1, oh) of one (n, oh), line = n * Ho + oh. The
// variants visit rows in line order, position p being row ot = p % To of line p / To, and each call computes the rows
// at positions [begin, end), so that the caller can split positions across threads. The rows of a line read mostly
// the same input rows (neighbouring planes of the same oh), so the kernels compute a line's rows together and read
// that input once for all of them; a split into row ranges (planes) instead left each thread a few planes per oh,
// and the input rows they share with the other planes were read once per thread (bench/depthwise_f32.py).
//
// The "lines" variants compute the same convolution (same arithmetic, bit-identical results) from caller-provided
// input rows: input_rows[(n * in_t + it) * in_h + ih] points at input row (n, it, ih), in_w * C floats (rows need not
// be laid out as a tensor). They compute the output rows of output lines [line_begin, line_end) (positions
// [line_begin * To, line_end * To)) and dereference only the input rows those lines read: for a producer that
// computes the input on the fly while walking down H, so that only kernel_h input rows (of every frame) need to exist
// at a time (the runtime's pointwise -> depthwise fusion).
#pragma once
#include <cstdint>

#include "../epilogue.h"

namespace pyvideo::kernels {

struct DwConv3dShape {
  int64_t batch = 0, channels = 0;
  int64_t in_t = 0, in_h = 0, in_w = 0;
  int64_t kernel_t = 1, kernel_h = 1, kernel_w = 1;
  int64_t stride_t = 1, stride_h = 1, stride_w = 1;
  int64_t pad_t = 0, pad_h = 0, pad_w = 0;

  int64_t out_t() const { return (in_t + 2 * pad_t - kernel_t) / stride_t + 1; }
  int64_t out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int64_t out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  int64_t rows() const { return batch * out_t() * out_h(); }
  int64_t lines() const { return batch * out_h(); }
  // The row (n * To + ot) * Ho + oh at position p of the line order (above), given To = out_t() and Ho = out_h().
  static int64_t row_at(int64_t p, int64_t To, int64_t Ho) {
    const int64_t line = p / To;
    return (line / Ho * To + p % To) * Ho + line % Ho;
  }
  // Throws std::invalid_argument describing the first inconsistency.
  void validate() const;
};

using DwConv3dF32Fn = void (*)(const DwConv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                               float* output, int64_t begin, int64_t end);

void dwconv3d_f32_scalar(const DwConv3dShape&, const float*, const float*, const Epilogue&, float*, int64_t, int64_t);
#if defined(__x86_64__) || defined(_M_X64)
void dwconv3d_f32_avx2(const DwConv3dShape&, const float*, const float*, const Epilogue&, float*, int64_t, int64_t);
void dwconv3d_f32_avx512(const DwConv3dShape&, const float*, const float*, const Epilogue&, float*, int64_t, int64_t);
#endif
#if defined(__aarch64__)
void dwconv3d_f32_neon(const DwConv3dShape&, const float*, const float*, const Epilogue&, float*, int64_t, int64_t);
#endif

using DwConv3dF32LinesFn = void (*)(const DwConv3dShape& s, const float* const* input_rows, const float* weight,
                                    const Epilogue& ep, float* output, int64_t line_begin, int64_t line_end);

void dwconv3d_f32_lines_scalar(const DwConv3dShape&, const float* const*, const float*, const Epilogue&, float*,
                               int64_t, int64_t);
#if defined(__x86_64__) || defined(_M_X64)
void dwconv3d_f32_lines_avx2(const DwConv3dShape&, const float* const*, const float*, const Epilogue&, float*,
                             int64_t, int64_t);
void dwconv3d_f32_lines_avx512(const DwConv3dShape&, const float* const*, const float*, const Epilogue&, float*,
                               int64_t, int64_t);
#endif
#if defined(__aarch64__)
void dwconv3d_f32_lines_neon(const DwConv3dShape&, const float* const*, const float*, const Epilogue&, float*,
                             int64_t, int64_t);
#endif

}  // namespace pyvideo::kernels
