#include "program.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/int8/qconv3d.h"
#include "../../kernels/cpu/parallel.h"
#include "../core/channel_requant.h"
#include "../core/ops.h"
#include "../core/pool.h"
#include "../core/squeeze_excitation.h"
#include "program_impl.h"

namespace pyvideo::runtime {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::conv: return "conv";
    case Kind::squeeze_excitation: return "squeeze_excitation";
    case Kind::global_avg_pool: return "global_avg_pool";
    case Kind::quantize: return "quantize";
    case Kind::qconv: return "quantized_conv";
    case Kind::qsqueeze_excitation: return "quantized_squeeze_excitation";
    case Kind::qglobal_avg_pool: return "quantized_global_avg_pool";
    case Kind::qlinear: return "quantized_linear";
    case Kind::squeeze_excitation_gate: return "squeeze_excitation_gate";
    case Kind::avg_pool: return "avg_pool";
    case Kind::qavg_pool: return "quantized_avg_pool";
    case Kind::dynamic_quantize: return "dynamic_quantize";
    case Kind::max_pool: return "max_pool";
    case Kind::concat: return "concat";
    case Kind::qconcat: return "quantized_concat";
  }
  return "?";
}

namespace {

size_t element_size(DType d) { return d == DType::float32 ? 4 : 1; }

void check_size(const char* what, size_t got, size_t want) {
  if (got != want)
    throw std::invalid_argument(std::string("program: ") + what + " has " + std::to_string(got) + " values, expected " +
                                std::to_string(want));
}

}  // namespace

Program::Program() : impl_(std::make_unique<Impl>()) {}
Program::~Program() = default;

int32_t Program::input_channels() const {
  return impl_->input_channels.empty() ? -1 : int32_t(impl_->input_channels[0]);
}
int32_t Program::num_inputs() const { return impl_->inputs(); }
std::vector<int64_t> Program::inputs_channels() const { return impl_->input_channels; }
int32_t Program::num_values() const { return int32_t(impl_->values.size()); }
int32_t Program::num_steps() const { return int32_t(impl_->steps.size()); }

std::string Program::describe() const {
  std::ostringstream out;
  for (const Step& s : impl_->steps) {
    out << "v" << s.output << " = " << kind_name(s.kind) << (s.depthwise ? "(depthwise)" : "") << "(v" << s.input;
    if (s.second >= 0) out << ", v" << s.second;
    if (s.residual >= 0) out << ", residual=v" << s.residual;
    if (s.input_gate >= 0) out << ", gate=v" << s.input_gate << " act=" << int(s.input_act);
    if (s.row_sums) out << ", row sums";
    if (!s.out_requant.empty()) out << ", per-channel output";
    if ((s.kind == Kind::qconv || s.kind == Kind::qsqueeze_excitation || s.kind == Kind::qconcat) && !s.has_output_q)
      out << ", float output";
    if (impl_->is_dynamic(s.input)) out << ", dynamic input";
    if (impl_->is_dynamic(s.residual)) out << ", dynamic residual";
    out << ") -> " << impl_->values[size_t(s.output)].channels << " channels\n";
  }
  return out.str();
}

int32_t Program::set_input(int64_t channels) {
  if (!impl_->values.empty()) throw std::invalid_argument("program: the input must be declared first");
  return add_input(channels);
}

int32_t Program::add_input(int64_t channels) {
  if (impl_->values.size() != impl_->input_channels.size())
    throw std::invalid_argument("program: inputs must be declared before any step");
  if (channels <= 0) throw std::invalid_argument("program: input channels must be positive");
  if (impl_->inputs() >= 64) throw std::invalid_argument("program: at most 64 inputs");
  impl_->input_channels.push_back(channels);
  impl_->values.push_back({DType::float32, channels});
  return impl_->inputs() - 1;
}

static void check_geometry(const ConvGeometry& g) {
  // Bounds keep every later size computation far from overflow (a model file is untrusted input).
  for (int i = 0; i < 3; ++i)
    if (g.kernel[i] <= 0 || g.kernel[i] > 1024 || g.stride[i] <= 0 || g.stride[i] > 1024 || g.padding[i] < 0 ||
        g.padding[i] > g.kernel[i])
      throw std::invalid_argument(
          "program: kernel sizes and strides must be in [1, 1024] and padding in [0, kernel size]");
}

// The checks and fields a float and an int8 conv step share: an input (and residual, if any) of `dtype`, the
// geometry, and a depthwise conv keeping its channel count. `label` names the conv in errors. (A template only
// because Program::Impl is private to Program and may not be named here.)
template <class ProgramImpl>
static Program::Step conv_step(const ProgramImpl& impl, Kind kind, DType dtype, const char* label, int32_t input,
                               int32_t residual, bool depthwise, const ConvGeometry& g, int64_t out_channels) {
  const char* dtype_name = dtype == DType::int8 ? "int8" : "float32";
  const auto& in = impl.value(input, (std::string(label) + " input").c_str());
  if (in.dtype != dtype)
    throw std::invalid_argument(std::string("program: a ") + label + " needs a" + (dtype == DType::int8 ? "n " : " ") +
                                dtype_name + " input");
  check_geometry(g);
  if (depthwise && out_channels != in.channels)
    throw std::invalid_argument("program: a depthwise conv keeps the channel count");
  if (residual >= 0) {
    const auto& r = impl.value(residual, (std::string(label) + " residual").c_str());
    if (r.dtype != dtype || r.channels != out_channels)
      throw std::invalid_argument(std::string("program: a ") + label + " residual must be " + dtype_name +
                                  " with the output's channels");
  }
  Program::Step s(kind);
  s.input = input;
  s.residual = residual;
  s.depthwise = depthwise;
  s.g = g;
  s.out_channels = out_channels;
  return s;
}

int32_t Program::conv(int32_t input, bool depthwise, const ConvGeometry& g, int64_t out_channels,
                      std::vector<float> weight, std::vector<float> bias, int32_t residual, kernels::Activation act,
                      int32_t input_gate, kernels::Activation input_act) {
  Step s = conv_step(*impl_, Kind::conv, DType::float32, "conv", input, residual, depthwise, g, out_channels);
  const auto& in = impl_->values[size_t(input)];
  const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2];
  check_size("conv weight", weight.size(), size_t(taps * (depthwise ? 1 : in.channels) * out_channels));
  check_size("conv bias", bias.size(), size_t(out_channels));
  if (input_gate >= 0) {
    const auto& gate = impl_->value(input_gate, "conv input gate");
    bool pointwise = !depthwise;
    for (int i = 0; i < 3; ++i) pointwise = pointwise && g.kernel[i] == 1 && g.stride[i] == 1 && g.padding[i] == 0;
    if (!pointwise) throw std::invalid_argument("program: only a pointwise stride-1 conv takes an input gate");
    if (gate.dtype != DType::float32 || gate.channels != in.channels)
      throw std::invalid_argument("program: a conv input gate must be float32 with the input's channels");
  } else if (input_gate != -1 || input_act != kernels::Activation::identity) {
    throw std::invalid_argument("program: a conv without an input gate takes input gate -1 and the identity");
  }
  s.input_gate = input_gate;
  s.input_act = input_act;
  s.weight.assign(weight.begin(), weight.end());  // onto a cache line (see AlignedFloats)
  s.bias = std::move(bias);
  s.act = act;
  return impl_->add(std::move(s), DType::float32, out_channels);
}

// The checked squeeze-excitation layers of an fp32 or int8 SE step.
static Program::Step se_step(Kind kind, int32_t input, int64_t channels, int64_t hidden, std::vector<float> w0,
                             std::vector<float> b0, std::vector<float> w1, std::vector<float> b1,
                             kernels::Activation hidden_act, kernels::Activation act) {
  if (hidden <= 0) throw std::invalid_argument("program: squeeze-excitation needs a positive hidden width");
  check_size("fc0 weight", w0.size(), size_t(hidden * channels));
  check_size("fc1 weight", w1.size(), size_t(hidden * channels));
  if (!b0.empty()) check_size("fc0 bias", b0.size(), size_t(hidden));
  if (!b1.empty()) check_size("fc1 bias", b1.size(), size_t(channels));
  Program::Step s(kind);
  s.input = input;
  s.hidden = hidden;
  s.fc0_weight = std::move(w0);
  s.fc0_bias = std::move(b0);
  s.fc1_weight = std::move(w1);
  s.fc1_bias = std::move(b1);
  s.hidden_act = hidden_act;
  s.act = act;
  return s;
}

int32_t Program::squeeze_excitation(int32_t input, int64_t hidden, std::vector<float> fc0_weight,
                                    std::vector<float> fc0_bias, std::vector<float> fc1_weight,
                                    std::vector<float> fc1_bias, kernels::Activation hidden_act,
                                    kernels::Activation act) {
  const auto& in = impl_->value(input, "squeeze-excitation input");
  if (in.dtype != DType::float32) throw std::invalid_argument("program: squeeze_excitation needs a float32 input");
  Step s = se_step(Kind::squeeze_excitation, input, in.channels, hidden, std::move(fc0_weight), std::move(fc0_bias),
                   std::move(fc1_weight), std::move(fc1_bias), hidden_act, act);
  return impl_->add(std::move(s), DType::float32, in.channels);
}

