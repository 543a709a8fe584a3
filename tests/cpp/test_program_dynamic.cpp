// Dynamic (per-sample) int8 activation ranges in the program runtime: a dynamic_quantize step gives each sample the
// qparams of its own range, and the int8 steps reading it run sample by sample with them. Each dynamic program's
// output on a batch of samples with very different ranges must equal, bit for bit, the concatenation of static
// programs' outputs, one per sample, built with the qparams (and the conv / linear dequant scales and int32 biases)
// that the documented formula gives for that sample, computed here. Also: errors, profiles and model files (version 5).
// Runs under ASan/UBSan too (make test-asan).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../../csrc/runtime/program.h"
#include "check.h"
#include "program_files.h"

using pyvideo::kernels::Activation;
using pyvideo::runtime::ConvGeometry;
using pyvideo::runtime::DType;
using pyvideo::runtime::Program;
using pyvideo::runtime::QuantParams;
using pyvideo::runtime::Shape5;
using pyvideo::runtime::Tensor;

namespace {

// The documented per-sample qparams, computed the plain way (one scalar pass): lo / hi over the sample, 0 included,
// in double; scale = float(max((hi - lo) / 255, 1e-8)); zero point = clamp(round_half_even(-128 - lo / scale)).
QuantParams expected_qparams(const float* x, int64_t n) {
  float lo = x[0], hi = x[0];
  for (int64_t k = 1; k < n; ++k) {
    lo = std::min(lo, x[k]);
    hi = std::max(hi, x[k]);
  }
  const double low = std::min(double(lo), 0.0), high = std::max(double(hi), 0.0);
  const float scale = float(std::max((high - low) / 255.0, 1e-8));
  const int zero_point = int(std::nearbyint(-128.0 - low / double(scale)));
  return {scale, std::min(127, std::max(-128, zero_point))};
}

// The documented bias bound of each output channel: 2^31 - 1 - 512 * sum |w| over the channel's weights (a [Co, K]
// matrix, row major).
std::vector<double> bias_bounds(const std::vector<int8_t>& weight, size_t out_channels) {
  const size_t k_per_channel = weight.size() / out_channels;
  std::vector<double> bounds;
  for (size_t c = 0; c < out_channels; ++c) {
    double magnitude = 0;
    for (size_t k = 0; k < k_per_channel; ++k) magnitude += std::abs(double(weight[c * k_per_channel + k]));
    bounds.push_back(2147483647.0 - 512.0 * magnitude);
  }
  return bounds;
}

// A conv / linear layer's static requantization arrays for an input quantized with `in` (the formula a dynamic input
// uses per sample).
struct Requant {
  std::vector<int32_t> qbias;
  std::vector<float> dequant_scale;
};

Requant requant_for(QuantParams in, const std::vector<float>& weight_scale, const std::vector<float>& float_bias,
                    const std::vector<double>& bounds) {
  Requant r;
  for (size_t c = 0; c < weight_scale.size(); ++c) {
    const float dequant = in.scale * weight_scale[c];
    const double q = std::nearbyint(double(float_bias[c]) / double(dequant));
    r.dequant_scale.push_back(dequant);
    r.qbias.push_back(int32_t(std::min(bounds[c], std::max(-bounds[c], q))));
  }
  return r;
}

std::vector<float> uniform(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<int8_t> random_int8(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(-127, 127);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = int8_t(d(rng));
  return v;
}

// A batch whose samples cycle through very different ranges: mixed signs at scale 1, mostly positive at scale 30,
// scale 0.01, all zero, all negative, all positive (the zero point then at -128).
std::vector<float> batch(const Shape5& shape, std::mt19937& rng) {
  const size_t count = size_t(shape.numel() / shape.n);
  std::vector<float> x;
  for (int64_t n = 0; n < shape.n; ++n) {
    std::vector<float> sample;
    switch (n % 6) {
      case 0: sample = uniform(count, rng, -1.0f, 1.0f); break;
      case 1: sample = uniform(count, rng, -9.0f, 30.0f); break;
      case 2: sample = uniform(count, rng, -0.01f, 0.004f); break;
      case 3: sample.assign(count, 0.0f); break;
      case 4: sample = uniform(count, rng, -5.0f, -0.1f); break;
      default: sample = uniform(count, rng, 0.5f, 2.0f); break;
    }
    x.insert(x.end(), sample.begin(), sample.end());
  }
  return x;
}

// How a test program quantizes its float values: dynamically (the program under test), or statically with one
// sample's qparams (the reference programs). Those qparams come from a first "probe" program that outputs the float
// values to be quantized.
class Quantizer {
 public:
  enum class Mode { dynamic, probe, fixed };
  explicit Quantizer(Mode mode, std::vector<QuantParams> fixed = {}) : mode_(mode), fixed_(std::move(fixed)) {}
  bool dynamic() const { return mode_ == Mode::dynamic; }
  // The int8 value and its qparams. For a dynamic value these are invalid on purpose ({-1, 999}): the builders must
  // ignore them.
  std::pair<int32_t, QuantParams> operator()(Program& p, int32_t value) {
    if (mode_ == Mode::dynamic) return {p.dynamic_quantize(value), QuantParams{-1.0f, 999}};
    if (mode_ == Mode::probe) {
      probed.push_back(value);
      return {p.quantize(value, QuantParams{1.0f, 0}), QuantParams{1.0f, 0}};
    }
    const QuantParams q = fixed_.at(next_++);
    return {p.quantize(value, q), q};
  }
  std::vector<int32_t> probed;  // the float values quantized (probe mode)

 private:
  Mode mode_;
  std::vector<QuantParams> fixed_;
  size_t next_ = 0;
};

// Builds a test network on input x and returns its outputs.
using Build = std::function<std::vector<int32_t>(Program&, int32_t x, Quantizer&)>;

std::vector<Tensor> build_and_run(int64_t channels, const Build& build, Quantizer& q, const float* in,
                                  const Shape5& shape, int threads, Program* keep = nullptr) {
  Program local;
  Program& p = keep ? *keep : local;
  const std::vector<int32_t> outputs = build(p, p.set_input(channels), q);
  p.set_outputs(outputs, std::vector<Program::Layout>(outputs.size(), Program::Layout::nthwc));
  return p.run(in, shape, threads);
}

size_t bytes_of(const Tensor& t) { return size_t(t.shape.numel()) * (t.dtype == DType::float32 ? 4 : 1); }

// The dynamic program's outputs on the batch equal the per-sample static programs' outputs, concatenated. Returns the
// per-sample qparams of the first dynamic value (for the tests' own checks).
std::vector<QuantParams> check_against_static(const char* name, int64_t channels, const Build& build,
                                              const Shape5& shape, const std::vector<float>& in, int threads) {
  Quantizer dynamic(Quantizer::Mode::dynamic);
  const std::vector<Tensor> got = build_and_run(channels, build, dynamic, in.data(), shape, threads);
  Shape5 one = shape;
  one.n = 1;
  std::vector<QuantParams> first;
  int mismatches = 0;
  for (int64_t n = 0; n < shape.n; ++n) {
    const float* sample = in.data() + n * one.numel();
    Quantizer probe(Quantizer::Mode::probe);
    Program probe_program;
    build(probe_program, probe_program.set_input(channels), probe);
    probe_program.set_outputs(probe.probed, std::vector<Program::Layout>(probe.probed.size(), Program::Layout::nthwc));
    std::vector<QuantParams> qparams;
    for (const Tensor& f : probe_program.run(sample, one, threads))
      qparams.push_back(expected_qparams(static_cast<const float*>(f.data()), f.shape.numel()));
    first.push_back(qparams.at(0));
    Quantizer fixed(Quantizer::Mode::fixed, qparams);
    const std::vector<Tensor> want = build_and_run(channels, build, fixed, sample, one, threads);
    CHECK(want.size() == got.size());
    for (size_t k = 0; k < want.size() && k < got.size(); ++k) {
      CHECK(got[k].dtype == want[k].dtype && got[k].shape.n == shape.n);
      const size_t per_sample = bytes_of(want[k]);
      CHECK(bytes_of(got[k]) == per_sample * size_t(shape.n));
      if (std::memcmp(static_cast<const uint8_t*>(got[k].data()) + size_t(n) * per_sample, want[k].data(),
                      per_sample) != 0)
        ++mismatches;
    }
  }
  if (mismatches) std::fprintf(stderr, "%s (%d threads): %d per-sample outputs differ\n", name, threads, mismatches);
  CHECK(mismatches == 0);
  return first;
}

// An int8 conv: random weights (dense ones packed as the kernels read them, with their sums), per-channel weight
// scales and a real-valued bias.
struct QConv {
  bool depthwise = false;
  ConvGeometry g;
  int64_t ci = 0, co = 0;
  std::vector<int8_t> weight;
  std::vector<int32_t> sums;
  std::vector<float> weight_scale, float_bias;
  std::vector<double> bounds;  // of the biases
  Activation act = Activation::identity;
  QuantParams out{0.05f, -3};
  bool has_output_q = true;

  QConv(std::mt19937& rng, bool dw, int64_t in_channels, int64_t out_channels, ConvGeometry geometry, Activation a)
      : depthwise(dw), g(geometry), ci(in_channels), co(out_channels), act(a) {
    const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2];
    const std::vector<int8_t> w = random_int8(size_t(taps * (dw ? 1 : ci) * co), rng);  // [taps, ci, co] or [taps, c]
    std::vector<int8_t> by_channel(w.size());  // [co, taps * ci] (or [c, taps])
    const size_t k_per_channel = w.size() / size_t(co);
    for (size_t k = 0; k < w.size(); ++k) by_channel[(k % size_t(co)) * k_per_channel + k / size_t(co)] = w[k];
    bounds = bias_bounds(by_channel, size_t(co));
    if (dw) {
      weight = w;
    } else {
      const int64_t groups = (ci + 3) / 4;  // [taps, ceil(ci/4), co, 4], padding channels zero
      weight.assign(size_t(taps * groups * co * 4), 0);
      sums.assign(size_t(co), 0);
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t i = 0; i < ci; ++i)
          for (int64_t o = 0; o < co; ++o) {
            const int8_t v = w[size_t((t * ci + i) * co + o)];
            weight[size_t(((t * groups + i / 4) * co + o) * 4 + i % 4)] = v;
            sums[size_t(o)] += v;
          }
    }
    weight_scale = uniform(size_t(co), rng, 0.002f, 0.02f);
    float_bias = uniform(size_t(co), rng, -0.5f, 0.5f);
  }

