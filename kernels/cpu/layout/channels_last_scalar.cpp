// Scalar reference of the channels-last row copy (definitions in channels_last.h).
#include "channels_last.h"

namespace pyvideo::kernels {

void channels_last_row_scalar(const float* src, int64_t plane, int64_t C, int64_t W, float* dst) {
  detail::channels_last_tail(src, plane, C, 0, W, dst);
}

}  // namespace pyvideo::kernels
