#include "squeeze_excitation.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/int8/qconv3d.h"
#include "../../kernels/cpu/parallel.h"
#include "channel_requant.h"
#include "ops.h"

namespace pyvideo {
namespace {

// The int8 squeeze-excitation's apply pass goes by table (kernels::qchannel_lookup) for a swish or sigmoid output,
// where the kernel level says it pays (KernelTable::qscale_by_table), from this many positions per sample: four
// times the table's 256 values per channel, so building the table costs at most a quarter of the direct pass, and a
// lookup (~0.55 ns per element on a Zen 1 core) is a fraction of an AVX2 swish (~1.5 ns). Cheaper activations are
// about as fast direct as by table: they stay direct.
constexpr int64_t kLookupMinPositions = 1024;

// Validates a call; false for an empty batch, which computes nothing (its tensors' pointers may be null).
bool check(const SqueezeExcitation& se, const VolumeShape& shape, const void* x, const void* out) {
  if (shape.batch < 0 || shape.t <= 0 || shape.h <= 0 || shape.w <= 0 || shape.channels <= 0)
    throw std::invalid_argument("squeeze_excitation: every dimension of the input but the batch must be positive");
  if (se.channels != shape.channels)
    throw std::invalid_argument("squeeze_excitation: the layers expect " + std::to_string(se.channels) +
                                " channels, the input has " + std::to_string(shape.channels));
  if (se.hidden <= 0 || !se.fc0_weight || !se.fc1_weight)
    throw std::invalid_argument("squeeze_excitation: weights must not be null");
  if (shape.batch == 0) return false;
  if (!x || !out) throw std::invalid_argument("squeeze_excitation: input and output must not be null");
  return true;
}

// Per-channel sums of each sample over all positions, as doubles: rows are summed in chunks of `chunk` positions by
// sum_chunk(first row, rows, partial sums out) (float or exact integer partial sums, vectorised), which are then added
// in double, split across threads by chunk.
template <class T, class SumChunk>
std::vector<double> channel_sums_impl(const VolumeShape& shape, const T* x, int num_threads, int64_t chunk,
                                      SumChunk sum_chunk) {
  const int64_t P = shape.positions(), C = shape.channels, chunks = (P + chunk - 1) / chunk;
  std::vector<double> per_chunk(static_cast<size_t>(shape.batch * chunks * C));
  kernels::parallel_for_chunks(shape.batch * chunks, num_threads, [&](int64_t begin, int64_t end) {
    std::vector<float> partial(static_cast<size_t>(C));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / chunks, p0 = (item % chunks) * chunk, p1 = std::min(P, p0 + chunk);
      sum_chunk(x + (n * P + p0) * C, p1 - p0, partial.data());
      double* dst = per_chunk.data() + item * C;
      for (int64_t c = 0; c < C; ++c) dst[c] = double(partial[static_cast<size_t>(c)]);
    }
  });
  std::vector<double> sums(static_cast<size_t>(shape.batch * C), 0.0);
  for (int64_t n = 0; n < shape.batch; ++n)
    for (int64_t k = 0; k < chunks; ++k)
      for (int64_t c = 0; c < C; ++c) sums[static_cast<size_t>(n * C + c)] += per_chunk[static_cast<size_t>((n * chunks + k) * C + c)];
  return sums;
}

}  // namespace

std::vector<double> channel_sums(const VolumeShape& shape, const float* x, int num_threads) {
  // float partials of 64 terms lose < 2^-18 relative
  const int64_t C = shape.channels;
  return channel_sums_impl(shape, x, num_threads, 64, [C](const float* rows, int64_t count, float* partial) {
    std::fill(partial, partial + C, 0.0f);
    for (int64_t p = 0; p < count; ++p)
      for (int64_t c = 0; c < C; ++c) partial[c] += rows[p * C + c];
  });
}