  // dynamic_input: `a` is a dynamic value (qa ignored); otherwise a static one quantized with qa.
  int32_t add(Program& p, bool dynamic_input, int32_t a, QuantParams qa, int32_t residual = -1,
              QuantParams qr = {}) const {
    if (dynamic_input)
      return p.quantized_conv(a, depthwise, g, co, weight, sums, {}, {}, qa, residual, qr, act, out, has_output_q,
                              weight_scale, float_bias);
    const Requant r = requant_for(qa, weight_scale, float_bias, bounds);
    return p.quantized_conv(a, depthwise, g, co, weight, sums, r.qbias, r.dequant_scale, qa, residual, qr, act, out,
                            has_output_q);
  }
};

ConvGeometry geometry(int64_t k, int64_t stride_hw, int64_t pad) {
  ConvGeometry g;
  for (int i = 0; i < 3; ++i) {
    g.kernel[i] = k;
    g.stride[i] = i == 0 ? 1 : stride_hw;
    g.padding[i] = pad;
  }
  return g;
}

// Two samples dequantized by a depthwise 1x1x1 conv of weight 1 (weight scale 1, bias 0, float output): each value
// comes back as (q - zp) * scale, with q, zp and scale worked out by hand.
void hand_computed_samples() {
  Program p;
  const int32_t x = p.set_input(1);
  const int32_t q = p.dynamic_quantize(x);
  const int32_t y = p.quantized_conv(q, true, ConvGeometry{}, 1, {1}, {}, {}, {}, QuantParams{}, -1, QuantParams{},
                                     Activation::identity, QuantParams{}, false, {1.0f}, {0.0f});
  p.set_outputs({y}, {Program::Layout::nthwc});
  // Sample 0: range [-1, 3]: scale 4/255, zero point round(-128 + 63.75) = -64; q = -128, -64, 127 (191.25 -> 191).
  // Sample 1: range [0, 6] (0 included): scale 6/255, zero point -128; q - zp = 85, 170, 255.
  const std::vector<float> in{-1.0f, 0.0f, 3.0f, 2.0f, 4.0f, 6.0f};
  const auto out = p.run(in.data(), Shape5{2, 1, 1, 3, 1}, 1);
  const float* got = static_cast<const float*>(out[0].data());
  const float s0 = float(4.0 / 255.0), s1 = float(6.0 / 255.0);
  const float want[6] = {-64.0f * s0, 0.0f, 191.0f * s0, 85.0f * s1, 170.0f * s1, 255.0f * s1};
  for (int k = 0; k < 6; ++k) CHECK(got[k] == want[k]);
  // An all-zero sample: scale 1e-8 (as float), zero point -128, every value back to 0.
  const std::vector<float> zeros(3, 0.0f);
  const auto z = p.run(zeros.data(), Shape5{1, 1, 1, 3, 1}, 1);
  for (int k = 0; k < 3; ++k) CHECK(static_cast<const float*>(z[0].data())[k] == 0.0f);

  // The int32 bias is round_half_even(double(float_bias) / double(dequant scale)): a bias whose float32 quotient
  // rounds the other way (it lands on k + 0.5 while the exact one does not) tells the double division apart. With
  // weight 0 the output is float(bias) * dequant scale.
  const float weight_scale = 0.37f, dequant = s0 * weight_scale;
  float bias = 0.0f;
  for (int k = 0; k < 2000 && bias == 0.0f; ++k) {
    float candidate = float((k + 0.5) * double(dequant));
    for (int ulp = 0; ulp < 4 && bias == 0.0f; ++ulp, candidate = std::nextafter(candidate, 1e30f))
      if (std::nearbyint(double(candidate) / double(dequant)) != std::nearbyint(candidate / dequant)) bias = candidate;
  }
  CHECK(bias != 0.0f);
  Program b;
  const int32_t bx = b.set_input(1);
  b.set_outputs({b.quantized_conv(b.dynamic_quantize(bx), true, ConvGeometry{}, 1, {0}, {}, {}, {}, QuantParams{}, -1,
                                  QuantParams{}, Activation::identity, QuantParams{}, false, {weight_scale}, {bias})},
                {Program::Layout::nthwc});
  const auto biased = b.run(in.data(), Shape5{1, 1, 1, 3, 1}, 1);  // sample 0's range: scale s0
  const float want_bias = float(std::nearbyint(double(bias) / double(dequant))) * dequant;
  for (int k = 0; k < 3; ++k) CHECK(static_cast<const float*>(biased[0].data())[k] == want_bias);

  // An all-zero sample (scale float(1e-8)) makes bias / dequant scale = 0.5 / (1e-8 * 0.01) = 5e9, beyond any int32:
  // it is clamped to 2^31 - 1 - 512 * |w| (w = 3 here), and q - zp = 0, so every output is that bias times the scale.
  Program c;
  const int32_t cx = c.set_input(1);
  c.set_outputs({c.quantized_conv(c.dynamic_quantize(cx), true, ConvGeometry{}, 1, {3}, {}, {}, {}, QuantParams{}, -1,
                                  QuantParams{}, Activation::identity, QuantParams{}, false, {0.01f}, {0.5f})},
                {Program::Layout::nthwc});
  const auto clamped = c.run(zeros.data(), Shape5{1, 1, 1, 3, 1}, 1);
  const float want_clamped = float(2147483647 - 512 * 3) * (float(1e-8) * 0.01f);
  for (int k = 0; k < 3; ++k) CHECK(static_cast<const float*>(clamped[0].data())[k] == want_clamped);

  // A minimum scale (what quantize_model gives such readers so that no bias clamps): the same all-zero sample with
  // scale 2^-10 keeps the bias, round(0.5 / (2^-10 * 0.01)) * (2^-10 * 0.01); a sample of range [-1, 3] (4/255 >
  // 2^-10) keeps its own scale.
  Program m;
  const int32_t mx = m.set_input(1);
  const float floor_scale = 1.0f / 1024.0f;
  m.set_outputs({m.quantized_conv(m.dynamic_quantize(mx, floor_scale), true, ConvGeometry{}, 1, {3}, {}, {}, {},
                                  QuantParams{}, -1, QuantParams{}, Activation::identity, QuantParams{}, false, {0.01f},
                                  {0.5f})},
                {Program::Layout::nthwc});
  const float floor_dequant = floor_scale * 0.01f;
  const float want_floor = float(std::nearbyint(0.5 / double(floor_dequant))) * floor_dequant;
  const auto floored = m.run(zeros.data(), Shape5{1, 1, 1, 3, 1}, 1);
  for (int k = 0; k < 3; ++k) CHECK(static_cast<const float*>(floored[0].data())[k] == want_floor);
  const auto own = m.run(in.data(), Shape5{1, 1, 1, 3, 1}, 1);  // q - zp = -64, 0, 191 (above), weight 3
  const float own_dequant = s0 * 0.01f, own_bias = float(std::nearbyint(0.5 / double(own_dequant)));
  const float want_own[3] = {(own_bias - 3.0f * 64.0f) * own_dequant, own_bias * own_dequant,
                             (own_bias + 3.0f * 191.0f) * own_dequant};
  for (int k = 0; k < 3; ++k) CHECK(static_cast<const float*>(own[0].data())[k] == want_own[k]);
  for (float bad : {0.0f, 1e-9f, std::nanf(""), INFINITY}) {
    Program e;
    const int32_t ex = e.set_input(1);
    CHECK_THROWS(e.dynamic_quantize(ex, bad), std::invalid_argument);
  }
}

