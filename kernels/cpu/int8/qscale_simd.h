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
#include <vector>

#include "../channel_tiles.h"
#include "qconv3d.h"
#include "requant_simd.h"

namespace pyvideo::kernels::detail {

// The rows [row_begin, row_end) as one flat run of (row_end - row_begin) * C values in full vectors, the per-channel
// scales, reciprocals and zero points tiled by channel (channel_tiles.h); U vectors side by side, since each is a
// chain of ~25 dependent operations with a swish. Per row (C / width vectors, then a masked remainder) this pass took
// 0.39 ms on X3D-XS's 40x40 squeeze-excitation (C = 54, one thread); the flat run 0.28 ms, with four vectors side by
// side 0.23 ms (one-off microbenchmark, AVX-512). In the int8 programs (in-process A/B, per-step minima) the
// squeeze-excitation steps took 0.77x / 0.83x the time on X3D-XS at one / two threads (the 40x40 ones 0.67x /
// 0.69x), 0.74x / 0.78x on X3D-S. Four side by side on AVX2 as well (it had two, for its 16 registers; the
// constants then come from memory operands): the same SE with a swish 0.99 -> 0.84 ms on a Zen 1 core (the binding,
// best of 30; eight side by side gave no more). Each element's arithmetic is the same. FloatOut: store act(v) to
// s.float_output instead of requantizing it.
template <class V, Activation A, bool FloatOut>
void qscale_rows(const QScale& s, int64_t row_begin, int64_t row_end) {
  using reg = typename V::reg;
  constexpr int W = V::width, U = 4;
  const int64_t C = s.channels, P = channel_period(C, W), len = P + W;
  thread_local std::vector<float> scales, inverses, zero_points;
  scales.resize(size_t(len));
  tile_channels(C, len, [&](int64_t c) { return s.scale[c]; }, scales.data());
  if (!FloatOut) {
    inverses.resize(size_t(len));
    zero_points.resize(size_t(len));
    tile_channels(C, len, [&](int64_t c) { return s.output_inverse_scales[c]; }, inverses.data());
    tile_channels(C, len, [&](int64_t c) { return s.output_zero_points[c]; }, zero_points.data());
  }
  // Locals, not s's fields: the int8 stores may alias anything, so fields would be reloaded after every store.
  const int64_t first = row_begin * C, n = (row_end - row_begin) * C;
  const int8_t* x = s.input + first;
  int8_t* output = s.output + (FloatOut ? 0 : first);
  float* float_output = FloatOut ? s.float_output + first : nullptr;
  const float *scale = scales.data(), *inverse = inverses.data(), *zero_point = zero_points.data();
  const reg zp = V::set1(float(s.input_zero_point));
  auto dequantize = [&](int64_t f, int64_t p, int lanes) {
    return V::mul(V::sub(V::load_i8(x + f, lanes), zp), load_lanes<V>(scale + p, lanes));
  };
  auto put = [&](int64_t f, int64_t p, reg y, int lanes) {
    if constexpr (FloatOut) {
      if (lanes == W)
        V::store(float_output + f, y);
      else
        V::store_n(float_output + f, y, lanes);
    } else {
      clamp_store<V>(output + f, V::fmadd(y, load_lanes<V>(inverse + p, lanes), load_lanes<V>(zero_point + p, lanes)),
                     lanes);
    }
  };
  // row_begin's first value is channel 0's, so the run starts at tile offset 0
  for_each_tile_vector<U>(
      n, W, P,
      [&](int64_t f, const int64_t (&at)[U]) {
        reg y[U];
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) y[u] = dequantize(f + u * W, at[u], W);
        activate_n<V, U, A>(y);
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) put(f + u * W, at[u], y[u], W);
      },
      [&](int64_t f, int64_t p, int lanes) { put(f, p, activate<V>(dequantize(f, p, lanes), A), lanes); });
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
