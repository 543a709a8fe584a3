// The int8 depthwise conv3d on the fp32 depthwise loop nest (dwconv3d_simd.h), for CPUs without a byte dot-product
// instruction (AVX2, AVX-512 without VNNI); V is a float vector wrapper from simd.h.
//
// There an int8 multiply-add costs about what an fp32 FMA does: simd::Avx2Dot emulates the dot with two vpmaddwd and
// two adds, so the dot kernel's 9 dots per output vector of a 3x3x3 kernel (qdwconv3d_dot.h) were 36 instructions
// plus the quad rearranging, against the fp32 kernel's 27 FMAs, and measured slower on the Zen 1 it was timed on;
// a float kernel that widened its int8 input for every tap spent four instructions per multiply-add. Here
// each input row is widened once, to x - zero_point in float, and the fp32 loop nest (its register blocking, row
// pairs and border handling) computes the accumulators from those rows, which the requantization then reads back from
// a small per-group buffer still in L1.
//
// Exactness: every product (x - zp) * w is an integer below 2^16 in magnitude, exact in float32, and so is every
// partial sum while it stays below 2^24: 500 taps (ops.cpp's limit) of 255 * 127 reach 1.6e7 < 2^24. The bias starts
// the sums as float (as the dot kernels' int32 sums are converted to float for the requantization), so the
// accumulators are those of the reference up to the rounding of a bias beyond 2^24. Padding reads nothing: the fp32
// loop nest skips taps outside the input, which is what a zero-point pad (x - zp = 0) contributes.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "../dwconv3d/dwconv3d_simd.h"
#include "requant_simd.h"

namespace pyvideo::kernels::detail {

// out[i] = x[i] - zero_point as float for i in [0, n): integers in [-255, 255], exact.
template <class V>
void widen_row(const int8_t* x, int64_t n, float zero_point, float* out) {
  const typename V::reg zp = V::set1(zero_point);
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) V::store(out + i, V::sub(V::load_i8(x + i, V::width), zp));
  if (i < n) V::store_n(out + i, V::sub(V::load_i8(x + i, int(n - i)), zp), int(n - i));
}

// The input rows (n, t, h) as floats x - zero_point, each widened when a tap first asks for it (the fp32 loop nest's
// Input: row(s, n, t, h)). Slot h % kernel_h holds input row h of every frame of one sample: the kernel_h consecutive
// rows one output line reads never share a slot, and the next line (oh + 1, same frames) finds the rows it shares
// with this one still there.
template <class V>
class QDwWidenedRows {
 public:
  QDwWidenedRows(const DwConv3dShape& s, const int8_t* input, int32_t zero_point)
      : input_(input), row_size_(s.in_w * s.channels), zero_point_(float(zero_point)),
        slots_(size_t(s.kernel_h)) {
    for (Slot& slot : slots_) {
      slot.rows.reset(new float[size_t(s.in_t * row_size_)]);  // uninitialized: `ready` says what holds a row
      slot.ready.resize(size_t(s.in_t));
    }
  }

  const float* row(const DwConv3dShape& s, int64_t n, int64_t t, int64_t h) const {
    Slot& slot = slots_[size_t(h % s.kernel_h)];
    const int64_t tag = n * s.in_h + h;
    if (slot.tag != tag) {
      slot.tag = tag;
      std::fill(slot.ready.begin(), slot.ready.end(), char(0));
    }
    float* out = slot.rows.get() + t * row_size_;
    if (!slot.ready[size_t(t)]) {
      widen_row<V>(input_ + ((n * s.in_t + t) * s.in_h + h) * row_size_, row_size_, zero_point_, out);
      slot.ready[size_t(t)] = 1;
    }
    return out;
  }

 private:
  struct Slot {
    int64_t tag = -1;  // n * in_h + h, or -1
    std::unique_ptr<float[]> rows;  // [in_t][in_w * C]
    std::vector<char> ready;  // [in_t]: rows[t] holds input row (n, t, h)
  };

  const int8_t* input_;
  int64_t row_size_;
  float zero_point_;
  mutable std::vector<Slot> slots_;
};