void convs_equal_per_sample_static_programs() {
  std::mt19937 rng(7);
  const Shape5 shape{6, 3, 5, 7, 13};
  const std::vector<float> in = batch(shape, rng);
  const QConv pointwise(rng, false, 13, 7, ConvGeometry{}, Activation::relu);
  const QConv dense(rng, false, 13, 9, geometry(3, 2, 1), Activation::swish);
  const QConv depthwise(rng, true, 13, 13, geometry(3, 1, 1), Activation::hswish);
  const QConv depthwise_s2(rng, true, 13, 13, geometry(3, 2, 0), Activation::identity);
  for (const QConv* layer : {&pointwise, &dense, &depthwise, &depthwise_s2}) {
    const Build build = [&](Program& p, int32_t x, Quantizer& quantize) -> std::vector<int32_t> {
      const auto [a, qa] = quantize(p, x);
      return {layer->add(p, quantize.dynamic(), a, qa)};
    };
    for (int threads : {1, 3}) {
      const std::vector<QuantParams> qs = check_against_static("conv", 13, build, shape, in, threads);
      // The samples' ranges really differ (else the test would not tell per-sample from per-batch qparams).
      CHECK(qs[0].scale != qs[1].scale && qs[1].scale != qs[2].scale && qs[3].zero_point == -128 &&
            qs[4].zero_point == 127 && qs[5].zero_point == -128);
    }
  }
}