int32_t Program::squeeze_excitation_gate(int32_t input, int64_t hidden, std::vector<float> fc0_weight,
                                         std::vector<float> fc0_bias, std::vector<float> fc1_weight,
                                         std::vector<float> fc1_bias, kernels::Activation hidden_act) {
  const auto& in = impl_->value(input, "squeeze-excitation gate input");
  if (in.dtype != DType::float32)
    throw std::invalid_argument("program: squeeze_excitation_gate needs a float32 input");
  Step s = se_step(Kind::squeeze_excitation_gate, input, in.channels, hidden, std::move(fc0_weight),
                   std::move(fc0_bias), std::move(fc1_weight), std::move(fc1_bias), hidden_act,
                   kernels::Activation::identity);
  // Value v >= inputs is the output of step v - inputs. A depthwise producer sums its rows while storing them, so
  // the gate needs no pass over the tensor.
  if (input >= impl_->inputs()) {
    Step& producer = impl_->steps[size_t(input - impl_->inputs())];
    if (producer.kind == Kind::conv && producer.depthwise) producer.row_sums = true;
  }
  return impl_->add(std::move(s), DType::float32, in.channels);
}

int32_t Program::global_avg_pool(int32_t input) {
  const auto& in = impl_->value(input, "pool input");
  if (in.dtype != DType::float32) throw std::invalid_argument("program: global_avg_pool needs a float32 input");
  Step s(Kind::global_avg_pool);
  s.input = input;
  return impl_->add(std::move(s), DType::float32, in.channels);
}

static void check_quant(const QuantParams& q, const char* what) {
  check_quantization(q.scale, q.zero_point, "program", what);
}

// A concat step of `first` and `second`, both of `dtype` and static (a dynamic value's qparams exist only in a run);
// `label` names the step in errors.
template <class ProgramImpl>
static Program::Step concat_step(const ProgramImpl& impl, Kind kind, DType dtype, const char* label, int32_t first,
                                 int32_t second) {
  const auto& a = impl.value(first, (std::string(label) + " input").c_str());
  const auto& b = impl.value(second, (std::string(label) + " input").c_str());
  if (a.dtype != dtype || b.dtype != dtype || a.dynamic || b.dynamic)
    throw std::invalid_argument(std::string("program: ") + label + " needs two " +
                                (dtype == DType::int8 ? "int8 inputs with static qparams" : "float32 inputs"));
  Program::Step s(kind);
  s.input = first;
  s.second = second;
  s.out_channels = a.channels + b.channels;
  return s;
}

int32_t Program::concat(int32_t first, int32_t second) {
  Step s = concat_step(*impl_, Kind::concat, DType::float32, "concat", first, second);
  const int64_t channels = s.out_channels;
  return impl_->add(std::move(s), DType::float32, channels);
}

int32_t Program::quantized_concat(int32_t first, int32_t second, QuantParams first_q, QuantParams second_q,
                                  bool has_output_q, QuantParams out) {
  Step s = concat_step(*impl_, Kind::qconcat, DType::int8, "quantized_concat", first, second);
  check_quant(first_q, "first input");
  check_quant(second_q, "second input");
  if (has_output_q) check_quant(out, "output");
  s.in = first_q;
  s.residual_q = second_q;  // the second input's (model files keep `second` in the residual field)
  s.has_output_q = has_output_q;
  s.out = has_output_q ? out : QuantParams{};
  const int64_t channels = s.out_channels;
  return impl_->add(std::move(s), has_output_q ? DType::int8 : DType::float32, channels);
}

int32_t Program::quantize(int32_t input, QuantParams out) {
  const auto& in = impl_->value(input, "quantize input");
  if (in.dtype != DType::float32) throw std::invalid_argument("program: quantize needs a float32 input");
  check_quant(out, "output");
  Step s(Kind::quantize);
  s.input = input;
  s.out = out;
  return impl_->add(std::move(s), DType::int8, in.channels);
}

// The smallest per-sample scale a dynamic_quantize step gives (float(1e-8)): a weight scale times it must stay a
// normal float, so that every run's dequant scale is positive (no division by zero, nor by a denormal that a
// flush-to-zero mode would zero) and the bias quotients stay finite.
constexpr float kMinSampleScale = float(1e-8);

int32_t Program::dynamic_quantize(int32_t input, float min_scale) {
  const auto& in = impl_->value(input, "dynamic quantize input");
  if (in.dtype != DType::float32) throw std::invalid_argument("program: dynamic_quantize needs a float32 input");
  if (!std::isfinite(min_scale) || !(min_scale >= kMinSampleScale))
    throw std::invalid_argument("program: dynamic_quantize needs a finite minimum scale of at least 1e-8");
  Step s(Kind::dynamic_quantize);
  s.input = input;
  s.out = {min_scale, 0};  // the minimum scale (the output's qparams are per sample and run)
  return impl_->add(std::move(s), DType::int8, in.channels, /*dynamic=*/true);
}

// A qconv / qlinear's per-sample requantization inputs: required ([Co] each) for a dynamic input, and rejected for a
// static one (the step would silently not use them).
static void check_dynamic_requant(bool dynamic_input, const std::vector<float>& weight_scale,
                                  const std::vector<float>& float_bias, int64_t out_channels, const char* label) {
  if (!dynamic_input) {
    if (!weight_scale.empty() || !float_bias.empty())
      throw std::invalid_argument(std::string("program: a ") + label +
                                  " with a static input takes no weight_scale or float_bias (they are for dynamic "
                                  "inputs only)");
    return;
  }
  if (weight_scale.empty() || float_bias.empty())
    throw std::invalid_argument(std::string("program: a ") + label +
                                " with a dynamic input needs weight_scale and float_bias");
  check_size("weight scale", weight_scale.size(), size_t(out_channels));
  check_size("float bias", float_bias.size(), size_t(out_channels));
  for (size_t c = 0; c < weight_scale.size(); ++c) {
    if (!std::isfinite(weight_scale[c]) || !(weight_scale[c] * kMinSampleScale >= std::numeric_limits<float>::min()))
      throw std::invalid_argument("program: weight scale " + std::to_string(c) +
                                  " must be finite and at least 1.2e-30 (times the smallest per-sample scale, 1e-8, "
                                  "it must be a normal float)");
    if (!std::isfinite(float_bias[c]))
      throw std::invalid_argument("program: float bias " + std::to_string(c) + " is not finite");
  }
}

// The largest |int32 bias| of each output channel that no int8 kernel's int32 accumulation can overflow with. The
// kernels add to the bias terms of at most 255 * |w| each (x - zp, or x + 128 with a zero-point correction of at most
// 255 * |sum of w|), so 2^31 - 1 - 512 * sum(|w|) is safe for every ISA's form. channel_of(k): the output channel of
// weight k. A static bias must lie within it; a dynamic input's per-sample bias is clamped to it.
template <class ChannelOf>
static std::vector<int32_t> bias_limits(const std::vector<int8_t>& weight, int64_t channels, ChannelOf channel_of) {
  std::vector<int64_t> magnitude(static_cast<size_t>(channels), 0);
  for (size_t k = 0; k < weight.size(); ++k) magnitude[channel_of(k)] += std::abs(int32_t(weight[k]));
  std::vector<int32_t> limits(static_cast<size_t>(channels));
  for (size_t c = 0; c < limits.size(); ++c)
    limits[c] = int32_t(std::max<int64_t>(0, int64_t{2147483647} - 512 * magnitude[c]));
  return limits;
}

static void check_static_bias(const std::vector<int32_t>& bias, const std::vector<int32_t>& limits) {
  for (size_t c = 0; c < bias.size(); ++c)
    if (std::abs(int64_t(bias[c])) > limits[c])
      throw std::invalid_argument("program: int32 bias " + std::to_string(c) + " (" + std::to_string(bias[c]) +
                                  ") is beyond +-" + std::to_string(limits[c]) +
                                  ", where the int8 kernels' int32 sums could overflow");
}

// A step's per-channel output quantization: none (both empty), or `channels` valid qparams, on an int8 output only;
// returned in the kernels' form.
static ChannelRequant check_channel_outputs(const std::vector<float>& scales, const std::vector<int32_t>& zero_points,
                                           bool has_output_q, int64_t channels, const char* label) {
  if (scales.empty() && zero_points.empty()) return {};
  if (!has_output_q)
    throw std::invalid_argument(std::string("program: a float32 ") + label +
                                " output takes no per-channel quantization");
  check_size("per-channel output scales", scales.size(), size_t(channels));
  check_size("per-channel output zero points", zero_points.size(), size_t(channels));
  return ChannelRequant::checked(scales.data(), zero_points.data(), channels, "program");
}

