// Private to the runtime: the step list behind Program (shared by program.cpp and program_file.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../kernels/cpu/conv3d/conv3d.h"
#include "../core/channel_requant.h"
#include "../../kernels/cpu/dwconv3d/dwconv3d.h"
#include "program.h"

namespace pyvideo::runtime {

// A kernel shape (kernels::Conv3dShape or DwConv3dShape) for a step's geometry on input x; the caller sets the
// channel counts.
template <class ShapeT>
ShapeT geometry(const ConvGeometry& g, const Shape5& x) {
  ShapeT s;
  s.batch = x.n;
  s.in_t = x.t;
  s.in_h = x.h;
  s.in_w = x.w;
  s.kernel_t = g.kernel[0];
  s.kernel_h = g.kernel[1];
  s.kernel_w = g.kernel[2];
  s.stride_t = g.stride[0];
  s.stride_h = g.stride[1];
  s.stride_w = g.stride[2];
  s.pad_t = g.padding[0];
  s.pad_h = g.padding[1];
  s.pad_w = g.padding[2];
  return s;
}

enum class Kind {
  conv,
  squeeze_excitation,
  global_avg_pool,
  quantize,
  qconv,
  qsqueeze_excitation,
  qglobal_avg_pool,
  qlinear,
  squeeze_excitation_gate,
  avg_pool,
  qavg_pool,
  dynamic_quantize,  // float32 -> int8 with each sample's qparams, computed in each run from its range
  max_pool,          // (new kinds go last: model files store the number)
  concat,            // fp32 channel concatenation of two values of the same N, T, H, W (Step::second)
  qconcat,           // int8 channel concatenation, each input requantized to the output's qparams (or float32 out)
};
constexpr Kind kLastKind = Kind::qconcat;

// Whether a step of `kind` may read a dynamic value (as its input; a qconv also as its residual). These steps run
// sample by sample with that run's per-sample qparams.
inline bool reads_dynamic(Kind kind) {
  return kind == Kind::qconv || kind == Kind::qlinear || kind == Kind::qsqueeze_excitation ||
         kind == Kind::qglobal_avg_pool || kind == Kind::qavg_pool;
}

const char* kind_name(Kind k);

// Run buffers start on a cache line (64 bytes), so a kernel's vector loads and stores of a channels-last row do not
// straddle two lines more than the channel count makes them (malloc's 16-byte alignment left about half the depthwise
// outputs 32 or 48 bytes off; in bench/depthwise_f32.py's kernel runs a 16-byte offset made the 432-channel 5x5 layer
// 34 us instead of 26).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::size_t alignment = 64;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignment))); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(alignment)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};
using RunBuffer = std::vector<uint8_t, CacheLineAllocator<uint8_t>>;
// fp32 conv weights on a cache line as well: the conv kernels stream them in vector loads, and a std::vector's
// malloc'd block (16 mod 64 for a large one) made slow_r50's dense convs ~30% slower than the per-layer op's
// 64-byte-aligned torch tensor (1x3x3, 256 -> 256 channels at 8x14x14, 1 thread: 12.9 ms vs 10.1; the op on a
// weight copy 16 bytes off: 13.0 ms).
using AlignedFloats = std::vector<float, CacheLineAllocator<float>>;
using AlignedBytes = std::vector<int8_t, CacheLineAllocator<int8_t>>;  // int8 conv / linear weights, likewise

struct Program::Step {
  explicit Step(Kind k) : kind(k) {}
  Kind kind;
  int32_t input = -1, residual = -1, output = -1;
  int32_t second = -1;  // concat: the value whose channels follow the input's (model files keep it in the residual slot)
  bool depthwise = false;
  ConvGeometry g;
  int64_t out_channels = 0, hidden = 0;
  kernels::Activation act = kernels::Activation::identity, hidden_act = kernels::Activation::identity;
  AlignedFloats weight;  // an fp32 conv's
  // bias: an fp32 conv's bias, and a qconv / qlinear's real-valued bias when its input is dynamic (float_bias).
  std::vector<float> bias, fc0_weight, fc0_bias, fc1_weight, fc1_bias, dequant_scale, bias_float;
  // qconv / qlinear with a dynamic input: per-output-channel weight scales ([Co]); each run's dequant scales and int32
  // biases follow from them and each sample's input scale. Empty otherwise.
  std::vector<float> weight_scale;
  // qconv / qlinear: the largest |int32 bias| of each output channel the kernels accumulate without overflow (derived
  // from the weights by the builders, not stored in model files).
  std::vector<int32_t> bias_limit;
  AlignedBytes qweight;
  std::vector<int32_t> weight_sum, qbias;
  QuantParams in, residual_q, out;
  // int8 squeeze-excitation / conv: per-channel output quantization ([C] scales and zero points, checked by the
  // builder, in the form the kernels read; model files store the scales and integer zero points), or empty (per
  // tensor: `out`).
  ChannelRequant out_requant;
  bool has_output_q = true;
  int32_t input_gate = -1;  // conv: the [N,1,1,1,C_in] gate it applies to its input (input_act(x * gate)), or -1
  kernels::Activation input_act = kernels::Activation::identity;
  // Depthwise conv: also write per-row channel sums (set by the builder when a gate step reads this conv's output;
  // not stored in model files, the builders derive it again).
  bool row_sums = false;
};

// An fp32 dense conv (groups 1, any kernel, stride and padding; no residual, no input gate) fused with the fp32
// depthwise conv that is the only reader of its output: the run computes the conv's output a few rows at a time into
// per-thread rings that the depthwise kernel reads, so that output is never stored (conv_depthwise.cpp). Same kernels
// and arithmetic as the two steps: the results are bit-identical.
class ConvDepthwise {
 public:
  // x: the conv's input shape in this run, mid: its output shape (the run checked both).
  ConvDepthwise(const Program::Step& conv, const Program::Step& dw, const Shape5& x, const Shape5& mid);
  bool pointwise() const;                        // the conv is 1x1x1, stride 1, no padding
  size_t scratch_floats(int num_threads) const;  // the rings, for the run's buffer pool
  // residual: the depthwise conv's, or nullptr; row_sums: zeroed [N*To*Ho, C] when the step writes them, or nullptr.
  void run(const float* input, const float* residual, float* row_sums, float* output, float* scratch,
           int num_threads) const;

