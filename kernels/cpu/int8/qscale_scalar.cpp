// Scalar references of the int8 squeeze-excitation's passes (qconv3d.h): the channel-scaled activation (the
// definition, with std::exp activations and a true division by the output scale) and the channel sums.
#include <algorithm>
#include <cmath>

#include "qconv3d.h"

namespace pyvideo::kernels {

void qscale_scalar(const QScale& s, int64_t row_begin, int64_t row_end) {
  const int64_t C = s.channels;
  for (int64_t row = row_begin; row < row_end; ++row)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = row * C + c;
      const float v = float(int32_t(s.input[i]) - s.input_zero_point) * s.scale[c];
      if (s.float_output) {
        s.float_output[i] = activate_scalar(v, s.activation);
        continue;
      }
      const float r = std::nearbyint(activate_scalar(v, s.activation) / s.output_scales[c]) + s.output_zero_points[c];
      s.output[i] = int8_t(std::min(127.0f, std::max(-128.0f, r)));
    }
}

void qchannel_sums_scalar(const int8_t* x, int64_t channels, int64_t rows, float* sums) {
  for (int64_t c = 0; c < channels; ++c) sums[c] = 0.0f;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) sums[c] += float(x[r * channels + c]);
}

}  // namespace pyvideo::kernels