int32_t Program::quantized_conv(int32_t input, bool depthwise, const ConvGeometry& g, int64_t out_channels,
                                std::vector<int8_t> weight, std::vector<int32_t> weight_sum, std::vector<int32_t> bias,
                                std::vector<float> dequant_scale, QuantParams in_q, int32_t residual,
                                QuantParams residual_q, kernels::Activation act, QuantParams out,
                                bool has_output_q, std::vector<float> weight_scale, std::vector<float> float_bias,
                                std::vector<float> out_scales, std::vector<int32_t> out_zero_points) {
  Step s = conv_step(*impl_, Kind::qconv, DType::int8, "quantized conv", input, residual, depthwise, g, out_channels);
  const auto& in = impl_->values[size_t(input)];
  const bool dynamic_input = in.dynamic;
  if (!dynamic_input) check_quant(in_q, "input");
  check_dynamic_requant(dynamic_input, weight_scale, float_bias, out_channels, "quantized conv");
  s.out_requant = check_channel_outputs(out_scales, out_zero_points, has_output_q, out_channels, "quantized conv");
  if (has_output_q && out_scales.empty()) check_quant(out, "output");
  const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2];
  const size_t co = size_t(out_channels);
  if (depthwise) {
    if (taps > 500) throw std::invalid_argument("program: int8 depthwise kernels of more than 500 taps are not supported");
    check_size("int8 depthwise weight", weight.size(), size_t(taps * out_channels));
    s.bias_limit = bias_limits(weight, out_channels, [co](size_t k) { return k % co; });  // [taps, C]
  } else {
    check_size("int8 packed weight", weight.size(), size_t(taps * ((in.channels + 3) / 4) * out_channels * 4));
    check_size("int8 weight sums", weight_sum.size(), size_t(out_channels));
    // The kernels' zero-point correction multiplies these sums: one that does not match its weights (a damaged
    // model file) would give wrong outputs, or overflow int32 inside the kernels.
    std::vector<int64_t> sums(size_t(out_channels), 0);
    for (size_t k = 0; k < weight.size(); ++k) sums[(k / 4) % size_t(out_channels)] += weight[k];
    for (int64_t c = 0; c < out_channels; ++c)
      if (sums[size_t(c)] != weight_sum[size_t(c)])
        throw std::invalid_argument("program: int8 weight sum " + std::to_string(c) + " (" +
                                    std::to_string(weight_sum[size_t(c)]) + ") is not the sum of that channel's "
                                    "weights (" + std::to_string(sums[size_t(c)]) + ")");
    s.bias_limit = bias_limits(weight, out_channels, [co](size_t k) { return (k / 4) % co; });  // [.., Co, 4]
  }
  if (dynamic_input) {  // each run derives them per sample
    s.weight_scale = std::move(weight_scale);
    s.bias = std::move(float_bias);
  } else {
    check_size("int32 bias", bias.size(), size_t(out_channels));
    check_static_bias(bias, s.bias_limit);
    check_size("dequant scale", dequant_scale.size(), size_t(out_channels));
    s.bias_float.assign(bias.begin(), bias.end());
    s.qbias = std::move(bias);
    s.dequant_scale = std::move(dequant_scale);
    s.in = in_q;
  }
  if (residual >= 0 && !impl_->is_dynamic(residual)) check_quant(residual_q, "residual");
  s.qweight.assign(weight.begin(), weight.end());  // onto a cache line (see AlignedBytes)
  s.weight_sum = std::move(weight_sum);
  s.residual_q = residual_q;
  s.act = act;
  s.out = out;
  s.has_output_q = has_output_q;
  return impl_->add(std::move(s), has_output_q ? DType::int8 : DType::float32, out_channels);
}

int32_t Program::quantized_squeeze_excitation(int32_t input, int64_t hidden, std::vector<float> fc0_weight,
                                              std::vector<float> fc0_bias, std::vector<float> fc1_weight,
                                              std::vector<float> fc1_bias, kernels::Activation hidden_act,
                                              kernels::Activation act, QuantParams in_q, QuantParams out,
                                              std::vector<float> out_scales, std::vector<int32_t> out_zero_points,
                                              bool has_output_q) {
  const auto& in = impl_->value(input, "quantized squeeze-excitation input");
  if (in.dtype != DType::int8) throw std::invalid_argument("program: quantized_squeeze_excitation needs an int8 input");
  if (!in.dynamic) check_quant(in_q, "input");
  ChannelRequant out_requant =
      check_channel_outputs(out_scales, out_zero_points, has_output_q, in.channels, "squeeze-excitation");
  if (has_output_q && out_scales.empty()) check_quant(out, "output");
  Step s = se_step(Kind::qsqueeze_excitation, input, in.channels, hidden, std::move(fc0_weight), std::move(fc0_bias),
                   std::move(fc1_weight), std::move(fc1_bias), hidden_act, act);
  if (!in.dynamic) s.in = in_q;
  s.out = out;
  s.out_requant = std::move(out_requant);
  s.has_output_q = has_output_q;
  return impl_->add(std::move(s), has_output_q ? DType::int8 : DType::float32, in.channels);
}

// The checks and fields the int8 pools (global and fixed-kernel) share: an int8 input, its qparams, and either a
// float32 output or its qparams. Returns the step and the output's dtype. (A template for the reason conv_step is.)
template <class ProgramImpl>
static std::pair<Program::Step, DType> quantized_pool_step(const ProgramImpl& impl, Kind kind, int32_t input,
                                                           QuantParams in_q, bool has_output_q, QuantParams out) {
  const auto& in = impl.value(input, "quantized pool input");
  if (in.dtype != DType::int8)
    throw std::invalid_argument(std::string("program: ") + kind_name(kind) + " needs an int8 input");
  if (!in.dynamic) check_quant(in_q, "input");
  if (has_output_q) check_quant(out, "output");
  Program::Step s(kind);
  s.input = input;
  if (!in.dynamic) s.in = in_q;
  s.has_output_q = has_output_q;
  s.out = out;
  return {std::move(s), has_output_q ? DType::int8 : DType::float32};
}

int32_t Program::quantized_global_avg_pool(int32_t input, QuantParams in_q, bool has_output_q, QuantParams out) {
  auto [s, dtype] = quantized_pool_step(*impl_, Kind::qglobal_avg_pool, input, in_q, has_output_q, out);
  return impl_->add(std::move(s), dtype, impl_->values[size_t(input)].channels);
}

// The window of a fixed-kernel pool step (no padding: the kernels average whole windows only).
static PoolWindow pool_window(const ConvGeometry& g) {
  check_geometry(g);
  if (g.padding[0] != 0 || g.padding[1] != 0 || g.padding[2] != 0)
    throw std::invalid_argument("program: average pools take no padding");
  PoolWindow w;
  for (int d = 0; d < 3; ++d) {
    w.kernel[d] = g.kernel[d];
    w.stride[d] = g.stride[d];
  }
  return w;
}

// A pool step (avg_pool on float32; max_pool on float32 or int8 codes, whose dtype its output keeps) whose geometry
// `window` checks (and would turn into the kernel's window).
template <class ProgramImpl>
static int32_t add_pool(ProgramImpl& impl, Kind kind, int32_t input, const ConvGeometry& g,
                        PoolWindow (*window)(const ConvGeometry&), bool takes_int8) {
  const auto& in = impl.value(input, "pool input");
  if (in.dtype != DType::float32 && !(takes_int8 && in.dtype == DType::int8))
    throw std::invalid_argument(std::string("program: ") + kind_name(kind) + " needs a float32 input");
  window(g);
  Program::Step s(kind);
  s.input = input;
  s.g = g;
  const int64_t channels = in.channels;
  const DType dtype = in.dtype;
  return impl.add(std::move(s), dtype, channels);
}

int32_t Program::avg_pool(int32_t input, const ConvGeometry& g) {
  return add_pool(*impl_, Kind::avg_pool, input, g, pool_window, false);
}

// The window of a max pool step: padded, at most half the kernel in each dim (as torch; every window then holds a
// real element: PoolWindow::check).
static PoolWindow max_pool_window(const ConvGeometry& g) {
  check_geometry(g);
  PoolWindow w;
  for (int d = 0; d < 3; ++d) {
    w.kernel[d] = g.kernel[d];
    w.stride[d] = g.stride[d];
    w.padding[d] = g.padding[d];
  }
  w.check();
  return w;
}

// A max pool step on float32 or on int8 codes (of one per-tensor scale and zero point, which it keeps: the max of the
// codes is the code of the max).
int32_t Program::max_pool(int32_t input, const ConvGeometry& g) {
  return add_pool(*impl_, Kind::max_pool, input, g, max_pool_window, true);
}

