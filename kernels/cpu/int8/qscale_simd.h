// The int8 squeeze-excitation's passes shared by every SIMD variant: the channel-scaled activation (the apply pass)
// and the per-channel sums (the pooling pass); V is a float vector wrapper from simd.h.
//
// Each position's C channels: v = (x - input_zero_point) * scale[c] (exact subtraction, one rounding, as the
// requantization's float(acc) * dequant_scale with acc = x - zp), then the activation and the requantization of
// requant_simd.h with per-channel reciprocals and zero points. So it equals the depthwise kernel with a 1x1x1 kernel of
// ones and dequant_scale = scale bit for bit, without that kernel's integer accumulation, bias and tap bookkeeping.
#pragma once
#include <algorithm>
#include <cstdint>

#include "qconv3d.h"
#include "requant_simd.h"

namespace pyvideo::kernels::detail {

// FloatOut: store act(v) to s.float_output instead of requantizing it.
template <class V, Activation A, bool FloatOut>
void qscale_rows(const QScale& s, int64_t row_begin, int64_t row_end) {
  using reg = typename V::reg;
  // Locals, not s's fields: the int8 stores may alias anything, so fields would be reloaded after every store.
  const int64_t C = s.channels, full = C / V::width * V::width;
  const int tail = int(C - full);
  const int8_t* input = s.input;
  int8_t* output = s.output;
  float* float_output = s.float_output;
  const float *scale = s.scale, *inverse = s.output_inverse_scales, *zero_point = s.output_zero_points;
  const reg zp = V::set1(float(s.input_zero_point));
  auto one = [&](const int8_t* x, int64_t i, int64_t c, int n) {
    const reg v = activate<V>(V::mul(V::sub(V::load_i8(x + c, n), zp), load_lanes<V>(scale + c, n)), A);
    if constexpr (FloatOut) {
      if (n == V::width)
        V::store(float_output + i + c, v);
      else
        V::store_n(float_output + i + c, v, n);
    } else {
      clamp_store<V>(output + i + c, V::fmadd(v, load_lanes<V>(inverse + c, n), load_lanes<V>(zero_point + c, n)), n);
    }
  };
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int8_t* x = input + row * C;
    for (int64_t c = 0; c < full; c += V::width) one(x, row * C, c, V::width);
    if (tail) one(x, row * C, full, tail);
  }
}

template <class V, bool FloatOut>
void qscale_activation(const QScale& s, int64_t row_begin, int64_t row_end) {
  switch (s.activation) {
    case Activation::identity: return qscale_rows<V, Activation::identity, FloatOut>(s, row_begin, row_end);
    case Activation::relu: return qscale_rows<V, Activation::relu, FloatOut>(s, row_begin, row_end);
    case Activation::swish: return qscale_rows<V, Activation::swish, FloatOut>(s, row_begin, row_end);
    case Activation::hswish: return qscale_rows<V, Activation::hswish, FloatOut>(s, row_begin, row_end);
    case Activation::sigmoid: return qscale_rows<V, Activation::sigmoid, FloatOut>(s, row_begin, row_end);
  }
}

// The activation and the output kind as template arguments, so their switches are resolved once per call instead
// of once per vector.
template <class V>
void qscale_simd(const QScale& s, int64_t row_begin, int64_t row_end) {
  if (s.float_output)
    qscale_activation<V, true>(s, row_begin, row_end);
  else
    qscale_activation<V, false>(s, row_begin, row_end);
}

// qchannel_sums: 64 channels at a time (64 / width float accumulators, in registers), each pass over every row.
template <class V>
void qchannel_sums_simd(const int8_t* x, int64_t C, int64_t rows, float* sums) {
  using reg = typename V::reg;
  constexpr int G = 64 / V::width;
  for (int64_t c0 = 0; c0 < C; c0 += G * V::width) {
    reg acc[G];
    int lanes[G];
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      acc[g] = V::zero();
      lanes[g] = int(std::clamp<int64_t>(C - c0 - g * V::width, 0, V::width));
    }
    const int8_t* row = x + c0;
    for (int64_t r = 0; r < rows; ++r, row += C)
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g)
        if (lanes[g]) acc[g] = V::add(acc[g], V::load_i8(row + g * V::width, lanes[g]));
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g)
      if (lanes[g] == V::width)
        V::store(sums + c0 + g * V::width, acc[g]);
      else if (lanes[g])
        V::store_n(sums + c0 + g * V::width, acc[g], lanes[g]);
  }
}

}  // namespace pyvideo::kernels::detail