// Requantizes columns [ow_begin, ow_end) of one output row's accumulators (acc: Wo * C floats, column ow at
// acc + ow * C) into output row `row`: the linear form where it applies (linear_scale non-null), a swish with its
// constants inlined and four vectors interleaved, anything else through Requantizer::store. The depthwise conv
// requantizes whole rows; the dense conv of narrow inputs (qconv3d_widened.h) the columns of its work items. Called
// through RowRequantizer (below).
template <class V>
void requantize_row(const float* acc, int64_t row, int64_t Wo, int64_t C, const Requant& q,
                    const Requantizer<V>& requantizer, const float* linear_scale, int8_t* output,
                    int64_t ow_begin, int64_t ow_end) {
  const int64_t base = row * Wo * C;
  auto each = [&](auto store) {
    for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
      const float* a = acc + ow * C;
      const int64_t o = base + ow * C;
      int64_t c0 = 0;
      for (; c0 + V::width <= C; c0 += V::width) store(V::load(a + c0), c0, o + c0, V::width);
      if (c0 < C) store(V::load_n(a + c0, int(C - c0)), c0, o + c0, int(C - c0));
    }
  };
  if (linear_scale) {
    const bool relu = q.activation == Activation::relu;
    each([&](typename V::reg v, int64_t c0, int64_t o, int lanes) {
      requantize_linear_store<V>(v, linear_scale + c0, o, lanes, relu, q, output);
    });
  } else if (q.activation == Activation::swish) {
    // Four vectors side by side (Requantizer::store_vectors: a swish is a long dependent chain). Columns
    // [ow_begin, bulk): four columns of one channel block at a time. The last (ow_end - ow_begin) % 4 columns: their
    // vectors in memory order, four at a time whatever column or channel block each is in, so only the span's last
    // 0-3 vectors go in a smaller group (by column alone, a 5-wide row's fifth column went one vector at a time: 432
    // channels at 5x5 took 1.15x the time).
    using reg = typename V::reg;
    // U vectors, next() giving each one's (column, first channel) in turn.
    auto group = [&](auto u_count, auto&& next) {
      constexpr int U = decltype(u_count)::value;
      reg v[U];
      int64_t c[U], o[U];
      int n[U];
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) {
        const auto [ow, c0] = next();
        c[u] = c0, n[u] = int(std::min<int64_t>(V::width, C - c0)), o[u] = base + ow * C + c0;
        v[u] = load_lanes<V>(acc + ow * C + c0, n[u]);
      }
      requantizer.template store_vectors<U, Activation::swish>(v, c, o, n, output);
    };
    const int64_t bulk = ow_begin + (ow_end - ow_begin) / 4 * 4;
    for (int64_t c0 = 0; c0 < C; c0 += V::width)
      for (int64_t ow = ow_begin; ow < bulk; ow += 4)
        group(std::integral_constant<int, 4>(), [&, column = ow]() mutable { return std::pair(column++, c0); });
    const int64_t blocks = (C + V::width - 1) / V::width, total = (ow_end - bulk) * blocks;
    int64_t ow = bulk, cb = 0;  // the leftover columns' next vector: column and channel block
    auto in_memory_order = [&] {
      const std::pair<int64_t, int64_t> at(ow, cb * V::width);
      if (++cb == blocks) cb = 0, ++ow;
      return at;
    };
    int64_t k = 0;
    for (; k + 4 <= total; k += 4) group(std::integral_constant<int, 4>(), in_memory_order);
    switch (total - k) {
      case 3: group(std::integral_constant<int, 3>(), in_memory_order); break;
      case 2: group(std::integral_constant<int, 2>(), in_memory_order); break;
      case 1: group(std::integral_constant<int, 1>(), in_memory_order); break;
      default: break;
    }
  } else {
    each([&](typename V::reg v, int64_t c0, int64_t o, int lanes) { requantizer.store(v, c0, o, lanes, output); });
  }
}

// requantize_row with what it reads built once per kernel call: the Requantizer and, where the linear form applies,
// its per-channel factors padded to whole vectors. Shared by the float-accumulating int8 kernels (the depthwise rows
// here, the dense windows of qconv3d_widened.h).
template <class V>
class RowRequantizer {
 public:
  RowRequantizer(const Requant& q, int64_t channels) : q_(q), channels_(channels), requantizer_(q) {
    if (linear_requant(q)) {
      linear_scale_.resize(size_t((channels + V::width - 1) / V::width * V::width));
      linear_scales(q, channels, int64_t(linear_scale_.size()), linear_scale_.data());
    }
  }

  // Columns [ow_begin, ow_end) of output row `row` (Wo columns) from acc (column ow at acc + ow * channels).
  void operator()(const float* acc, int64_t row, int64_t Wo, int64_t ow_begin, int64_t ow_end, int8_t* output) const {
    requantize_row<V>(acc, row, Wo, channels_, q_, requantizer_, linear_scale_.empty() ? nullptr : linear_scale_.data(),
                      output, ow_begin, ow_end);
  }

 private:
  const Requant& q_;
  int64_t channels_;
  Requantizer<V> requantizer_;
  std::vector<float> linear_scale_;
};

// The rows at positions [begin, end) of the line order (dwconv3d.h), like every depthwise entry point.
template <class V>
void qdwconv3d_widened(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                       int8_t* output, int64_t begin, int64_t end) {
  const int64_t C = s.channels, Wo = s.out_w(), weights = s.kernel_t * s.kernel_h * s.kernel_w * C;
  std::vector<float> weight_f(static_cast<size_t>(weights));
  for (int64_t i = 0; i < weights; ++i) weight_f[size_t(i)] = float(weight[i]);
  Epilogue ep;  // the accumulators only: bias + sum of products, no activation (the requantization applies it)
  ep.bias = q.bias_float;
  DwRowGroups<V> groups(s, ep);
  const QDwWidenedRows<V> rows(s, input, q.input_zero_point);
  const RowRequantizer<V> requantize(q, C);
  const std::unique_ptr<float[]> acc(new float[size_t(kDwGroup * Wo * C)]);  // each row written before it is read
  float* outs[kDwGroup];
  for (int g = 0; g < kDwGroup; ++g) outs[g] = acc.get() + g * Wo * C;
  for_each_row_group<kDwGroup>(s, begin, end, [&](const int64_t* row_ids, int count) {
    groups.run_into(rows, weight_f.data(), outs, row_ids, count);
    for (int g = 0; g < count; ++g) requantize(outs[g], row_ids[g], Wo, 0, Wo, output);
  });
}

}  // namespace pyvideo::kernels::detail
