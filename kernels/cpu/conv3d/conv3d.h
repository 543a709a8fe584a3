// Dense 3-D convolution (groups = 1), fp32, channels-last (NDHWC), with the fused epilogue (bias, residual, activation).
// One kernel serves pointwise 1x1x1 (a GEMM), temporal kx1x1, spatial 1xkxk and full kxkxk convolutions.
//
//   input  [N, T, H, W, C_in]
//   weight [kt, kh, kw, C_in, C_out]      (PyTorch's [C_out, C_in, kt, kh, kw] permuted so C_out is contiguous)
//   output [N, To, Ho, Wo, C_out]         To = (T + 2*pad_t - kt) / stride_t + 1, likewise H and W
//   zeros  C_in zero floats for taps that fall into the zero padding; the current fp32 kernels skip such taps and do
//          not read it (kept while csrc/core/ops.cpp passes it)
//
// Work is split into items: one item is up to `tile_w` consecutive output columns of one (n, ot, oh) row, all C_out
// channels. Callers split [0, items()) across threads. A pointwise stride-1 conv is best described as one row of
// N*T*H*W columns (shape.flatten_pointwise()), so its items are plain GEMM row blocks. Pointwise stride-1 shapes
// also take Epilogue::input_scale (a squeeze-excitation applied to the input on the fly).
//
// The "rows" variants compute whole output rows [row_begin, row_end) (row = (n * To + ot) * Ho + oh) with the same
// arithmetic (bit-identical results), but `output` (and Epilogue::residual) hold only those rows: row r at
// output + (r - row_begin) * Wo * C_out. For a caller that keeps a few output rows in a ring buffer, such as the
// runtime's dense -> depthwise fusion.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../epilogue.h"

namespace pyvideo::kernels {

struct Conv3dShape {
  static constexpr int64_t tile_w = 64;
  int64_t batch = 0, in_channels = 0, out_channels = 0;
  int64_t in_t = 0, in_h = 0, in_w = 0;
  int64_t kernel_t = 1, kernel_h = 1, kernel_w = 1;
  int64_t stride_t = 1, stride_h = 1, stride_w = 1;
  int64_t pad_t = 0, pad_h = 0, pad_w = 0;
  // Values between consecutive output columns, and between consecutive weight rows (0: C_out); the int8 kernels'
  // packed weights [tap][ceil(C_in / 4)][out_stride][4]. A call with out_channels < out_stride computes a range of a
  // wider layer's channels: the caller offsets the weight, per-channel and output-shaped pointers to the range's
  // first channel (csrc/core/ops.cpp splits narrow layers such as a classifier head's GEMV across threads by channels
  // this way).
  int64_t out_stride = 0;
  // Output columns per work item (0: tile_w; the int8 kernels take at most tile_w). csrc/core/ops.cpp sets it when it
  // splits a flattened pointwise conv between threads, so that every thread gets an equal share. Only the split
  // changes: the results do not depend on the item width.
  int64_t item_w = 0;

  int64_t co_stride() const { return out_stride ? out_stride : out_channels; }
  int64_t item_width() const { return item_w ? item_w : tile_w; }
  int64_t out_t() const { return (in_t + 2 * pad_t - kernel_t) / stride_t + 1; }
  int64_t out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int64_t out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  int64_t rows() const { return batch * out_t() * out_h(); }
  int64_t column_blocks() const { return (out_w() + item_width() - 1) / item_width(); }
  int64_t items() const { return rows() * column_blocks(); }
  // f(row, ow_begin, ow_end) for each output row that items [item_begin, item_end) touch, in order, with the columns
  // those items cover (the whole row but where the range starts or ends inside it).
  template <class F>
  void for_each_row_span(int64_t item_begin, int64_t item_end, F&& f) const {
    const int64_t blocks = column_blocks(), Wo = out_w(), iw = item_width();
    for (int64_t item = item_begin; item < item_end;) {
      const int64_t row = item / blocks, row_items_end = std::min(item_end, (row + 1) * blocks);
      f(row, item % blocks * iw, std::min(Wo, (row_items_end - row * blocks) * iw));
      item = row_items_end;
    }
  }
  bool is_pointwise() const;
  // Whether the SIMD kernels compute this shape with the blocked loop nest for large weights (see
  // conv3d_simd.h): the reduction is then summed in parts, a float rounding difference from the row-at-a-time nest.
  // Depends on the whole layer's width (co_stride), so a channel range of a layer decides as the layer does, and on
  // the CPU's L2 size (blocked_weight_bytes), so a layer of 256 KB - 1 MB of weights may round differently on
  // machines with different caches (as results already differ between ISA levels).
  bool blocked_reduction() const;
  // A pointwise stride-1 conv as one row of N*T*H*W columns (same memory, better tiles); other shapes unchanged.
  Conv3dShape flatten_pointwise() const;
  // Throws std::invalid_argument describing the first inconsistency.
  void validate() const;
};

// Weights (bytes) above which multi-tap layers take the blocked loop nest, for an L2 of l2_bytes (0: unknown).
int64_t blocked_weight_bytes(long long l2_bytes);

using Conv3dF32Fn = void (*)(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                             const float* zeros, float* output, int64_t item_begin, int64_t item_end);

void conv3d_f32_scalar(const Conv3dShape&, const float*, const float*, const Epilogue&, const float*, float*, int64_t,
                       int64_t);
#if defined(__x86_64__) || defined(_M_X64)
void conv3d_f32_avx2(const Conv3dShape&, const float*, const float*, const Epilogue&, const float*, float*, int64_t,
                     int64_t);
void conv3d_f32_avx512(const Conv3dShape&, const float*, const float*, const Epilogue&, const float*, float*, int64_t,
                       int64_t);
#endif
#if defined(__aarch64__)
void conv3d_f32_neon(const Conv3dShape&, const float*, const float*, const Epilogue&, const float*, float*, int64_t,
                     int64_t);
#endif

using Conv3dF32RowsFn = void (*)(const Conv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                                 float* output, int64_t row_begin, int64_t row_end);

void conv3d_f32_rows_scalar(const Conv3dShape&, const float*, const float*, const Epilogue&, float*, int64_t, int64_t);
#if defined(__x86_64__) || defined(_M_X64)
void conv3d_f32_rows_avx2(const Conv3dShape&, const float*, const float*, const Epilogue&, float*, int64_t, int64_t);
void conv3d_f32_rows_avx512(const Conv3dShape&, const float*, const float*, const Epilogue&, float*, int64_t, int64_t);
#endif
#if defined(__aarch64__)
void conv3d_f32_rows_neon(const Conv3dShape&, const float*, const float*, const Epilogue&, float*, int64_t, int64_t);
#endif

}  // namespace pyvideo::kernels