std::vector<double> channel_sums(const VolumeShape& shape, const int8_t* x, int num_threads) {
  // The dispatched kernel's partial sums are exact integers: the same sums in any chunking. Chunks of 256 positions
  // give threads enough items (X3D-XS's 40x40 stage: 25 per clip).
  const auto sum_chunk = kernels::kernel_table().qchannel_sums;
  const int64_t C = shape.channels;
  static_assert(256 <= kernels::qchannel_sums_max_rows);
  return channel_sums_impl(shape, x, num_threads, 256, [C, sum_chunk](const int8_t* rows, int64_t count,
                                                                         float* partial) {
    sum_chunk(rows, C, count, partial);
  });
}

namespace {

// act(x * gate[n]) for each sample: the depthwise kernel with a 1x1x1 kernel of per-channel weights `gate`.
kernels::DwConv3dShape pointwise_scale_shape(const VolumeShape& shape) {
  kernels::DwConv3dShape s;
  s.batch = 1;
  s.channels = shape.channels;
  s.in_t = shape.t;
  s.in_h = shape.h;
  s.in_w = shape.w;
  return s;
}

}  // namespace

namespace {

// out[i] = act(bias[i] + sum over k of w[i * K + k] * v[k]) for i < M (a Linear layer on one vector). Each sum runs in
// k order like the plain loop, so results are bit-identical to it; rows go 8 at a time because a single sum is one
// chain of dependent adds (one row at a time, a 432-channel gate with 32 hidden units took 11.5 us, now 7.4 us).
void linear(const float* w, const float* bias, const float* v, int64_t M, int64_t K, kernels::Activation act,
            float* out) {
  constexpr int64_t kRows = 8;
  int64_t i = 0;
  for (; i + kRows <= M; i += kRows) {
    float acc[kRows];
    for (int64_t r = 0; r < kRows; ++r) acc[r] = bias ? bias[i + r] : 0.0f;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t r = 0; r < kRows; ++r) acc[r] += w[(i + r) * K + k] * v[k];
    for (int64_t r = 0; r < kRows; ++r) out[i + r] = kernels::activate_scalar(acc[r], act);
  }
  for (; i < M; ++i) {
    float acc = bias ? bias[i] : 0.0f;
    for (int64_t k = 0; k < K; ++k) acc += w[i * K + k] * v[k];
    out[i] = kernels::activate_scalar(acc, act);
  }
}

}  // namespace

void squeeze_excitation_gate(const SqueezeExcitation& se, const float* means, float* gate) {
  std::vector<float> hidden(static_cast<size_t>(se.hidden));
  linear(se.fc0_weight, se.fc0_bias, means, se.hidden, se.channels, se.hidden_activation, hidden.data());
  linear(se.fc1_weight, se.fc1_bias, hidden.data(), se.channels, se.hidden, kernels::Activation::sigmoid, gate);
}

void squeeze_excitation_f32(const SqueezeExcitation& se, const VolumeShape& shape, const float* x, float* out,
                            int num_threads) {
  if (!check(se, shape, x, out)) return;
  const int64_t C = shape.channels, per_sample = shape.positions() * C;
  const std::vector<double> sums = channel_sums(shape, x, num_threads);
  std::vector<float> means(static_cast<size_t>(C)), gate(static_cast<size_t>(C));
  kernels::Epilogue epilogue;
  epilogue.activation = se.activation;
  for (int64_t n = 0; n < shape.batch; ++n) {
    for (int64_t c = 0; c < C; ++c) means[static_cast<size_t>(c)] = float(sums[static_cast<size_t>(n * C + c)] / double(shape.positions()));
    squeeze_excitation_gate(se, means.data(), gate.data());
    dwconv3d_f32(pointwise_scale_shape(shape), x + n * per_sample, gate.data(), epilogue, out + n * per_sample,
                 num_threads);
  }
}

