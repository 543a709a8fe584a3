// A native program: a deploy-form (fp32) or int8 network as a flat list of steps over channels-last buffers, run in
// one call. It removes what a per-layer op pays on every layer (the Python module call, the torch dispatcher, DLPack
// exports, output allocation): ~15-20 us per layer, ~100 layers per X3D clip. Buffers are recycled as soon as their
// last reader has run, so the working set stays small (and warm in cache) whatever the depth.
//
// Values are 5-D channels-last tensors [N, T, H, W, C], float32 or int8; values 0 .. k-1 are the program's k inputs
// (float32; k = 1 but for multi-pathway models such as SlowFast), the others are step outputs in step order.
// The step kinds mirror the per-layer ops one to one (same kernels, same arithmetic):
//   conv / depthwise conv (fp32, fused bias + residual + activation), squeeze-excitation (fp32), global average
//   pool (fp32 -> [N,1,1,1,C]), quantize (fp32 -> int8), int8 conv / depthwise conv (requantized, int8 out),
//   int8 squeeze-excitation, int8 global average pool (-> fp32 or int8), fixed-kernel average pool (fp32, and int8
//   -> fp32 or int8), int8 linear, dynamic quantize (fp32 -> int8 with per-sample qparams, below), max pool
//   (fp32, padded: a ResNet stem's MaxPool3d) and channel concatenation (fp32, and int8 requantized to the output's
//   qparams: SlowFast's pathway fusion).
// Dynamic ranges: a dynamic_quantize step gives each sample (batch index n) the qparams of its own range, computed in
// each run: lo = min(min(x[n]), 0), hi = max(max(x[n]), 0) (in double), scale = float(max((hi - lo) / 255, m)) with
// the step's minimum scale m (>= 1e-8; a caller picks it large enough for its readers' int32 biases),
// zero_point = clamp(nearbyint(-128 - lo / double(scale)), -128, 127); a sample holding NaN or inf is an
// std::invalid_argument. Its output is a "dynamic" value: only int8 convs (as input or residual), linear layers,
// squeeze-excitations and pools may read it, and they run sample by sample with that run's qparams in place of their
// static input / residual ones (a conv or linear layer with a dynamic input then derives its dequant scales and int32
// bias per sample from its weight scales and real-valued bias: see quantized_conv). A dynamic value cannot be an output.
// A squeeze-excitation whose output only feeds a pointwise conv can instead be split and fused (fp32): a gate step
// (channel means -> the two small layers -> sigmoid, a [N,1,1,1,C] value) and a pointwise conv that reads
// act(x * gate) on the fly, so the SE output is never stored. When the gate's input comes from a depthwise conv,
// that conv also writes its per-row channel sums in its epilogue and the gate reads those, not the tensor.
// A dense conv (no residual, no input gate) whose output only feeds the depthwise conv right after it (X3D's
// conv_a -> conv_b, and the stem's conv_xy -> conv_t) runs fused with it (fp32) where that was measured to pay (a
// large conv output; the rule is in program.cpp): the depthwise conv reads the conv's output from small per-thread
// rings of rows computed just before they are needed, so that output is never stored; bit-identical to the separate
// steps. Each run decides (nothing is stored in model files), so loaded programs fuse too.
// Shapes are not frozen: each run derives every value's shape from the input's (any batch size and T/H/W the
// layers accept; a size that does not fit a layer is an std::invalid_argument naming the step).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../../kernels/cpu/epilogue.h"

namespace pyvideo::runtime {

enum class DType : int32_t { float32 = 0, int8 = 1 };

struct Shape5 {  // [N, T, H, W, C]
  int64_t n = 0, t = 0, h = 0, w = 0, c = 0;
  int64_t numel() const { return n * t * h * w * c; }
  bool operator==(const Shape5& o) const { return n == o.n && t == o.t && h == o.h && w == o.w && c == o.c; }
};

struct ConvGeometry {
  int64_t kernel[3] = {1, 1, 1}, stride[3] = {1, 1, 1}, padding[3] = {0, 0, 0};
};

struct QuantParams {  // real = scale * (q - zero_point)
  float scale = 1.0f;
  int32_t zero_point = 0;
};

struct Tensor {  // a run's output: owns its buffer
  DType dtype = DType::float32;
  Shape5 shape;
  std::shared_ptr<std::vector<uint8_t>> storage;
  void* data() const { return storage->data(); }
};

class Program {
 public:
  Program();
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  int32_t input_channels() const;  // the first input's
  int32_t num_inputs() const;
  std::vector<int64_t> inputs_channels() const;  // each input's
  int32_t num_values() const;
  int32_t num_steps() const;
  std::string describe() const;  // one line per step