// Dynamic input and dynamic residual with different per-sample ranges (the residual: an fp32 conv of the input,
// quantized dynamically), a float32 output, and a static input with a dynamic residual.
void residuals_and_float_output() {
  std::mt19937 rng(8);
  const Shape5 shape{5, 2, 4, 5, 6};
  const std::vector<float> in = batch(shape, rng);
  const std::vector<float> fp_weight = uniform(6 * 10, rng, -2.0f, 2.0f), fp_bias = uniform(10, rng, -1.0f, 1.0f);
  const QConv conv(rng, false, 6, 10, ConvGeometry{}, Activation::relu);
  QConv float_out(rng, false, 6, 10, geometry(3, 1, 1), Activation::swish);
  float_out.has_output_q = false;
  const Build both_dynamic = [&](Program& p, int32_t x, Quantizer& quantize) -> std::vector<int32_t> {
    const auto [a, qa] = quantize(p, x);
    const int32_t y = p.conv(x, false, ConvGeometry{}, 10, fp_weight, fp_bias, -1, Activation::identity);
    const auto [r, qr] = quantize(p, y);
    return {conv.add(p, quantize.dynamic(), a, qa, r, qr)};
  };
  const Build with_float_output = [&](Program& p, int32_t x, Quantizer& quantize) -> std::vector<int32_t> {
    const int32_t y = p.conv(x, false, ConvGeometry{}, 10, fp_weight, fp_bias, -1, Activation::identity);
    const auto [r, qr] = quantize(p, y);
    const auto [a, qa] = quantize(p, x);
    return {float_out.add(p, quantize.dynamic(), a, qa, r, qr)};
  };
  const Build static_input = [&](Program& p, int32_t x, Quantizer& quantize) -> std::vector<int32_t> {
    const QuantParams qa{0.13f, 5};
    const int32_t a = p.quantize(x, qa);
    const int32_t y = p.conv(x, false, ConvGeometry{}, 10, fp_weight, fp_bias, -1, Activation::identity);
    const auto [r, qr] = quantize(p, y);
    return {conv.add(p, false, a, qa, r, qr)};
  };
  for (int threads : {1, 3}) {
    check_against_static("dynamic input + residual", 6, both_dynamic, shape, in, threads);
    check_against_static("float output", 6, with_float_output, shape, in, threads);
    check_against_static("static input, dynamic residual", 6, static_input, shape, in, threads);
  }
}

