// Where a depthwise conv reads its input rows, and the output-line order of the row-pointer entry points. Shared by
// the scalar reference and the SIMD loop nest, so both kinds of entry point run the very same arithmetic.
#pragma once
#include <algorithm>
#include <cstdint>

#include "dwconv3d.h"

namespace pyvideo::kernels::detail {

// The input as a stored [N, T, H, W, C] tensor.
struct DwTensorInput {
  const float* base;
  const float* row(const DwConv3dShape& s, int64_t n, int64_t it, int64_t ih) const {
    return base + ((n * s.in_t + it) * s.in_h + ih) * s.in_w * s.channels;
  }
};

// The input as caller-provided rows (DwConv3dF32LinesFn's input_rows).
struct DwRowTable {
  const float* const* rows;
  const float* row(const DwConv3dShape& s, int64_t n, int64_t it, int64_t ih) const {
    return rows[(n * s.in_t + it) * s.in_h + ih];
  }
};

// Calls f(rows, count) for the output rows of lines [line_begin, line_end) (line n * Ho + oh: rows (n, ot, oh) for
// every ot), line by line, in groups of up to `group` consecutive ot: the rows of a group share oh and neighbouring
// planes, as the groups of the row-range entry points do.
template <int Group, class F>
void for_each_line_group(const DwConv3dShape& s, int64_t line_begin, int64_t line_end, F&& f) {
  const int64_t To = s.out_t(), Ho = s.out_h();
  int64_t rows[Group];
  for (int64_t line = line_begin; line < line_end; ++line) {
    const int64_t n = line / Ho, oh = line % Ho;
    for (int64_t ot0 = 0; ot0 < To; ot0 += Group) {
      const int count = int(std::min<int64_t>(Group, To - ot0));
      for (int g = 0; g < count; ++g) rows[g] = (n * To + ot0 + g) * Ho + oh;
      f(static_cast<const int64_t*>(rows), count);
    }
  }
}

}  // namespace pyvideo::kernels::detail