  // Builders: each returns the id of the value it produces. Weights are copied. Layouts as the per-layer ops:
  // dense weight [kt,kh,kw,Ci,Co], depthwise [kt,kh,kw,C]; int8 dense packed [kt,kh,kw,ceil(Ci/4),Co,4] + per-channel
  // sums, int8 depthwise [kt,kh,kw,C]; Linear weights torch's [out, in]. residual = -1 for none.
  int32_t set_input(int64_t channels);
  // Another input (value id = the number of inputs so far), declared before any step: a model taking one clip per
  // pathway (SlowFast) has one per clip, in the order run() takes them.
  int32_t add_input(int64_t channels);
  // float32 [N, T, H, W, Ca] and [N, T, H, W, Cb] (same N, T, H, W in every run) -> [N, T, H, W, Ca + Cb]: torch.cat
  // along the channels of [N, C, T, H, W] tensors (SlowFast's fusion of the fast pathway into the slow one).
  int32_t concat(int32_t first, int32_t second);
  // int8 inputs with qparams first_q / second_q -> their concatenation requantized to `out`:
  // clamp(nearbyint(float(float(q - zp) * scale) / out.scale) + out.zero_point) in float32 (QuantizedCat's reference
  // arithmetic, bit for bit), or with has_output_q false the float32 (q - zp) * scale of each input.
  int32_t quantized_concat(int32_t first, int32_t second, QuantParams first_q, QuantParams second_q,
                           bool has_output_q, QuantParams out);
  // input_gate >= 0 (pointwise stride-1 convs only): the conv reads input_act(x * gate[n, c]) instead of x, where
  // the gate value is [N, 1, 1, 1, C_in] float32 (e.g. from squeeze_excitation_gate).
  int32_t conv(int32_t input, bool depthwise, const ConvGeometry& g, int64_t out_channels,
               std::vector<float> weight, std::vector<float> bias, int32_t residual, kernels::Activation act,
               int32_t input_gate = -1, kernels::Activation input_act = kernels::Activation::identity);
  int32_t squeeze_excitation(int32_t input, int64_t hidden, std::vector<float> fc0_weight,
                             std::vector<float> fc0_bias, std::vector<float> fc1_weight, std::vector<float> fc1_bias,
                             kernels::Activation hidden_act, kernels::Activation act);
  // The gate of a squeeze-excitation, sigmoid(fc1(hidden_act(fc0(mean_{T,H,W}(x))))), as a [N, 1, 1, 1, C] value.
  int32_t squeeze_excitation_gate(int32_t input, int64_t hidden, std::vector<float> fc0_weight,
                                  std::vector<float> fc0_bias, std::vector<float> fc1_weight,
                                  std::vector<float> fc1_bias, kernels::Activation hidden_act);
  int32_t global_avg_pool(int32_t input);
  int32_t quantize(int32_t input, QuantParams out);
  // float32 -> int8 with per-sample qparams computed in each run (see the top of this file); the output is dynamic.
  // min_scale: the smallest scale a sample gets (finite, >= 1e-8): an all-zero or very narrow sample then still gives
  // its conv readers int32 biases within +-L[c] (quantize_model picks it per tensor from its readers).
  int32_t dynamic_quantize(int32_t input, float min_scale = 1e-8f);
  // has_output_q false: a float32 output, act(dequantized accumulator [+ residual]) unquantized (`out` unused).
  // A dynamic input: weight_scale and float_bias ([Co] each: the weights' per-channel scales, finite and positive, and
  // the real-valued bias, finite) are required; `bias`, `dequant_scale` and `in` are ignored, and each sample n of a
  // run, with input qparams (s, zp), uses dequant_scale[c] = s * weight_scale[c] (float32) and bias[c] =
  // int32(clamp(nearbyint(double(float_bias[c]) / double(dequant_scale[c])), -L[c], L[c])), where L[c] = 2^31 - 1 -
  // 512 * sum_k |weight[c, k]| is the largest bias the kernels' int32 sums cannot overflow with (a sample of a very
  // narrow range, e.g. all zero, makes the quotient huge). A static input takes neither weight_scale nor float_bias
  // (non-empty ones are rejected: they would be silently unused), and its `bias` must lie within +-L[c]. A dynamic
  // residual: `residual_q` is ignored. out_scales / out_zero_points: the output quantized per channel instead, as
  // quantized_squeeze_excitation's ([out_channels] each, both or neither, only with has_output_q; `out` is then
  // unused). Only a tensor that unpadded pointwise convs alone read can use it: they fold the scales into their weight.
  int32_t quantized_conv(int32_t input, bool depthwise, const ConvGeometry& g, int64_t out_channels,
                         std::vector<int8_t> weight, std::vector<int32_t> weight_sum, std::vector<int32_t> bias,
                         std::vector<float> dequant_scale, QuantParams in, int32_t residual, QuantParams residual_q,
                         kernels::Activation act, QuantParams out, bool has_output_q = true,
                         std::vector<float> weight_scale = {}, std::vector<float> float_bias = {},
                         std::vector<float> out_scales = {}, std::vector<int32_t> out_zero_points = {});
  // out_scales / out_zero_points: the output quantized per channel instead ([C] each, both or neither; `out` is
  // then unused): scales positive and finite, zero points in [-128, 127]. has_output_q false: a float32 output (e.g.
  // read by steps that quantize it per sample), `out` and the per-channel fields unused. This step and the int8 pools
  // ignore `in` for a dynamic input.
  int32_t quantized_squeeze_excitation(int32_t input, int64_t hidden, std::vector<float> fc0_weight,
                                       std::vector<float> fc0_bias, std::vector<float> fc1_weight,
                                       std::vector<float> fc1_bias, kernels::Activation hidden_act,
                                       kernels::Activation act, QuantParams in, QuantParams out,
                                       std::vector<float> out_scales = {}, std::vector<int32_t> out_zero_points = {},
                                       bool has_output_q = true);
  // int8 -> fp32 mean (has_output_q false) or requantized int8 mean.
  int32_t quantized_global_avg_pool(int32_t input, QuantParams in, bool has_output_q, QuantParams out);
  // Fixed-kernel average pooling without padding (every window whole; g.padding must be zero): fp32, and int8 ->
  // fp32 or requantized int8 as quantized_global_avg_pool (exact integer window sums).
  int32_t avg_pool(int32_t input, const ConvGeometry& g);
  int32_t quantized_avg_pool(int32_t input, const ConvGeometry& g, QuantParams in, bool has_output_q, QuantParams out);
  // Fixed-kernel max pooling as torch's max_pool3d with dilation 1 and ceil_mode off, bit for bit: padding (at most
  // half the kernel in each dim) is implicit -inf, and a window holding a NaN gives NaN. On an int8 value the same on
  // its codes, giving int8 in the same qparams (an int8 ResNet's pool after the stem).
  int32_t max_pool(int32_t input, const ConvGeometry& g);
  // int8 [.., K] -> fp32 [.., M] fully connected layer over the channels (the int8 classifier of a head):
  // act(float(bias + sum (x - zp) * w) * dequant_scale) with exact int32 sums; weight [M, K] int8. A dynamic input
  // takes weight_scale and float_bias as quantized_conv.
  int32_t quantized_linear(int32_t input, int64_t out_features, std::vector<int8_t> weight, std::vector<int32_t> bias,
                           std::vector<float> dequant_scale, QuantParams in, kernels::Activation act,
                           std::vector<float> weight_scale = {}, std::vector<float> float_bias = {});
  // How a caller should present each output (metadata kept in model files): as [N, C, T, H, W], as the
  // channels-last [N, T, H, W, C] it is stored in, or as a [N, C] vector (T = H = W = 1).
  enum class Layout : uint8_t { ncthw = 0, nthwc = 1, vector = 2 };
  void set_outputs(std::vector<int32_t> values, std::vector<Layout> layouts);
  std::vector<Layout> output_layouts() const;