int32_t Program::quantized_avg_pool(int32_t input, const ConvGeometry& g, QuantParams in_q, bool has_output_q,
                                    QuantParams out) {
  auto [s, dtype] = quantized_pool_step(*impl_, Kind::qavg_pool, input, in_q, has_output_q, out);
  pool_window(g);
  s.g = g;
  return impl_->add(std::move(s), dtype, impl_->values[size_t(input)].channels);
}

void Program::set_profiling(bool on) { impl_->profiling = on; }

void Program::set_fuse_pointwise_depthwise(bool on, bool every_pair) {
  impl_->fusion = !on ? Impl::Fusion::off : every_pair ? Impl::Fusion::every_pair : Impl::Fusion::where_it_pays;
}
bool Program::fuse_pointwise_depthwise() const { return impl_->fusion != Impl::Fusion::off; }

std::vector<Program::StepProfile> Program::last_profile() const { return impl_->profile; }

int32_t Program::quantized_linear(int32_t input, int64_t out_features, std::vector<int8_t> weight,
                                  std::vector<int32_t> bias, std::vector<float> dequant_scale, QuantParams in_q,
                                  kernels::Activation act, std::vector<float> weight_scale,
                                  std::vector<float> float_bias) {
  const auto& in = impl_->value(input, "quantized linear input");
  if (in.dtype != DType::int8) throw std::invalid_argument("program: quantized_linear needs an int8 input");
  if (out_features <= 0) throw std::invalid_argument("program: quantized_linear needs a positive output width");
  if (in.channels >= 66000) throw std::invalid_argument("program: quantized_linear sums would overflow int32");
  check_size("int8 linear weight", weight.size(), size_t(out_features * in.channels));
  check_dynamic_requant(in.dynamic, weight_scale, float_bias, out_features, "quantized linear");
  Step s(Kind::qlinear);
  const size_t k_in = size_t(in.channels);
  s.bias_limit = bias_limits(weight, out_features, [k_in](size_t k) { return k / k_in; });  // [M, K]
  if (in.dynamic) {  // each run derives them per sample
    s.weight_scale = std::move(weight_scale);
    s.bias = std::move(float_bias);
  } else {
    check_quant(in_q, "input");
    check_size("int32 bias", bias.size(), size_t(out_features));
    check_static_bias(bias, s.bias_limit);
    check_size("dequant scale", dequant_scale.size(), size_t(out_features));
    s.qbias = std::move(bias);
    s.dequant_scale = std::move(dequant_scale);
    s.in = in_q;
  }
  s.input = input;
  s.out_channels = out_features;
  s.qweight.assign(weight.begin(), weight.end());  // onto a cache line (see AlignedBytes)
  s.act = act;
  return impl_->add(std::move(s), DType::float32, out_features);
}

void Program::set_outputs(std::vector<int32_t> values, std::vector<Layout> layouts) {
  if (values.empty()) throw std::invalid_argument("program: at least one output is needed");
  if (layouts.size() != values.size()) throw std::invalid_argument("program: one layout per output is needed");
  for (int32_t v : values)
    if (impl_->value(v, "output").dynamic)
      throw std::invalid_argument("program: v" + std::to_string(v) +
                                  " is dynamically quantized (its qparams exist only inside a run): it cannot be an "
                                  "output");
  for (Layout l : layouts)
    if (uint8_t(l) > uint8_t(Layout::vector)) throw std::invalid_argument("program: unknown output layout");
  impl_->outputs = std::move(values);
  impl_->layouts = std::move(layouts);
}

std::vector<Program::Layout> Program::output_layouts() const { return impl_->layouts; }