// The other steps that read dynamic values: linear, squeeze-excitation, global and fixed-kernel average pools (int8
// and float outputs), and one dynamic value read by several steps.
void other_steps_equal_per_sample_static_programs() {
  std::mt19937 rng(9);
  const Shape5 shape{6, 4, 4, 6, 11};
  const std::vector<float> in = batch(shape, rng);
  const int64_t C = 11, M = 5, hidden = 3;
  const std::vector<int8_t> linear_w = random_int8(size_t(M * C), rng);
  const std::vector<float> linear_scale = uniform(size_t(M), rng, 0.001f, 0.01f);
  const std::vector<float> linear_bias = uniform(size_t(M), rng, -0.3f, 0.3f);
  const std::vector<float> w0 = uniform(size_t(hidden * C), rng, -1, 1), b0 = uniform(size_t(hidden), rng, -1, 1);
  const std::vector<float> w1 = uniform(size_t(hidden * C), rng, -1, 1), b1 = uniform(size_t(C), rng, -1, 1);
  ConvGeometry window;
  for (int d = 0; d < 3; ++d) window.kernel[d] = window.stride[d] = 2;
  const QuantParams out{0.02f, 7};
  const QConv pointwise(rng, false, C, 4, ConvGeometry{}, Activation::identity);
  const Build build = [&](Program& p, int32_t x, Quantizer& quantize) -> std::vector<int32_t> {
    const auto [a, qa] = quantize(p, x);  // one dynamic value, read by every step below
    int32_t linear;
    if (quantize.dynamic()) {
      linear = p.quantized_linear(a, M, linear_w, {}, {}, qa, Activation::relu, linear_scale, linear_bias);
    } else {
      const Requant r = requant_for(qa, linear_scale, linear_bias, bias_bounds(linear_w, size_t(M)));
      linear = p.quantized_linear(a, M, linear_w, r.qbias, r.dequant_scale, qa, Activation::relu);
    }
    return {linear,
            p.quantized_squeeze_excitation(a, hidden, w0, b0, w1, b1, Activation::relu, Activation::sigmoid, qa, out),
            p.quantized_squeeze_excitation(a, hidden, w0, b0, w1, b1, Activation::relu, Activation::swish, qa, out, {},
                                           {}, /*has_output_q=*/false),
            p.quantized_global_avg_pool(a, qa, true, out),
            p.quantized_global_avg_pool(a, qa, false, QuantParams{}),
            p.quantized_avg_pool(a, window, qa, true, out),
            p.quantized_avg_pool(a, window, qa, false, QuantParams{}),
            pointwise.add(p, quantize.dynamic(), a, qa)};
  };
  for (int threads : {1, 3}) check_against_static("linear / SE / pools", C, build, shape, in, threads);
  Program p;
  Quantizer dynamic(Quantizer::Mode::dynamic);
  build_and_run(C, build, dynamic, in.data(), shape, 1, &p);
  CHECK(p.num_steps() == 9);  // one dynamic_quantize for eight readers
}

