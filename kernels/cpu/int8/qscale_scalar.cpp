// Scalar references of the int8 squeeze-excitation's passes (qconv3d.h): the channel-scaled activation (the
// definition, with std::exp activations and a true division by the output scale) and the channel sums; and the
// table lookup that replaces the apply pass on large volumes (every ISA runs this one).
#include <algorithm>
#include <array>
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

namespace {

// Entry r: the int8 value whose byte is r (a channel's 256 table inputs, as rows of one channel).
constexpr std::array<int8_t, 256> kByteValues = [] {
  std::array<int8_t, 256> v{};
  for (int r = 0; r < 256; ++r) v[size_t(r)] = int8_t(uint8_t(r));
  return v;
}();

}  // namespace

void qscale_table(QScaleFn apply, const QScale& s, int64_t c_begin, int64_t c_end, int8_t* table) {
  for (int64_t c = c_begin; c < c_end; ++c) {
    QScale one = s;
    one.channels = 1;
    one.input = kByteValues.data();
    one.output = table + c * 256;
    one.float_output = nullptr;
    one.scale += c;
    one.output_scales += c;
    one.output_inverse_scales += c;
    one.output_zero_points += c;
    apply(one, 0, 256);
  }
}

// Eight channels per step, their tables at fixed offsets from one pointer (an address mode's displacement), so each
// element is a load of x, a load of the table and a store: twice as fast as the plain loop (shift, or, index).
void qchannel_lookup(const int8_t* __restrict x, int64_t channels, int64_t rows, const int8_t* __restrict table,
                     int8_t* __restrict out) {
  for (int64_t r = 0; r < rows; ++r, x += channels, out += channels) {
    const int8_t* t = table;
    int64_t c = 0;
    for (; c + 8 <= channels; c += 8, t += 8 * 256)
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) out[c + k] = t[k * 256 + uint8_t(x[c + k])];
    for (; c < channels; ++c, t += 256) out[c] = t[uint8_t(x[c])];
  }
}

}  // namespace pyvideo::kernels