namespace {

int64_t conv_extent(int64_t size, int64_t k, int64_t s, int64_t p, size_t step) {
  if (size + 2 * p < k)
    throw std::invalid_argument("program step " + std::to_string(step) + ": kernel " + std::to_string(k) +
                                " is larger than its padded input (" + std::to_string(size) + " + 2*" +
                                std::to_string(p) + ")");
  return (size + 2 * p - k) / s + 1;
}

// Whether ConvDepthwise can fuse `conv`, an fp32 dense conv, into `dw`, an fp32 depthwise conv reading its output.
bool fusable(const Program::Step& conv, const Program::Step& dw) {
  return conv.kind == Kind::conv && !conv.depthwise && conv.residual < 0 && conv.input_gate < 0 &&
         dw.kind == Kind::conv && dw.depthwise && dw.input == conv.output;
}

// Whether fusing pays. Measured with bench/fusion.py (1 thread, AVX-512 with a 2 MB L2 a core; each pair fused vs
// its two separate steps). Fusing saves the producer output's trip through memory (written, then read back), which
// matters once that output is larger than the L2.
//
// Pointwise producers (EfficientX3d XS 4x160x160 and S 13x160x160) gain mostly where the depthwise conv downsamples
// (the pointwise output is then 4x the depthwise output): stride-2 pairs on 80x80 (XS 5.3 MB 1.51x, S 17 MB 1.56x),
// 40x40 (XS 2.6 MB 1.18x, S 8.6 MB 1.45x) and S's 20x20 (4.3 MB 1.18x). Stride-1 pairs are level even at 4.3 MB
// (S 40x40: 0.99-1.04x); smaller pairs lose up to 15% (rows of 5-10 columns make small kernel calls): S's 10x10
// stride-2 (2.1 MB) 0.85x, the 10x10 and 5x5 stride-1 ones 0.82-1.02x. Whole programs, this rule vs fusing every
// pair: XS 1.040x vs 1.020x, S 1.073x vs 1.030x the unfused time.
//
// Dense producers: X3D's stem (1x3x3 stride-2 conv of the RGB input, 3 -> 24 channels, then the temporal 5x1x1
// depthwise conv) gains less, because its dense conv (K = 27) is compute-bound and the depthwise output is written
// either way. The stem program alone (step times; 3 runs at 1 thread, 2 at 2 threads with OMP_WAIT_POLICY=PASSIVE):
// 4x64x64 (conv output 0.38 MB) 0.95-0.98x at 1 thread, 0.95-0.98x at 2; 4x112x112 (1.2 MB) 0.97-1.03x, 1.11-1.12x;
// 4x160x160 (2.3 MB) 1.02-1.06x, 1.11-1.20x; 13x112x112 (3.7 MB) 1.06-1.09x, 1.07-1.09x; 13x160x160 (7.6 MB)
// 1.09-1.11x, 1.09-1.13x; 16x224x224 (18 MB) 1.07-1.18x, 1.10-1.21x. Inside the whole programs at 1 thread: XS
// 1.08x, S 1.09x (0.08 and 0.3 ms: about 0.6% of either program).
// Hence: fused from 2 MB of conv output (both stems at 160x160).
bool fusion_pays(const Program::Step& conv, const Shape5& mid, const Program::Step& dw) {
  const double bytes = double(mid.numel()) * sizeof(float);
  if (!geometry<kernels::Conv3dShape>(conv.g, mid).is_pointwise()) return bytes >= 2.0 * (1 << 20);
  return bytes >= 2.5 * (1 << 20) && dw.g.stride[1] * dw.g.stride[2] > 1;
}

VolumeShape volume(const Shape5& s) { return {s.n, s.t, s.h, s.w, s.c}; }

SqueezeExcitation se_layers(const Program::Step& s, int64_t channels) {
  SqueezeExcitation se;
  se.channels = channels;
  se.hidden = s.hidden;
  se.fc0_weight = s.fc0_weight.data();
  se.fc0_bias = s.fc0_bias.empty() ? nullptr : s.fc0_bias.data();
  se.fc1_weight = s.fc1_weight.data();
  se.fc1_bias = s.fc1_bias.empty() ? nullptr : s.fc1_bias.data();
  se.hidden_activation = s.hidden_act;
  se.activation = s.act;
  return se;
}

// The qparams of a sample whose range (0 included) is [lo, hi], as qparams.sample_qparams computes them: the
// division, max and zero point in double, the scale rounded to float32, the zero point rounded half to even (the
// default rounding mode). -128 - lo / scale lies in [-128, 127] up to the scale's rounding, so the clamp only guards.
QuantParams sample_qparams(float lo, float hi, float min_scale) {
  const double low = std::min(double(lo), 0.0), high = std::max(double(hi), 0.0);
  const float scale = float(std::max((high - low) / 255.0, double(min_scale)));
  const double zero_point = std::nearbyint(-128.0 - low / double(scale));
  return {scale, int32_t(std::min(127.0, std::max(-128.0, zero_point)))};
}

// x[0, count) quantized with q into dst, over every thread (the quantize step, and each sample of dynamic_quantize).
// Returns false when some value was NaN or +-inf (no int8 code stands for it; the kernel saturates it).
bool quantize_parallel(const float* src, int8_t* dst, int64_t count, const QuantParams& q, int num_threads) {
  const kernels::QuantizeF32Fn quantize = kernels::kernel_table().quantize_f32;
  std::atomic<bool> finite{true};
  kernels::parallel_for_chunks(count, num_threads, [&](int64_t begin, int64_t end) {
    if (!(quantize(src + begin, dst + begin, end - begin, q.scale, float(q.zero_point)) == 0.0f))
      finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

// quantize_parallel for [N, C, T, H, W] input (the caller's, not yet in channels-last order): writes the int8
// [N, T, H, W, C] tensor directly, so a program whose input only a quantize step reads skips the float copy to
// channels-last. Threads take whole (n, t, h) rows, in blocks of about 8K floats: a block is interleaved into a
// float scratch that stays in L1 / L2 and quantized from there by the vector kernel in one call (a call per plane
// row would leave each row's last partial group of vectors to the dividing scalar tail). The same bytes as the copy
// followed by quantize_parallel.
bool quantize_ncthw_parallel(const float* src, int8_t* dst, const Shape5& x, const QuantParams& q, int num_threads) {
  const kernels::QuantizeF32Fn quantize = kernels::kernel_table().quantize_f32;
  const kernels::ChannelsLastRowFn interleave = kernels::kernel_table().channels_last_row;
  const int64_t rows = x.n * x.t * x.h, plane = x.t * x.h * x.w, C = x.c, W = x.w, row = W * C;
  const int64_t block = std::max<int64_t>(1, 8192 / row);
  std::atomic<bool> finite{true};
  kernels::parallel_for_chunks(rows, num_threads, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(size_t(std::min(block, end - begin) * row));
    float non_finite = 0.0f;
    for (int64_t r0 = begin; r0 < end; r0 += block) {
      const int64_t r1 = std::min(end, r0 + block);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / (x.t * x.h), th = r % (x.t * x.h);
        interleave(src + n * C * plane + th * W, plane, C, W, scratch.data() + (r - r0) * row);
      }
      non_finite += quantize(scratch.data(), dst + r0 * row, (r1 - r0) * row, q.scale, float(q.zero_point));
    }
    if (!(non_finite == 0.0f)) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

// A dynamic_quantize step (step number `step`): each sample's qparams from its range, into `qparams` ([N]), then the
// sample quantized with them as the static quantize step does. Sample by sample, range pass then quantize pass, so
// the second pass reads a sample the first has just brought into cache (a batch's float tensor is often larger than
// L2 where one sample's is not); both passes use every thread, also for one sample. `ncthw`: src is the caller's
// [N, C, T, H, W] input (a sample's range does not depend on the order of its values).
void quantize_per_sample(const float* src, int8_t* dst, const Shape5& x, float min_scale, size_t step,
                         int num_threads, std::vector<QuantParams>& qparams, bool ncthw = false) {
  const int64_t count = x.numel() / x.n;  // per sample
  // Pieces of a sample: enough for every thread to have one, but no smaller than 16K floats (a few microseconds of
  // work, well above the cost of a thread's start).
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(num_threads, count / 16384));
  const kernels::RangeF32Fn range = kernels::kernel_table().range_f32;
  std::vector<kernels::QuantRange> ranges(static_cast<size_t>(parts));
  qparams.resize(size_t(x.n));
  for (int64_t n = 0; n < x.n; ++n) {
    const float* sample = src + n * count;
    kernels::parallel_for_chunks(parts, num_threads, [&](int64_t begin, int64_t end) {
      for (int64_t part = begin; part < end; ++part) {
        const int64_t from = count * part / parts, to = count * (part + 1) / parts;
        ranges[size_t(part)] = range(sample + from, to - from);
      }
    });
    kernels::QuantRange r;
    for (const kernels::QuantRange& piece : ranges) {
      r.lo = std::min(r.lo, piece.lo);
      r.hi = std::max(r.hi, piece.hi);
      r.non_finite += piece.non_finite;
    }
    if (!(r.non_finite == 0.0f))
      throw std::invalid_argument("program step " + std::to_string(step) + " (dynamic_quantize): sample " +
                                  std::to_string(n) + " holds non-finite values");
    qparams[size_t(n)] = sample_qparams(r.lo, r.hi, min_scale);
    if (ncthw)
      quantize_ncthw_parallel(sample, dst + n * count, Shape5{1, x.t, x.h, x.w, x.c}, qparams[size_t(n)], num_threads);
    else
      quantize_parallel(sample, dst + n * count, count, qparams[size_t(n)], num_threads);
  }
}

// The qparams and requantization arrays an int8 step reads in one kernel call: the step's static ones, or, for a
// step reading a dynamic value, one sample's.
struct StepQuant {
  QuantParams in, residual;
  const int32_t* qbias = nullptr;
  const float* bias_float = nullptr;
  const float* dequant_scale = nullptr;
};

StepQuant static_quant(const Program::Step& s) {
  return {s.in, s.residual_q, s.qbias.data(), s.bias_float.data(), s.dequant_scale.data()};
}

// A qconv / qlinear's requantization arrays for a dynamic input quantized with `in` (see Program::quantized_conv).
struct SampleRequant {
  std::vector<int32_t> qbias;
  std::vector<float> bias_float, dequant_scale;

  void compute(const Program::Step& s, QuantParams in) {
    const size_t channels = s.weight_scale.size();
    qbias.resize(channels);
    bias_float.resize(channels);
    dequant_scale.resize(channels);
    for (size_t c = 0; c < channels; ++c) {
      dequant_scale[c] = in.scale * s.weight_scale[c];  // >= FLT_MIN: the builder bounds the weight scales
      const double q = std::nearbyint(double(s.bias[c]) / double(dequant_scale[c]));
      const double limit = double(s.bias_limit[c]);  // a narrow sample range can make q exceed any int32
      qbias[c] = int32_t(std::min(limit, std::max(-limit, q)));
      bias_float[c] = float(qbias[c]);
    }
  }
};

// Runs an int8 step that can read a dynamic value (reads_dynamic) on x with the qparams q.
void run_int8_step(const Program::Step& s, const Shape5& x, const void* in, const void* res, void* out,
                   const StepQuant& q, int num_threads) {
  switch (s.kind) {
    case Kind::qsqueeze_excitation: {
      // The per-channel requantization was checked and built with the step; a per-tensor one is its qparams repeated.
      const ChannelRequant per_tensor = s.has_output_q && s.out_requant.empty()
                                            ? ChannelRequant::repeated(s.out.scale, s.out.zero_point, x.c)
                                            : ChannelRequant{};
      pyvideo::quantized_squeeze_excitation(
          se_layers(s, x.c), volume(x), static_cast<const int8_t*>(in), q.in.scale, q.in.zero_point,
          !s.has_output_q ? nullptr : s.out_requant.empty() ? &per_tensor : &s.out_requant,
          s.has_output_q ? static_cast<int8_t*>(out) : nullptr, s.has_output_q ? nullptr : static_cast<float*>(out),
          num_threads);
      break;
    }
    case Kind::qglobal_avg_pool: {
      // As QuantizedGlobalAvgPool: the exact sum of (q - zp), times float32(scale) / float32(count), in float32.
      const std::vector<double> sums = channel_sums(volume(x), static_cast<const int8_t*>(in), num_threads);
      const int64_t count = x.t * x.h * x.w;
      const float per_element = q.in.scale / float(count);
      for (size_t k = 0; k < sums.size(); ++k) {
        const float mean = float(sums[k] - double(q.in.zero_point) * double(count)) * per_element;
        if (!s.has_output_q) {
          static_cast<float*>(out)[k] = mean;
        } else {
          const float v = std::nearbyint(mean / s.out.scale) + float(s.out.zero_point);
          static_cast<int8_t*>(out)[k] = int8_t(std::min(127.0f, std::max(-128.0f, v)));
        }
      }
      break;
    }
    case Kind::qavg_pool:
      quantized_avg_pool3d(volume(x), pool_window(s.g), static_cast<const int8_t*>(in), q.in.scale, q.in.zero_point,
                           s.has_output_q, s.out.scale, s.out.zero_point, out, num_threads);
      break;
    case Kind::qlinear: {
      const int8_t* src = static_cast<const int8_t*>(in);
      float* dst = static_cast<float*>(out);
      const int64_t K = x.c, M = s.out_channels, rows = x.n * x.t * x.h * x.w;
      const kernels::QLinearDotFn dot = kernels::kernel_table().qlinear_dot;
      // Split over (row, output feature): a classifier has one row per clip, so rows alone would use one thread.
      kernels::parallel_for_chunks(rows * M, num_threads, [&](int64_t begin, int64_t end) {
        std::vector<int16_t> centered(static_cast<size_t>(K));
        std::vector<int32_t> acc(static_cast<size_t>(M));
        while (begin < end) {  // a chunk may span rows
          const int64_t row = begin / M, m_begin = begin % M, m_end = std::min(M, m_begin + (end - begin));
          // x - zp fits int16; products and their sums stay exact in int32 (|sum| <= K * 255 * 127, K < 66000)
          for (int64_t k = 0; k < K; ++k) centered[size_t(k)] = int16_t(src[row * K + k] - q.in.zero_point);
          dot(centered.data(), K, s.qweight.data(), m_begin, m_end, acc.data());
          for (int64_t m = m_begin; m < m_end; ++m)
            dst[row * M + m] = kernels::activate_scalar(float(acc[size_t(m)] + q.qbias[m]) * q.dequant_scale[m], s.act);
          begin += m_end - m_begin;
        }
      });
      break;
    }
    case Kind::qconv: {
      kernels::Requant r;
      r.input_zero_point = q.in.zero_point;
      r.bias = q.qbias;
      r.bias_float = q.bias_float;
      r.dequant_scale = q.dequant_scale;
      r.residual = static_cast<const int8_t*>(res);
      r.residual_scale = q.residual.scale;
      r.residual_zero_point = q.residual.zero_point;
      r.activation = s.act;
      r.output_scale = s.out.scale;
      r.output_zero_point = s.out.zero_point;
      s.out_requant.apply_to(r);
      if (!s.has_output_q) r.float_output = static_cast<float*>(out);  // the int8 output is then never written
      if (s.depthwise) {
        auto shape = geometry<kernels::DwConv3dShape>(s.g, x);
        shape.channels = x.c;
        qdwconv3d(shape, static_cast<const int8_t*>(in), s.qweight.data(), r, static_cast<int8_t*>(out), num_threads);
      } else {
        auto shape = geometry<kernels::Conv3dShape>(s.g, x);
        shape.in_channels = x.c;
        shape.out_channels = s.out_channels;
        qconv3d(shape, static_cast<const int8_t*>(in), s.qweight.data(), s.weight_sum.data(), r,
                static_cast<int8_t*>(out), num_threads);
      }
      break;
    }
    default:
      throw std::logic_error(std::string("run_int8_step: ") + kind_name(s.kind) + " is not an int8 step");
  }
}

// Channel concatenation of channels-last rows: out[p] = (a[p] (ca floats), b[p] (cb floats)) for `positions` p.
void concat_channels(const float* a, int64_t ca, const float* b, int64_t cb, float* out, int64_t positions,
                     int num_threads) {
  kernels::parallel_for_chunks(positions, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      std::copy_n(a + q * ca, ca, out + q * (ca + cb));
      std::copy_n(b + q * cb, cb, out + q * (ca + cb) + ca);
    }
  });
}

// out[p] = (table_a[a[p]] (ca values), table_b[b[p]] (cb values)) for `positions` p: two int8 tensors concatenated
// along the channels through a lookup per input (an int8 table that is the identity is a copy).
template <class T>
void concat_lookup(const int8_t* a, int64_t ca, const std::array<T, 256>& table_a, const int8_t* b, int64_t cb,
                   const std::array<T, 256>& table_b, T* out, int64_t positions, int num_threads) {
  auto identity = [](const std::array<T, 256>& table) {
    if constexpr (std::is_same_v<T, int8_t>) {
      for (int code = -128; code < 128; ++code)
        if (table[size_t(uint8_t(code))] != code) return false;
      return true;
    }
    return false;
  };
  const bool copy_a = identity(table_a), copy_b = identity(table_b);
  auto convert = [](const int8_t* src, int64_t count, const std::array<T, 256>& table, bool copy, T* dst) {
    if constexpr (std::is_same_v<T, int8_t>)
      if (copy) return void(std::copy_n(src, count, dst));
    for (int64_t k = 0; k < count; ++k) dst[k] = table[uint8_t(src[k])];
  };
  const int64_t c = ca + cb;
  kernels::parallel_for_chunks(positions, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      convert(a + q * ca, ca, table_a, copy_a, out + q * c);
      convert(b + q * cb, cb, table_b, copy_b, out + q * c + ca);
    }
  });
}