// Samples large enough that the range pass splits each over the threads (pieces of >= 16K floats), and a non-finite
// value in the second piece of a sample is still found.
void large_samples_and_non_finite_values() {
  std::mt19937 rng(10);
  const Shape5 shape{2, 4, 32, 32, 9};  // 36864 floats a sample: two pieces with 3 threads
  std::vector<float> in = batch(shape, rng);
  in[size_t(shape.numel() / 2 - 5)] = 50.0f;   // sample 0's maximum near its end
  in[size_t(shape.numel() - 1)] = -40.0f;      // sample 1's minimum at its very end
  QConv layer(rng, false, 9, 5, ConvGeometry{}, Activation::identity);
  layer.has_output_q = false;
  const Build build = [&](Program& p, int32_t x, Quantizer& quantize) -> std::vector<int32_t> {
    const auto [a, qa] = quantize(p, x);
    return {layer.add(p, quantize.dynamic(), a, qa)};
  };
  for (int threads : {1, 3}) {
    const auto qs = check_against_static("large samples", 9, build, shape, in, threads);
    CHECK(qs[0].scale == float((50.0 - double(*std::min_element(in.begin(), in.begin() + shape.numel() / 2))) / 255.0));
  }

  Program p;
  Quantizer dynamic(Quantizer::Mode::dynamic);
  build_and_run(9, build, dynamic, in.data(), shape, 1, &p);
  const float bad_values[3] = {std::nanf(""), INFINITY, -INFINITY};
  for (float bad : bad_values)
    for (int threads : {1, 3}) {
      std::vector<float> x = in;
      x[size_t(shape.numel() - 100)] = bad;  // sample 1, second piece
      bool thrown = false;
      try {
        p.run(x.data(), shape, threads);
      } catch (const std::invalid_argument& e) {
        thrown = std::string(e.what()) == "program step 0 (dynamic_quantize): sample 1 holds non-finite values";
        if (!thrown) std::fprintf(stderr, "  unexpected message: %s\n", e.what());
      }
      CHECK(thrown);
    }
  // The program still runs afterwards (its buffers were returned).
  CHECK(p.run(in.data(), shape, 3).size() == 1);
}

