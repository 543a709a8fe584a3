#include "channel_requant.h"

#include <cmath>
#include <stdexcept>

namespace pyvideo {

namespace {

void append(ChannelRequant& r, float scale, int32_t zero_point) {
  r.scales.push_back(scale);
  r.inverse_scales.push_back(1.0f / scale);
  r.zero_points.push_back(float(zero_point));
}

bool valid(float scale, int32_t zero_point) {
  return scale > 0.0f && std::isfinite(scale) && zero_point >= -128 && zero_point <= 127;
}

}  // namespace

void check_quantization(float scale, int32_t zero_point, const std::string& label, const std::string& what) {
  if (!valid(scale, zero_point))
    throw std::invalid_argument(label + ": " + what +
                                " quantization needs a positive finite scale and a zero point in [-128, 127] (got "
                                "scale " + std::to_string(scale) + ", zero point " + std::to_string(zero_point) + ")");
}

ChannelRequant ChannelRequant::checked(const float* scales, const int32_t* zero_points, int64_t channels,
                                       const std::string& label) {
  ChannelRequant r;
  for (int64_t c = 0; c < channels; ++c) {
    if (!valid(scales[c], zero_points[c]))
      check_quantization(scales[c], zero_points[c], label, "channel " + std::to_string(c) + " output");
    append(r, scales[c], zero_points[c]);
  }
  return r;
}

std::vector<int32_t> ChannelRequant::integer_zero_points() const {
  return std::vector<int32_t>(zero_points.begin(), zero_points.end());  // integral floats in [-128, 127]: exact
}

ChannelRequant ChannelRequant::repeated(float scale, int32_t zero_point, int64_t channels) {
  ChannelRequant r;
  for (int64_t c = 0; c < channels; ++c) append(r, scale, zero_point);
  return r;
}

}  // namespace pyvideo