// int8 channel concatenation: each input's values float(q - zp) * scale, then (has_output_q) requantized as
// clamp(nearbyint(v / out.scale) + out.zero_point), every operation in float32 as QuantizedCat's torch reference
// computes it (no fused multiply-add can apply: nothing is added before the rounding), or stored as float32.
// An output depends only on its input code and on which input it comes from, so that arithmetic runs once per code
// into a 256-entry table per input, and the concatenation is a lookup (identical results; the per-element division
// and nearbyint took 12 ns per element, 40% of SlowFast-R50's int8 program). An input whose table is the identity
// (its qparams are the output's) is copied.
void requantize_concat(const int8_t* a, int64_t ca, QuantParams qa, const int8_t* b, int64_t cb, QuantParams qb,
                       bool has_output_q, QuantParams qo, void* out, int64_t positions, int num_threads) {
  auto table = [](auto of_code) {  // of_code(code) for every int8 code, indexed by its byte
    std::array<decltype(of_code(0)), 256> t;
    for (int code = -128; code < 128; ++code) t[size_t(uint8_t(code))] = of_code(code);
    return t;
  };
  auto value = [](int code, QuantParams q) { return (float(code) - float(q.zero_point)) * q.scale; };
  auto requantized = [&](int code, QuantParams q) {
    const float r = std::nearbyint(value(code, q) / qo.scale) + float(qo.zero_point);
    return int8_t(std::min(127.0f, std::max(-128.0f, r)));
  };
  if (!has_output_q)
    concat_lookup(a, ca, table([&](int code) { return value(code, qa); }), b, cb,
                  table([&](int code) { return value(code, qb); }), static_cast<float*>(out), positions, num_threads);
  else
    concat_lookup(a, ca, table([&](int code) { return requantized(code, qa); }), b, cb,
                  table([&](int code) { return requantized(code, qb); }), static_cast<int8_t*>(out), positions,
                  num_threads);
}

// [N, C, T, H, W] -> [N, T, H, W, C]: each thread takes whole (n, t, h) rows and interleaves the C planes' rows
// (kernels/cpu/layout: RGB with vector shuffles).
void to_channels_last(const float* src, float* dst, const Shape5& x, int num_threads) {
  const kernels::ChannelsLastRowFn interleave = kernels::kernel_table().channels_last_row;
  const int64_t rows = x.n * x.t * x.h, plane = x.t * x.h * x.w;
  kernels::parallel_for_chunks(rows, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / (x.t * x.h), th = row % (x.t * x.h);
      interleave(src + n * x.c * plane + th * x.w, plane, x.c, x.w, dst + row * x.w * x.c);
    }
  });
}
}  // namespace

std::vector<Tensor> Program::run(const float* input, const Shape5& input_shape, int num_threads, InputLayout layout) {
  return run(std::vector<const float*>{input}, std::vector<Shape5>{input_shape}, num_threads, layout);
}

