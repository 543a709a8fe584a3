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

// Calls f(rows, count) for the output rows at positions [begin, end) of the line order (dwconv3d.h), in groups of up
// to `Group` consecutive ot of one line: the rows of a group share oh and neighbouring planes, so most of their input.
template <int Group, class F>
void for_each_row_group(const DwConv3dShape& s, int64_t begin, int64_t end, F&& f) {
  const int64_t To = s.out_t(), Ho = s.out_h();
  int64_t rows[Group] = {};
  for (int64_t p = begin; p < end;) {
    const int64_t line = p / To, n = line / Ho, oh = line % Ho, ot0 = p % To;
    const int count = int(std::min<int64_t>({Group, To - ot0, end - p}));
    for (int g = 0; g < count; ++g) rows[g] = (n * To + ot0 + g) * Ho + oh;
    f(static_cast<const int64_t*>(rows), count);
    p += count;
  }
}

}  // namespace pyvideo::kernels::detail