 private:
  int threads(int num_threads) const;
  const Program::Step &conv_, &dw_;
  Shape5 mid_;
  kernels::Conv3dShape producer_;  // the conv in this run
  kernels::DwConv3dShape shape_;   // the depthwise conv on its output
  int64_t lines_per_batch_ = 1, ring_rows_ = 1, ring_floats_ = 0;
};


struct Program::Impl {
  std::vector<int64_t> input_channels;  // one per program input: values 0 .. inputs - 1
  int32_t inputs() const { return int32_t(input_channels.size()); }
  struct Value {
    DType dtype;
    int64_t channels;
    bool dynamic = false;  // int8 with per-sample qparams computed in each run (a dynamic_quantize output)
  };
  std::vector<Value> values;
  std::vector<Step> steps;
  std::vector<int32_t> outputs;
  std::vector<Program::Layout> layouts;
  bool profiling = false;
  enum class Fusion { off, where_it_pays, every_pair } fusion = Fusion::where_it_pays;  // conv -> depthwise
  std::vector<Program::StepProfile> profile;
  std::mutex pool_mutex;                   // guards `pool`, the buffers reused from one run to the next
  std::vector<RunBuffer> pool;             // a concurrent run uses its own
  // [N, C, T, H, W] inputs copied to channels-last, one per input (also under pool_mutex)
  std::vector<std::vector<float, CacheLineAllocator<float>>> channels_last_inputs;

  const Value& value(int32_t id, const char* role) const {
    if (id < 0 || id >= int32_t(values.size()))
      throw std::invalid_argument(std::string("program: ") + role + " refers to value " + std::to_string(id) +
                                  ", which does not exist yet");
    return values[size_t(id)];
  }
  bool is_dynamic(int32_t id) const { return id >= 0 && values[size_t(id)].dynamic; }
  int32_t add(Step step, DType dtype, int64_t channels, bool dynamic = false) {
    // Per-sample qparams exist only inside a run, so only the steps that take them per sample may read such values
    // (those have no input gate, and only a qconv has a residual). Most other steps already need a float32 input;
    // this keeps the rule whatever the builder checked.
    for (int32_t v : {step.input, step.residual, step.input_gate, step.second})
      if (is_dynamic(v) && !reads_dynamic(step.kind))
        throw std::invalid_argument(std::string("program: a ") + kind_name(step.kind) +
                                    " step cannot read a dynamically quantized value (v" + std::to_string(v) + ")");
    step.output = int32_t(values.size());
    values.push_back({dtype, channels, dynamic});
    steps.push_back(std::move(step));
    return steps.back().output;
  }
};

}  // namespace pyvideo::runtime
