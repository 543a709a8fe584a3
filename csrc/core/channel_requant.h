// Per-channel output quantization in the form the int8 kernels read it (kernels::Requant, kernels::QScale): the
// scales the scalar references divide by, their reciprocals the SIMD variants multiply by, and the zero points as
// floats. The convs' Python bindings, the native program's conv steps and the int8 squeeze-excitation build it here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../../kernels/cpu/int8/qconv3d.h"

namespace pyvideo {

// One tensor's quantization: throws std::invalid_argument unless `scale` is positive and finite and `zero_point` lies in
// [-128, 127]; the message starts "<label>: <what> quantization needs ...". Every int8 entry point checks its scales
// and zero points here, so an infinite scale (which would requantize everything to the zero point) is refused alike.
void check_quantization(float scale, int32_t zero_point, const std::string& label, const std::string& what);

struct ChannelRequant {
  std::vector<float> scales, inverse_scales, zero_points;

  // `channels` scales and int32 zero points, each checked (a positive finite scale, a zero point in [-128, 127]);
  // std::invalid_argument otherwise, naming `label` and the channel.
  static ChannelRequant checked(const float* scales, const int32_t* zero_points, int64_t channels,
                                const std::string& label);
  // One scale and zero point (checked by the caller) for every channel.
  static ChannelRequant repeated(float scale, int32_t zero_point, int64_t channels);

  bool empty() const { return scales.empty(); }
  // The zero points as the int32 values they were built from (what model files store).
  std::vector<int32_t> integer_zero_points() const;
  // Points q's per-channel output fields at these arrays (nothing when empty); q must not outlive this. Q: a
  // kernels::Requant or kernels::QScale (the same three fields).
  template <class Q>
  void apply_to(Q& q) const {
    if (empty()) return;
    q.output_scales = scales.data();
    q.output_inverse_scales = inverse_scales.data();
    q.output_zero_points = zero_points.data();
  }
};

}  // namespace pyvideo