std::vector<Tensor> Program::run(const std::vector<const float*>& input_data, const std::vector<Shape5>& input_shapes,
                                 int num_threads, InputLayout layout) {
  Impl& p = *impl_;
  if (p.values.empty() || p.outputs.empty()) throw std::invalid_argument("program: it has no input or no outputs");
  const size_t inputs = size_t(p.inputs());
  if (input_data.size() != inputs || input_shapes.size() != inputs)
    throw std::invalid_argument("program: it takes " + std::to_string(inputs) + " input" + (inputs == 1 ? "" : "s") +
                                ", got " + std::to_string(input_data.size()));
  for (size_t k = 0; k < inputs; ++k) {
    const std::string which = inputs == 1 ? "the input" : "input " + std::to_string(k);
    if (!input_data[k]) throw std::invalid_argument("program: " + which + " must not be null");
    const Shape5& x = input_shapes[k];
    if (x.c != p.input_channels[k])
      throw std::invalid_argument("program: " + which + " has " + std::to_string(x.c) + " channels, expected " +
                                  std::to_string(p.input_channels[k]));
    if (x.n <= 0 || x.t <= 0 || x.h <= 0 || x.w <= 0)
      throw std::invalid_argument("program: every dimension of " + which + " must be positive");
  }
  if (p.steps.empty()) throw std::invalid_argument("program: it has no steps");

  // Shapes of this run, and the step after which each value is dead.
  std::vector<Shape5> shapes(p.values.size());
  std::vector<size_t> last_use(p.values.size(), 0);
  std::vector<int> readers(p.values.size(), 0);  // how many steps read each value (as input, residual or gate)
  std::vector<int> quantize_readers(p.values.size(), 0);  // of those, quantize / dynamic_quantize steps
  for (size_t k = 0; k < inputs; ++k) shapes[k] = input_shapes[k];
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const Step& s = p.steps[i];
    const Shape5& x = shapes[size_t(s.input)];
    Shape5 y = x;
    if (s.kind == Kind::conv || s.kind == Kind::qconv) {
      y.t = conv_extent(x.t, s.g.kernel[0], s.g.stride[0], s.g.padding[0], i);
      y.h = conv_extent(x.h, s.g.kernel[1], s.g.stride[1], s.g.padding[1], i);
      y.w = conv_extent(x.w, s.g.kernel[2], s.g.stride[2], s.g.padding[2], i);
      y.c = s.out_channels;
    } else if (s.kind == Kind::global_avg_pool || s.kind == Kind::qglobal_avg_pool ||
               s.kind == Kind::squeeze_excitation_gate) {
      y.t = y.h = y.w = 1;
    } else if (s.kind == Kind::qlinear) {
      y.c = s.out_channels;
    } else if (s.kind == Kind::avg_pool || s.kind == Kind::qavg_pool || s.kind == Kind::max_pool) {
      y.t = conv_extent(x.t, s.g.kernel[0], s.g.stride[0], s.g.padding[0], i);  // an average pool's padding is 0
      y.h = conv_extent(x.h, s.g.kernel[1], s.g.stride[1], s.g.padding[1], i);
      y.w = conv_extent(x.w, s.g.kernel[2], s.g.stride[2], s.g.padding[2], i);
    } else if (s.kind == Kind::concat || s.kind == Kind::qconcat) {
      const Shape5& b = shapes[size_t(s.second)];
      if (b.n != x.n || b.t != x.t || b.h != x.h || b.w != x.w)
        throw std::invalid_argument("program step " + std::to_string(i) + " (concat): its inputs differ in N, T, H or W ([" +
                                    std::to_string(x.n) + ", " + std::to_string(x.t) + ", " + std::to_string(x.h) +
                                    ", " + std::to_string(x.w) + "] and [" + std::to_string(b.n) + ", " +
                                    std::to_string(b.t) + ", " + std::to_string(b.h) + ", " + std::to_string(b.w) +
                                    "])");
      y.c = x.c + b.c;
    }
    if (s.residual >= 0 && !(shapes[size_t(s.residual)] == y))
      throw std::invalid_argument("program step " + std::to_string(i) + ": the residual's shape differs from the output's");
    if (double(y.n) * double(y.t) * double(y.h) * double(y.w) * double(y.c) > double(int64_t{1} << 40))
      throw std::invalid_argument("program step " + std::to_string(i) + ": its output would be too large");
    if (s.input_gate >= 0) {
      if (!(shapes[size_t(s.input_gate)] == Shape5{x.n, 1, 1, 1, x.c}))
        throw std::invalid_argument("program step " + std::to_string(i) +
                                    ": its input gate is not [N, 1, 1, 1, C] of its input");
      last_use[size_t(s.input_gate)] = i;
    }
    shapes[size_t(s.output)] = y;
    last_use[size_t(s.input)] = i;
    if (s.residual >= 0) last_use[size_t(s.residual)] = i;
    if (s.second >= 0) last_use[size_t(s.second)] = i;
    for (int32_t v : {s.input, s.residual, s.input_gate, s.second})
      if (v >= 0) ++readers[size_t(v)];
    if (s.kind == Kind::quantize || s.kind == Kind::dynamic_quantize) ++quantize_readers[size_t(s.input)];
  }
  std::vector<bool> is_output(p.values.size(), false);
  for (int32_t v : p.outputs) is_output[size_t(v)] = true;
  // fused[i]: conv step i runs together with the depthwise step i + 1, its output's only reader.
  std::vector<bool> fused(p.steps.size(), false);
  if (p.fusion != Impl::Fusion::off)
    for (size_t i = 0; i + 1 < p.steps.size(); ++i) {
      const Step &conv = p.steps[i], &dw = p.steps[i + 1];
      fused[i] = fusable(conv, dw) && readers[size_t(conv.output)] == 1 && !is_output[size_t(conv.output)] &&
                 (p.fusion == Impl::Fusion::every_pair || fusion_pays(conv, shapes[size_t(conv.output)], dw));
    }

  // Buffers: the reusable pool when no other run holds it.
  std::unique_lock<std::mutex> lock(p.pool_mutex, std::try_to_lock);
  std::vector<RunBuffer> local_pool;
  std::vector<RunBuffer>& pool = lock.owns_lock() ? p.pool : local_pool;
  std::vector<std::vector<float, CacheLineAllocator<float>>> local_inputs;
  std::vector<const float*> input = input_data;
  // An [N, C, T, H, W] input that only quantize steps read is not copied to channels-last: they quantize it in
  // place of the copy (quantize_ncthw_parallel). Indexed by value; false for every value but such inputs.
  std::vector<bool> raw_input(p.values.size(), false);
  if (layout == InputLayout::ncthw)
    for (size_t k = 0; k < inputs; ++k)
      raw_input[k] = readers[k] > 0 && quantize_readers[k] == readers[k] && !is_output[k];
  if (layout == InputLayout::ncthw) {
    auto& copies = lock.owns_lock() ? p.channels_last_inputs : local_inputs;
    copies.resize(inputs);
    for (size_t k = 0; k < inputs; ++k) {
      if (raw_input[k]) continue;
      copies[k].resize(size_t(input_shapes[k].numel()));
      to_channels_last(input_data[k], copies[k].data(), input_shapes[k], num_threads);
      input[k] = copies[k].data();
    }
  }
  std::vector<bool> busy(pool.size(), false);
  std::vector<int64_t> buffer_of(p.values.size(), -1);
  std::vector<int64_t> sums_of(p.values.size(), -1);  // the row sums a depthwise conv wrote with the value
  auto take = [&](size_t bytes) -> int64_t {
    int64_t fits = -1, largest = -1;  // the smallest free buffer that fits, else the largest free one (grown)
    for (size_t b = 0; b < pool.size(); ++b) {
      if (busy[b]) continue;
      const size_t size = pool[b].size();
      if (size >= bytes && (fits < 0 || size < pool[size_t(fits)].size())) fits = int64_t(b);
      if (largest < 0 || size > pool[size_t(largest)].size()) largest = int64_t(b);
    }
    int64_t best = fits >= 0 ? fits : largest;
    if (best < 0) {
      pool.emplace_back();
      busy.push_back(false);
      best = int64_t(pool.size()) - 1;
    }
    if (pool[size_t(best)].size() < bytes) pool[size_t(best)].resize(bytes);
    busy[size_t(best)] = true;
    return best;
  };
  auto acquire = [&](int32_t value) -> void* {
    const int64_t b = take(size_t(shapes[size_t(value)].numel()) * element_size(p.values[size_t(value)].dtype));
    buffer_of[size_t(value)] = b;
    return pool[size_t(b)].data();
  };
  auto data = [&](int32_t value) -> void* {
    if (size_t(value) < inputs) return const_cast<float*>(input[size_t(value)]);
    return pool[size_t(buffer_of[size_t(value)])].data();
  };

  // A depthwise step's zeroed row sums, kept with its output value (when the step writes them).
  auto row_sums_of = [&](const Step& s) -> float* {
    if (!s.row_sums) return nullptr;
    const Shape5& y = shapes[size_t(s.output)];
    const size_t count = size_t(y.n * y.t * y.h * y.c);
    const int64_t b = take(count * sizeof(float));
    sums_of[size_t(s.output)] = b;
    float* sums = reinterpret_cast<float*>(pool[size_t(b)].data());
    std::fill_n(sums, count, 0.0f);
    return sums;
  };
  // Values read for the last time by step i free their buffers (never the caller's inputs, never an output).
  auto release_inputs = [&](const Step& s, size_t i) {
    for (int32_t v : {s.input, s.residual, s.input_gate, s.second})
      if (v >= int32_t(inputs) && last_use[size_t(v)] == i && !is_output[size_t(v)] && buffer_of[size_t(v)] >= 0) {
        busy[size_t(buffer_of[size_t(v)])] = false;
        if (sums_of[size_t(v)] >= 0) busy[size_t(sums_of[size_t(v)])] = false;
      }
  };

  // Each dynamic value's per-sample qparams in this run ([N], set by its dynamic_quantize step).
  std::vector<std::vector<QuantParams>> sample_q(p.values.size());
  std::vector<StepProfile> profile;
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const Step& s = p.steps[i];
    const Shape5& x = shapes[size_t(s.input)];
    const auto start = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    if (fused[i]) {
      // The conv's output (value s.output) gets no buffer: only the depthwise step's rings hold it.
      const Step& dw = p.steps[i + 1];
      const ConvDepthwise pair(s, dw, x, shapes[size_t(s.output)]);
      void* out = acquire(dw.output);
      float* sums = row_sums_of(dw);
      const int64_t scratch = take(pair.scratch_floats(num_threads) * sizeof(float));
      pair.run(static_cast<const float*>(data(s.input)),
               dw.residual >= 0 ? static_cast<const float*>(data(dw.residual)) : nullptr, sums,
               static_cast<float*>(out), reinterpret_cast<float*>(pool[size_t(scratch)].data()), num_threads);
      busy[size_t(scratch)] = false;
      if (p.profiling) {
        const Shape5 &mid = shapes[size_t(s.output)], &y = shapes[size_t(dw.output)];
        const int64_t taps = dw.g.kernel[0] * dw.g.kernel[1] * dw.g.kernel[2];
        const int64_t conv_taps = s.g.kernel[0] * s.g.kernel[1] * s.g.kernel[2];
        const int64_t macs = mid.numel() * conv_taps * x.c + y.numel() * taps;
        profile.push_back({std::string(kind_name(Kind::conv)) + (pair.pointwise() ? "/pointwise" : "/dense") +
                               ">depthwise" + (dw.row_sums ? "+sums" : ""),
                           seconds(), macs, x, y});
      }
      release_inputs(s, i);
      release_inputs(dw, i + 1);
      ++i;
      continue;
    }
    void* out = acquire(s.output);
    const void* in = data(s.input);
    const void* res = s.residual >= 0 ? data(s.residual) : nullptr;
    switch (s.kind) {
      case Kind::conv: {
        kernels::Epilogue ep;
        ep.bias = s.bias.data();
        ep.residual = static_cast<const float*>(res);
        ep.activation = s.act;
        if (s.depthwise) {
          auto shape = geometry<kernels::DwConv3dShape>(s.g, x);
          shape.channels = x.c;
          ep.row_sums = row_sums_of(s);
          dwconv3d_f32(shape, static_cast<const float*>(in), s.weight.data(), ep, static_cast<float*>(out), num_threads);
        } else {
          auto shape = geometry<kernels::Conv3dShape>(s.g, x);
          shape.in_channels = x.c;
          shape.out_channels = s.out_channels;
          kernels::InputScale gate;
          if (s.input_gate >= 0) {
            gate.scale = static_cast<const float*>(data(s.input_gate));
            gate.positions = x.t * x.h * x.w;
            gate.activation = s.input_act;
            ep.input_scale = &gate;
          }
          conv3d_f32(shape, static_cast<const float*>(in), s.weight.data(), ep, static_cast<float*>(out), num_threads);
        }
        break;
      }
      case Kind::squeeze_excitation_gate: {
        // Per-sample channel sums: from the producer's row sums (its rows per sample are T*H of this input) or, for
        // any other producer, from a pass over the tensor.
        std::vector<double> sums;
        if (sums_of[size_t(s.input)] >= 0) {
          const float* rows = reinterpret_cast<const float*>(pool[size_t(sums_of[size_t(s.input)])].data());
          const int64_t per_sample = x.t * x.h;
          sums.assign(size_t(x.n * x.c), 0.0);
          for (int64_t n = 0; n < x.n; ++n)
            for (int64_t r = 0; r < per_sample; ++r)
              for (int64_t c = 0; c < x.c; ++c) sums[size_t(n * x.c + c)] += rows[(n * per_sample + r) * x.c + c];
        } else {
          sums = channel_sums(volume(x), static_cast<const float*>(in), num_threads);
        }
        const SqueezeExcitation se = se_layers(s, x.c);
        std::vector<float> means(size_t(x.c));
        for (int64_t n = 0; n < x.n; ++n) {
          for (int64_t c = 0; c < x.c; ++c)
            means[size_t(c)] = float(sums[size_t(n * x.c + c)] / double(x.t * x.h * x.w));
          pyvideo::squeeze_excitation_gate(se, means.data(), static_cast<float*>(out) + n * x.c);
        }
        break;
      }
      case Kind::squeeze_excitation:
        pyvideo::squeeze_excitation_f32(se_layers(s, x.c), volume(x), static_cast<const float*>(in),
                                        static_cast<float*>(out), num_threads);
        break;
      case Kind::global_avg_pool: {
        const std::vector<double> sums = channel_sums(volume(x), static_cast<const float*>(in), num_threads);
        const double count = double(x.t * x.h * x.w);
        for (size_t k = 0; k < sums.size(); ++k) static_cast<float*>(out)[k] = float(sums[k] / count);
        break;
      }
      case Kind::avg_pool:
        avg_pool3d_f32(volume(x), pool_window(s.g), static_cast<const float*>(in), static_cast<float*>(out), num_threads);
        break;
      case Kind::max_pool:
        if (impl_->values[size_t(s.input)].dtype == DType::int8)
          max_pool3d_i8(volume(x), max_pool_window(s.g), static_cast<const int8_t*>(in), static_cast<int8_t*>(out),
                        num_threads);
        else
          max_pool3d_f32(volume(x), max_pool_window(s.g), static_cast<const float*>(in), static_cast<float*>(out),
                         num_threads);
        break;
      case Kind::concat:
        concat_channels(static_cast<const float*>(in), x.c, static_cast<const float*>(data(s.second)),
                        shapes[size_t(s.second)].c, static_cast<float*>(out), x.n * x.t * x.h * x.w, num_threads);
        break;
      case Kind::qconcat:
        requantize_concat(static_cast<const int8_t*>(in), x.c, s.in, static_cast<const int8_t*>(data(s.second)),
                          shapes[size_t(s.second)].c, s.residual_q, s.has_output_q, s.out, out, x.n * x.t * x.h * x.w,
                          num_threads);
        break;
      case Kind::quantize:
        if (!(raw_input[size_t(s.input)]
                  ? quantize_ncthw_parallel(static_cast<const float*>(in), static_cast<int8_t*>(out), x, s.out,
                                            num_threads)
                  : quantize_parallel(static_cast<const float*>(in), static_cast<int8_t*>(out), x.numel(), s.out,
                                      num_threads)))
          throw std::invalid_argument("program step " + std::to_string(i) +
                                      " (quantize): its input holds non-finite values (NaN or inf)");
        break;
      case Kind::dynamic_quantize:
        quantize_per_sample(static_cast<const float*>(in), static_cast<int8_t*>(out), x, s.out.scale, i, num_threads,
                            sample_q[size_t(s.output)], raw_input[size_t(s.input)]);
        break;
      case Kind::qsqueeze_excitation:
      case Kind::qglobal_avg_pool:
      case Kind::qavg_pool:
      case Kind::qlinear:
      case Kind::qconv: {
        const bool dynamic_input = p.values[size_t(s.input)].dynamic, dynamic_residual = p.is_dynamic(s.residual);
        if (!dynamic_input && !dynamic_residual) {
          run_int8_step(s, x, in, res, out, static_quant(s), num_threads);
          break;
        }
        // Sample by sample, each with its qparams of this run (the kernels' threads inside each call).
        const Shape5& y = shapes[size_t(s.output)];
        const int64_t in_count = x.numel() / x.n, out_count = y.numel() / y.n;  // per sample; the residual's is y's
        const size_t out_size = element_size(p.values[size_t(s.output)].dtype);
        Shape5 sample = x;
        sample.n = 1;
        SampleRequant requant;
        for (int64_t n = 0; n < x.n; ++n) {
          StepQuant q = static_quant(s);
          if (dynamic_input) {
            q.in = sample_q[size_t(s.input)][size_t(n)];
            if (s.kind == Kind::qconv || s.kind == Kind::qlinear) {
              requant.compute(s, q.in);
              q.qbias = requant.qbias.data();
              q.bias_float = requant.bias_float.data();
              q.dequant_scale = requant.dequant_scale.data();
            }
          }
          if (dynamic_residual) q.residual = sample_q[size_t(s.residual)][size_t(n)];
          run_int8_step(s, sample, static_cast<const int8_t*>(in) + n * in_count,
                        res ? static_cast<const int8_t*>(res) + n * out_count : nullptr,
                        static_cast<uint8_t*>(out) + size_t(n * out_count) * out_size, q, num_threads);
        }
        break;
      }
    }
    if (p.profiling) {
      const Shape5& y = shapes[size_t(s.output)];
      const bool is_conv = s.kind == Kind::conv || s.kind == Kind::qconv;
      const int64_t taps = s.g.kernel[0] * s.g.kernel[1] * s.g.kernel[2];
      const int64_t macs = is_conv ? y.numel() * taps * (s.depthwise ? 1 : x.c) : 0;
      std::string kind = kind_name(s.kind);
      if (is_conv) kind += s.depthwise ? "/depthwise" : (taps == 1 ? "/pointwise" : "/dense");
      if (s.input_gate >= 0) kind += "+gate";
      if (s.row_sums) kind += "+sums";
      if (p.is_dynamic(s.input) || p.is_dynamic(s.residual)) kind += "+dyn";
      profile.push_back({kind, seconds(), macs, x, y});
    }
    release_inputs(s, i);
  }

  if (p.profiling) p.profile = std::move(profile);
  std::vector<Tensor> results;
  for (int32_t v : p.outputs) {
    Tensor t;
    t.dtype = p.values[size_t(v)].dtype;
    t.shape = shapes[size_t(v)];
    const size_t bytes = size_t(t.shape.numel()) * element_size(t.dtype);
    t.storage = std::make_shared<std::vector<uint8_t>>(bytes);
    std::copy_n(static_cast<const uint8_t*>(data(v)), bytes, t.storage->data());
    results.push_back(std::move(t));
  }
  return results;
}

}  // namespace pyvideo::runtime