void quantized_squeeze_excitation(const SqueezeExcitation& se, const VolumeShape& shape, const int8_t* x,
                                  float input_scale, int32_t input_zero_point, float output_scale,
                                  int32_t output_zero_point, int8_t* out, int num_threads,
                                  const float* output_scales, const int32_t* output_zero_points, float* float_out) {
  if (float_out) {
    quantized_squeeze_excitation(se, shape, x, input_scale, input_zero_point, nullptr, nullptr, float_out, num_threads);
    return;
  }
  if (!check(se, shape, x, out)) return;  // an empty batch returns before any qparams are looked at, as below
  const bool per_channel = output_scales != nullptr;
  if (per_channel != (output_zero_points != nullptr))
    throw std::invalid_argument(
        "quantized_squeeze_excitation: per-channel output scales and zero points go together (both or neither)");
  if (!per_channel) check_quantization(output_scale, output_zero_point, "quantized_squeeze_excitation", "output");
  // The requantization per channel (a per-tensor output repeated).
  const int64_t C = shape.channels;
  const ChannelRequant requant =
      per_channel ? ChannelRequant::checked(output_scales, output_zero_points, C, "quantized_squeeze_excitation")
                  : ChannelRequant::repeated(output_scale, output_zero_point, C);  // none for C <= 0: check() refuses it
  quantized_squeeze_excitation(se, shape, x, input_scale, input_zero_point, &requant, out, nullptr, num_threads);
}

void quantized_squeeze_excitation(const SqueezeExcitation& se, const VolumeShape& shape, const int8_t* x,
                                  float input_scale, int32_t input_zero_point, const ChannelRequant* requant,
                                  int8_t* out, float* float_out, int num_threads) {
  if (!check(se, shape, x, float_out ? static_cast<const void*>(float_out) : out)) return;
  check_quantization(input_scale, input_zero_point, "quantized_squeeze_excitation", "input");
  const int64_t C = shape.channels, positions = shape.positions();
  if (!float_out && (!requant || requant->scales.size() != size_t(C)))
    throw std::invalid_argument("quantized_squeeze_excitation: an int8 output needs the requantization of its " +
                                std::to_string(C) + " channels");
  const std::vector<double> sums = channel_sums(shape, x, num_threads);
  std::vector<float> means(static_cast<size_t>(C)), gate(static_cast<size_t>(C));
  kernels::QScale q;
  q.channels = C;
  q.input_zero_point = input_zero_point;
  q.scale = gate.data();
  q.activation = se.activation;
  if (!float_out) requant->apply_to(q);
  const kernels::KernelTable& kernels = kernels::kernel_table();
  const auto apply = kernels.qscale;
  // The apply pass by table where it pays (kLookupMinPositions, KernelTable::qscale_by_table); bit-identical to the
  // direct pass.
  const bool by_table = !float_out && kernels.qscale_by_table && positions >= kLookupMinPositions &&
                        (se.activation == kernels::Activation::swish || se.activation == kernels::Activation::sigmoid);
  std::vector<int8_t> table(by_table ? size_t(256 * C) : 0);
  for (int64_t n = 0; n < shape.batch; ++n) {
    // The mean of the dequantized values, from the exact integer sum (as QuantizedSqueezeExcitation does).
    for (int64_t c = 0; c < C; ++c)
      means[static_cast<size_t>(c)] =
          float(sums[static_cast<size_t>(n * C + c)] / double(positions) - double(input_zero_point)) * input_scale;
    squeeze_excitation_gate(se, means.data(), gate.data());
    for (float& g : gate) g *= input_scale;  // dequant scale of channel c: the input's scale times its gate
    const int8_t* sample = x + n * positions * C;
    if (by_table) {
      kernels::parallel_for_chunks(C, num_threads, [&](int64_t begin, int64_t end) {
        kernels::qscale_table(apply, q, begin, end, table.data());
      });
      int8_t* dst = out + n * positions * C;
      kernels::parallel_for_chunks(positions, num_threads, [&](int64_t begin, int64_t end) {
        kernels::qchannel_lookup(sample + begin * C, C, end - begin, table.data(), dst + begin * C);
      });
      continue;
    }
    q.input = sample;
    if (float_out)
      q.float_output = float_out + n * positions * C;
    else
      q.output = out + n * positions * C;
    kernels::parallel_for_chunks(positions, num_threads, [&](int64_t begin, int64_t end) { apply(q, begin, end); });
  }
}

}  // namespace pyvideo