void errors() {
  Program p;
  const int32_t x = p.set_input(4);
  const int32_t a = p.dynamic_quantize(x);
  const int32_t s = p.quantize(x, QuantParams{0.1f, 0});
  const std::vector<int8_t> w(4 * 4, 1);  // packed pointwise [1, 1, 4, 4]
  const std::vector<int32_t> sums(4, 4);
  const std::vector<float> ws(4, 0.01f), fb(4, 0.1f);
  auto qconv = [&](int32_t in, std::vector<float> weight_scale, std::vector<float> float_bias,
                   std::vector<int32_t> bias = {}, std::vector<float> dequant = {}) {
    return p.quantized_conv(in, false, ConvGeometry{}, 4, w, sums, std::move(bias), std::move(dequant),
                            QuantParams{0.1f, 0}, -1, QuantParams{}, Activation::identity, QuantParams{0.1f, 0}, true,
                            std::move(weight_scale), std::move(float_bias));
  };
  CHECK_THROWS(p.dynamic_quantize(a), std::invalid_argument);                       // int8 input
  CHECK_THROWS(p.dynamic_quantize(7), std::invalid_argument);                       // no such value
  CHECK_THROWS(p.quantize(a, QuantParams{0.1f, 0}), std::invalid_argument);
  CHECK_THROWS(p.conv(a, false, ConvGeometry{}, 4, std::vector<float>(16, 1.0f), std::vector<float>(4, 0.0f), -1,
                      Activation::identity),
               std::invalid_argument);                                              // a float conv
  CHECK_THROWS(p.global_avg_pool(a), std::invalid_argument);
  CHECK_THROWS(p.set_outputs({a}, {Program::Layout::nthwc}), std::invalid_argument);  // qparams only inside a run
  CHECK_THROWS(p.set_outputs({s, a}, {Program::Layout::nthwc, Program::Layout::nthwc}), std::invalid_argument);
  CHECK_THROWS(qconv(a, {}, {}), std::invalid_argument);                            // missing both
  CHECK_THROWS(qconv(a, ws, {}), std::invalid_argument);                            // missing the bias
  CHECK_THROWS(qconv(a, {}, fb), std::invalid_argument);
  CHECK_THROWS(qconv(a, std::vector<float>(3, 0.01f), fb), std::invalid_argument);  // wrong sizes
  CHECK_THROWS(qconv(a, ws, std::vector<float>(5, 0.1f)), std::invalid_argument);
  for (float bad : {0.0f, -0.01f, std::nanf(""), INFINITY, 1e-31f}) {
    std::vector<float> bad_scale = ws;
    bad_scale[2] = bad;
    CHECK_THROWS(qconv(a, bad_scale, fb), std::invalid_argument);
  }
  std::vector<float> bad_bias = fb;
  bad_bias[1] = INFINITY;
  CHECK_THROWS(qconv(a, ws, bad_bias), std::invalid_argument);
  // A static input takes no weight_scale / float_bias (they would be silently unused).
  CHECK_THROWS(qconv(s, ws, fb, {0, 0, 0, 0}, {0.001f, 0.001f, 0.001f, 0.001f}), std::invalid_argument);
  CHECK(qconv(s, {}, {}, {0, 0, 0, 0}, {0.001f, 0.001f, 0.001f, 0.001f}) > 0);      // ... and still works without
  CHECK(qconv(a, ws, fb) > 0);                                                      // bias / dequant / in ignored
  CHECK(qconv(a, ws, fb, {1}, {-5.0f}) > 0);
  const std::vector<int8_t> lw(8, 1);
  CHECK_THROWS(p.quantized_linear(a, 2, lw, {}, {}, QuantParams{}, Activation::identity), std::invalid_argument);
  CHECK_THROWS(p.quantized_linear(a, 2, lw, {}, {}, QuantParams{}, Activation::identity, {0.1f}, {0.0f, 0.0f}),
               std::invalid_argument);
  CHECK_THROWS(p.quantized_linear(s, 2, lw, {0, 0}, {0.1f, 0.1f}, QuantParams{0.1f, 0}, Activation::identity,
                                  {0.1f, 0.1f}, {0.0f, 0.0f}),
               std::invalid_argument);
  // The pools and the SE ignore `in` for a dynamic input (invalid here), and keep checking it for a static one.
  CHECK(p.quantized_global_avg_pool(a, QuantParams{-1.0f, 999}, false, QuantParams{}) > 0);
  CHECK_THROWS(p.quantized_global_avg_pool(s, QuantParams{-1.0f, 999}, false, QuantParams{}), std::invalid_argument);
  // Non-finite values in a short sample (no full vector block) and in a block's first lane.
  Program pool;
  const int32_t px = pool.set_input(1);
  pool.set_outputs({pool.quantized_global_avg_pool(pool.dynamic_quantize(px), QuantParams{}, false, QuantParams{})},
                   {Program::Layout::vector});
  for (int64_t width : {3, 37}) {
    std::vector<float> values(size_t(2 * width), 1.0f);
    values[size_t(width + (width == 3 ? 1 : 16))] = -INFINITY;  // sample 1
    bool thrown = false;
    try {
      pool.run(values.data(), Shape5{2, 1, 1, width, 1}, 1);
    } catch (const std::invalid_argument& e) {
      thrown = std::string(e.what()).find("sample 1 holds non-finite values") != std::string::npos;
    }
    CHECK(thrown);
    values[size_t(width + (width == 3 ? 1 : 16))] = 1.0f;
    CHECK(pool.run(values.data(), Shape5{2, 1, 1, width, 1}, 1).size() == 1);
  }
  const std::string described = p.describe();
  CHECK(described.find("v1 = dynamic_quantize(v0)") != std::string::npos);
  CHECK(described.find("dynamic input") != std::string::npos);
}

