// A dense conv fused into the depthwise conv that reads its output (see program_impl.h).
//
// The depthwise conv's output is computed line by line (a line: the To output rows of one (n, oh)), so at any time it
// needs only the kernel_h rows of every frame of its input around the current oh. The producer conv computes exactly
// those rows of its output into a per-thread ring of rows (row h of frame t in slot h % R of frame t), just before the
// depthwise kernel reads them through row pointers; moving down by stride_h lines computes stride_h new rows and
// forgets the oldest. Threads take contiguous ranges of lines; a range recomputes only the kernel_h - stride_h halo
// rows it shares with the previous range. Both convs run their usual kernels on the same data in the same order (the
// dense kernel's arithmetic per output value does not depend on which rows or columns a call covers), so the results
// equal the separate steps' bit for bit.
//
// A pointwise producer (1x1x1, stride 1, no padding: X3D's expansion convs) computes a run of consecutive rows as one
// GEMM row of (rows * W) columns, which keeps its register tiles full on narrow frames; any other producer (X3D's
// stem, a 1x3x3 stride-2 conv of the RGB input) computes its output rows from its input rows as the dense kernel does
// for the separate step.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/parallel.h"
#include "program_impl.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace pyvideo::runtime {

namespace {

// Output columns per pointwise kernel call that keep its register tiles full and its per-call cost small: lines are
// processed in batches whose new input rows give at least this many columns (one kernel column block).
constexpr int64_t kMinColumns = 64;

}  // namespace

ConvDepthwise::ConvDepthwise(const Program::Step& conv, const Program::Step& dw, const Shape5& x, const Shape5& mid)
    : conv_(conv), dw_(dw), mid_(mid) {
  shape_ = geometry<kernels::DwConv3dShape>(dw.g, mid);
  shape_.channels = conv.out_channels;
  shape_.validate();
  producer_ = geometry<kernels::Conv3dShape>(conv.g, x);
  producer_.in_channels = x.c;
  producer_.out_channels = conv.out_channels;
  producer_.validate();
  if (producer_.out_t() != mid.t || producer_.out_h() != mid.h || producer_.out_w() != mid.w)
    throw std::logic_error("fused conv -> depthwise: the producer's output shape is not the depthwise conv's input");
  const int64_t sh = shape_.stride_h, kh = shape_.kernel_h;
  lines_per_batch_ = std::clamp<int64_t>((kMinColumns + sh * mid.w - 1) / (sh * mid.w), 1, shape_.out_h());
  // The rows a batch of lines reads span (lines - 1) * stride_h + kernel_h (at most the height): every row of a batch
  // has its own slot, and the rows kept from the batch before are a subset of the current batch's.
  ring_rows_ = std::min(mid.h, (lines_per_batch_ - 1) * sh + kh);
  ring_floats_ = (mid.t * ring_rows_ * mid.w * conv.out_channels + 15) / 16 * 16;
}

bool ConvDepthwise::pointwise() const { return producer_.is_pointwise(); }

int ConvDepthwise::threads(int num_threads) const {
  return int(std::max<int64_t>(1, std::min<int64_t>(num_threads, shape_.lines())));
}

size_t ConvDepthwise::scratch_floats(int num_threads) const {
  return size_t(threads(num_threads)) * size_t(ring_floats_);
}

void ConvDepthwise::run(const float* input, const float* residual, float* row_sums, float* output, float* scratch,
                        int num_threads) const {
  const int64_t T = mid_.t, H = mid_.h, W = mid_.w, Ci = producer_.in_channels, C = conv_.out_channels;
  const int64_t Ho = shape_.out_h(), sh = shape_.stride_h, ph = shape_.pad_h, kh = shape_.kernel_h;
  const int64_t R = ring_rows_, row_floats = W * C;
  const bool flat = pointwise();
  kernels::Epilogue conv_ep;
  conv_ep.bias = conv_.bias.data();
  conv_ep.activation = conv_.act;
  // The depthwise kernel runs on one sample at a time (a batch of lines never spans two), so its row table only
  // covers one sample's T * H rows.
  kernels::DwConv3dShape sample = shape_;
  sample.batch = 1;
  const int64_t out_floats = shape_.out_t() * Ho * shape_.out_w() * C, sums_floats = shape_.out_t() * Ho * C;
  const kernels::Conv3dF32RowsFn produce = kernels::kernel_table().conv3d_f32_rows;
  const kernels::DwConv3dF32LinesFn depthwise = kernels::kernel_table().dwconv3d_f32_lines;

  const int team = threads(num_threads);
  kernels::parallel_for_chunks(shape_.lines(), team, [&](int64_t begin, int64_t end) {
    // Each thread its own ring. A team of one runs on the calling thread, whose OpenMP number may be that of an
    // enclosing parallel region.
    int64_t slot = 0;
#if defined(_OPENMP)
    if (team > 1) slot = omp_get_thread_num();
#endif
    float* ring = scratch + slot * ring_floats_;
    std::vector<const float*> rows(size_t(T * H));  // the depthwise kernel's input_rows (of sample n)
    int64_t have_n = -1, have_hi = 0;                   // rows [.., have_hi) of sample have_n are in the ring
    for (int64_t line = begin; line < end;) {
      const int64_t n = line / Ho, oh = line % Ho;
      const int64_t stop = std::min({end, (n + 1) * Ho, line + lines_per_batch_});  // lines of one sample
      const int64_t lo = std::clamp<int64_t>(oh * sh - ph, 0, H);
      const int64_t hi = std::clamp<int64_t>((oh + stop - line - 1) * sh - ph + kh, lo, H);
      for (int64_t t = 0; t < T; ++t) {
        // The batch's rows not in the ring yet, as runs of consecutive slots: one producer call per run.
        for (int64_t a = have_n == n ? std::max(lo, have_hi) : lo; a < hi;) {
          const int64_t first = a % R, b = std::min(hi, a + R - first);
          float* dst = ring + (t * R + first) * row_floats;
          const int64_t mid_row = (n * T + t) * H + a;  // the producer's output row a of frame t
          if (flat) {
            // Rows [a, b) of a pointwise conv: one row of (b - a) * W columns of its input.
            kernels::Conv3dShape run_shape;
            run_shape.batch = run_shape.in_t = run_shape.in_h = 1;
            run_shape.in_w = (b - a) * W;
            run_shape.in_channels = Ci;
            run_shape.out_channels = C;
            produce(run_shape, input + mid_row * W * Ci, conv_.weight.data(), conv_ep, dst, 0, 1);
          } else {
            produce(producer_, input, conv_.weight.data(), conv_ep, dst, mid_row, mid_row + b - a);
          }
          a = b;
        }
        for (int64_t ih = lo; ih < hi; ++ih) rows[size_t(t * H + ih)] = ring + (t * R + ih % R) * row_floats;
      }
      have_n = n;
      have_hi = hi;
      kernels::Epilogue dw_ep;
      dw_ep.bias = dw_.bias.data();
      dw_ep.residual = residual ? residual + n * out_floats : nullptr;
      dw_ep.activation = dw_.act;
      dw_ep.row_sums = row_sums ? row_sums + n * sums_floats : nullptr;
      depthwise(sample, rows.data(), dw_.weight.data(), dw_ep, output + n * out_floats, oh, oh + stop - line);
      line = stop;
    }
  });
}

}  // namespace pyvideo::runtime