  // Model files: the steps, their weights and the outputs in a versioned little-endian binary format (layout in
  // program_file.cpp). load() checks everything it reads and rebuilds the program through the builders above, so a
  // malformed, truncated or foreign file is an std::invalid_argument saying what is wrong, never a crash.
  void save(const std::string& path) const;
  static std::unique_ptr<Program> load(const std::string& path);

  // Where the input's elements lie: channels-last [N, T, H, W, C] (the steps' own layout), or [N, C, T, H, W]
  // (torch's default for video), which run() first copies to channels-last in a reused buffer; the results are the
  // same bits.
  enum class InputLayout { nthwc, ncthw };
  // Runs on a float32 input of logical shape input_shape ({N, T, H, W, C} whatever its layout); returns the output
  // values (fresh buffers).
  std::vector<Tensor> run(const float* input, const Shape5& input_shape, int num_threads,
                          InputLayout layout = InputLayout::nthwc);
  // A program with several inputs: one pointer and shape per input, in declaration order (their sizes are
  // independent, e.g. SlowFast's slow and fast clips; the steps check what they need to agree).
  std::vector<Tensor> run(const std::vector<const float*>& inputs, const std::vector<Shape5>& input_shapes,
                          int num_threads, InputLayout layout = InputLayout::nthwc);

  // Per-step wall time of the last run() while profiling is on (for benchmarks): kind names, seconds, and each
  // step's multiply-accumulate count and input / output shapes at that run's sizes.
  void set_profiling(bool on);
  // Conv -> depthwise fusion (see the top of this file; the name is from when only pointwise convs were fused): on
  // by default, where it pays; off for debugging and benchmarks; every_pair fuses every eligible pair whatever its
  // size (for tests). Profiles list a fused pair as one step of kind "conv/pointwise>depthwise" (a 1x1x1 stride-1
  // conv) or "conv/dense>depthwise" with both convs' MACs, the conv's input and the depthwise output shapes. A step
  // reading a dynamic value (run sample by sample) has the suffix "+dyn", e.g. "quantized_conv/pointwise+dyn".
  void set_fuse_pointwise_depthwise(bool on, bool every_pair = false);
  bool fuse_pointwise_depthwise() const;
  struct StepProfile {
    std::string kind;
    double seconds = 0.0;
    int64_t macs = 0;
    Shape5 input, output;
  };
  std::vector<StepProfile> last_profile() const;

  struct Step;  // defined in program_impl.h (runtime-internal)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyvideo::runtime
