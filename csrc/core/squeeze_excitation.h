// Squeeze-excitation on channels-last buffers in one call: per-sample channel means, the two small fully connected
// layers and the sigmoid gate, then act(x * gate) in one pass (fp32: the depthwise kernel with a 1x1x1 kernel whose
// weights are the gate, so the SIMD activation epilogue is reused; int8: the channel-scaled activation kernel,
// kernels::QScale, which applies the same requantization without the conv's integer accumulation; on large volumes
// with a swish or sigmoid, where the kernel level's vector exp is slow, that kernel fills a [C][256] table of every
// channel's outputs and the elements are looked up: the same bytes, see squeeze_excitation.cpp).
//
//   x, out   [N, T, H, W, C] (fp32), or int8 with per-tensor (scale, zero_point); the int8 output may instead be
//            quantized per channel (scale[c], zero_point[c]): the gate scales each channel differently
//   fc0      weight [hidden, C], bias [hidden] or null   (torch.nn.Linear's layout)
//   fc1      weight [C, hidden], bias [C] or null
//   gate     sigmoid(fc1(hidden_activation(fc0(mean(x)))))
//
// The int8 form reads exact integer channel sums, computes the gate in float and requantizes act(dequant(x) * gate)
// with round-half-even, like QuantizedSqueezeExcitation (within 1 LSB: the gate's float sums may round differently).
#pragma once
#include <cstdint>
#include <vector>

#include "../../kernels/cpu/epilogue.h"

namespace pyvideo {

struct ChannelRequant;

struct SqueezeExcitation {
  int64_t channels = 0, hidden = 0;
  const float* fc0_weight = nullptr;
  const float* fc0_bias = nullptr;
  const float* fc1_weight = nullptr;
  const float* fc1_bias = nullptr;
  kernels::Activation hidden_activation = kernels::Activation::relu;
  kernels::Activation activation = kernels::Activation::identity;
};

struct VolumeShape {  // [N, T, H, W, C]
  int64_t batch = 0, t = 0, h = 0, w = 0, channels = 0;
  int64_t positions() const { return t * h * w; }
};

// Throws std::invalid_argument on inconsistent shapes or null pointers.
void squeeze_excitation_f32(const SqueezeExcitation& se, const VolumeShape& shape, const float* x, float* out,
                            int num_threads);

// output_scales / output_zero_points: per-channel output quantization, [C] each, both or neither (output_scale and
// output_zero_point are then ignored); scales must be positive and finite, zero points in [-128, 127]
// (std::invalid_argument otherwise). float_out: a float32 output instead, act(dequantized x * gate) unquantized
// (`out` may then be null and the output qparams are ignored).
void quantized_squeeze_excitation(const SqueezeExcitation& se, const VolumeShape& shape, const int8_t* x,
                                  float input_scale, int32_t input_zero_point, float output_scale,
                                  int32_t output_zero_point, int8_t* out, int num_threads,
                                  const float* output_scales = nullptr, const int32_t* output_zero_points = nullptr,
                                  float* float_out = nullptr);

// The same with the output's requantization prepared (ChannelRequant::checked or ::repeated, `channels` entries) and
// the input qparams checked here; `requant` may be null with float_out.
void quantized_squeeze_excitation(const SqueezeExcitation& se, const VolumeShape& shape, const int8_t* x,
                                  float input_scale, int32_t input_zero_point, const ChannelRequant* requant,
                                  int8_t* out, float* float_out, int num_threads);

// The gate of one sample from its channel means: gate[C].
void squeeze_excitation_gate(const SqueezeExcitation& se, const float* means, float* gate);

// Per-sample channel sums over all positions, [N * C] doubles (exact for int8; float partial sums of 64 rows added in
// double for float32). Also what global average pooling needs.
std::vector<double> channel_sums(const VolumeShape& shape, const float* x, int num_threads);
std::vector<double> channel_sums(const VolumeShape& shape, const int8_t* x, int num_threads);

}  // namespace pyvideo
