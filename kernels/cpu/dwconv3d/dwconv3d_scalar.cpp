// Reference implementation: the direct definition, one output value at a time. Every SIMD variant is tested against it.
#include <stdexcept>
#include <string>

#include "../taps.h"
#include "dwconv3d.h"
#include "dwconv3d_input.h"

namespace pyvideo::kernels {

void DwConv3dShape::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument("dwconv3d: " + what); };
  if (batch < 0 || channels <= 0 || in_t <= 0 || in_h <= 0 || in_w <= 0) fail("input sizes must be positive");
  if (kernel_t <= 0 || kernel_h <= 0 || kernel_w <= 0) fail("kernel sizes must be positive");
  if (stride_t <= 0 || stride_h <= 0 || stride_w <= 0) fail("strides must be positive");
  if (pad_t < 0 || pad_h < 0 || pad_w < 0) fail("padding must be non-negative");
  if (in_t + 2 * pad_t < kernel_t || in_h + 2 * pad_h < kernel_h || in_w + 2 * pad_w < kernel_w)
    fail("kernel is larger than the padded input");
}

namespace {

// Output row `row` (n, ot, oh), reading input rows through `input` (a detail::DwTensorInput or DwRowTable).
template <class Input>
void reference_row(const DwConv3dShape& s, const Input& input, const float* weight, const Epilogue& ep, float* output,
                   int64_t row) {
  const int64_t C = s.channels, To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t n = row / (To * Ho), ot = (row / Ho) % To, oh = row % Ho;
  for (int64_t ow = 0; ow < Wo; ++ow) {
    for (int64_t c = 0; c < C; ++c) {
      float acc = ep.bias ? ep.bias[c] : 0.0f;
      for_each_input_tap(s, ot, oh, ow, [&](int64_t it, int64_t ih, int64_t iw, int64_t tap) {
        acc += input.row(s, n, it, ih)[iw * C + c] * weight[tap * C + c];
      });
      const int64_t o = (row * Wo + ow) * C + c;
      if (ep.residual) acc += ep.residual[o];
      output[o] = activate_scalar(acc, ep.activation);
      if (ep.row_sums) ep.row_sums[row * C + c] += output[o];
    }
  }
}

}  // namespace

void dwconv3d_f32_scalar(const DwConv3dShape& s, const float* input, const float* weight, const Epilogue& ep,
                         float* output, int64_t begin, int64_t end) {
  detail::for_each_row_group<1>(s, begin, end, [&](const int64_t* rows, int) {
    reference_row(s, detail::DwTensorInput{input}, weight, ep, output, rows[0]);
  });
}

void dwconv3d_f32_lines_scalar(const DwConv3dShape& s, const float* const* input_rows, const float* weight,
                               const Epilogue& ep, float* output, int64_t line_begin, int64_t line_end) {
  detail::for_each_row_group<1>(s, line_begin * s.out_t(), line_end * s.out_t(), [&](const int64_t* rows, int) {
    reference_row(s, detail::DwRowTable{input_rows}, weight, ep, output, rows[0]);
  });
}

}  // namespace pyvideo::kernels