void profiles_mark_dynamic_steps() {
  std::mt19937 rng(12);
  const Shape5 shape{3, 2, 3, 3, 8};
  const std::vector<float> in = batch(shape, rng);
  const QConv pointwise(rng, false, 8, 8, ConvGeometry{}, Activation::relu);
  const QConv depthwise(rng, true, 8, 8, geometry(3, 1, 1), Activation::relu);
  Program p;
  const int32_t x = p.set_input(8);
  const int32_t a = p.dynamic_quantize(x);
  const int32_t y = pointwise.add(p, true, a, QuantParams{}, a);
  const int32_t z = depthwise.add(p, false, y, pointwise.out);
  p.set_outputs({z}, {Program::Layout::nthwc});
  p.set_profiling(true);
  p.run(in.data(), shape, 1);
  const auto profile = p.last_profile();
  CHECK(profile.size() == 3);
  if (profile.size() == 3) {
    CHECK(profile[0].kind == "dynamic_quantize");
    CHECK(profile[1].kind == "quantized_conv/pointwise+dyn");
    CHECK(profile[2].kind == "quantized_conv/depthwise");  // a static input: no suffix
  }
  CHECK(p.describe().find("dynamic residual") != std::string::npos);
}

void model_file_version_5() {
  std::mt19937 rng(13);
  const Shape5 shape{4, 2, 4, 4, 6};
  const std::vector<float> in = batch(shape, rng);
  const QConv conv(rng, false, 6, 6, geometry(3, 1, 1), Activation::relu);
  const std::vector<int8_t> lw = random_int8(3 * 6, rng);
  Program p;
  const int32_t x = p.set_input(6);
  const int32_t a = p.dynamic_quantize(x);
  const int32_t y = conv.add(p, true, a, QuantParams{}, a);
  const int32_t m = p.quantized_global_avg_pool(y, conv.out, true, QuantParams{0.03f, 1});
  const int32_t f = p.quantized_linear(p.dynamic_quantize(p.quantized_global_avg_pool(a, {}, false, {})), 3, lw, {},
                                       {}, QuantParams{}, Activation::identity, {0.01f, 0.02f, 0.03f},
                                       {0.1f, -0.2f, 0.0f});
  p.set_outputs({m, f}, {Program::Layout::vector, Program::Layout::vector});
  const std::string path = temp_path("v5.pvp"), bad = temp_path("bad.pvp");
  p.save(path);
  const auto loaded = Program::load(path);
  CHECK(loaded->describe() == p.describe());
  const auto want = p.run(in.data(), shape, 2), got = loaded->run(in.data(), shape, 2);
  CHECK(want.size() == 2 && got.size() == 2);
  for (size_t k = 0; k < want.size() && k < got.size(); ++k)
    CHECK(bytes_of(got[k]) == bytes_of(want[k]) && std::memcmp(got[k].data(), want[k].data(), bytes_of(want[k])) == 0);

  const std::string bytes = read_file(path);
  CHECK(file_version(bytes) == kCurrentVersion);
  // Labelled version 4, the file names a kind version 4 does not have (dynamic_quantize, step 0).
  write_file(bad, relabelled(bytes, 4));
  CHECK(load_fails_with(bad, "unknown step kind 11 for format version 4"));
  // Step 0 (dynamic_quantize) has every array empty: its weight_scale count is the last of its 13 array counts.
  const size_t step0 = first_step_offset(bytes), fixed = 4 + 4 + 4 + 1 + 9 * 8 + 8 + 8 + 4 + 4 + 3 * 8 + 1 + 4 + 4;
  const size_t weight_scale_count = step0 + fixed + 12 * 8;
  uint64_t count;
  std::memcpy(&count, bytes.data() + weight_scale_count, 8);
  CHECK(count == 0);
  std::string with_scales = bytes;
  const uint64_t one = 1;
  const float scale = 0.5f;
  std::memcpy(&with_scales[weight_scale_count], &one, 8);
  with_scales.insert(weight_scale_count + 8, reinterpret_cast<const char*>(&scale), 4);
  write_file(bad, with_scales);
  CHECK(load_fails_with(bad, "only quantized conv and linear steps take them"));
  // Every truncation is refused; flipped bytes are refused or load and run (no crash under ASan/UBSan).
  CHECK(every_truncation_refused(bytes, bad, 7, "program file"));
  for (size_t at = step0; at < bytes.size(); at += 3) {
    std::string flipped = bytes;
    flipped[at] = char(flipped[at] ^ 0x24);
    write_file(bad, flipped);
    try {
      Program::load(bad)->run(in.data(), shape, 1);
    } catch (const std::invalid_argument&) {
    }
  }
  std::remove(path.c_str());
  std::remove(bad.c_str());
}

}  // namespace

int main() {
  hand_computed_samples();
  convs_equal_per_sample_static_programs();
  residuals_and_float_output();
  other_steps_equal_per_sample_static_programs();
  large_samples_and_non_finite_values();
  errors();
  profiles_mark_dynamic_steps();
  model_file_version_5();
  return check::finish("test_program_dynamic");
}
