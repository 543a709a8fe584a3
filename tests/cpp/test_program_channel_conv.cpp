// int8 conv steps with per-channel output quantization (Program::quantized_conv's out_scales / out_zero_points, model
// format version 9): a pointwise (packed dense GEMM) and a padded 3x3x3 depthwise conv, with and without a residual
// and for a dynamic input, against a double reference of the integer arithmetic (within 1 LSB: the SIMD kernels
// multiply by 1 / scale where the reference divides); the builders refuse bad per-channel qparams; model files
// round-trip, and the fields are refused on other steps and in files labelled version 8. Also built under ASan/UBSan.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
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

namespace {

// One int8 conv layer: weights w[co][tap][ci] (depthwise: ci = 0 only, co = the channel), int32 bias, dequant scales,
// per-channel output qparams. `in` quantizes the program input (static); with `dynamic` the conv reads a
// dynamic_quantize step instead and takes weight_scale / float_bias.
struct ChannelConv {
  bool depthwise;
  int64_t ci, co, k;  // k: the cubic kernel size (1 or 3; padding k / 2)
  bool residual, dynamic;
  Activation act;
  QuantParams in{0.05f, -7}, residual_q{0.03f, 4};
  std::vector<int8_t> w;  // [co][k^3][ci or 1]
  std::vector<int32_t> bias;
  std::vector<float> dequant, weight_scale, float_bias, scales;
  std::vector<int32_t> zero_points;

  ChannelConv(std::mt19937& rng, bool dw, int64_t c_in, int64_t c_out, int64_t kernel, bool res, bool dyn, Activation a)
      : depthwise(dw), ci(c_in), co(dw ? c_in : c_out), k(kernel), residual(res), dynamic(dyn), act(a) {
    std::uniform_int_distribution<int> byte(-127, 127), zp(-128, 127), small(-2000, 2000);
    std::uniform_real_distribution<float> log_scale(-8.0f, -3.0f);  // 1/256 .. 1/8: from saturating to fine
    w.resize(size_t(co * taps() * per_tap()));
    for (int8_t& v : w) v = int8_t(byte(rng));
    for (int64_t c = 0; c < co; ++c) {
      weight_scale.push_back(std::exp2(log_scale(rng)) / 64.0f);
      dequant.push_back(in.scale * weight_scale.back());
      bias.push_back(small(rng));
      float_bias.push_back(float(bias.back()) * dequant.back());
      scales.push_back(std::exp2(log_scale(rng)));
      zero_points.push_back(zp(rng));
    }
  }
  int64_t taps() const { return k * k * k; }
  int64_t per_tap() const { return depthwise ? 1 : ci; }
  ConvGeometry geometry() const {
    ConvGeometry g;
    for (int d = 0; d < 3; ++d) {
      g.kernel[d] = k;
      g.padding[d] = k / 2;
    }
    return g;
  }
  // The kernels' layouts: depthwise [taps, C]; dense [taps, ceil(Ci/4), Co, 4] plus per-channel weight sums.
  std::vector<int8_t> packed() const {
    std::vector<int8_t> out;
    if (depthwise) {
      out.resize(size_t(taps() * co));
      for (int64_t t = 0; t < taps(); ++t)
        for (int64_t c = 0; c < co; ++c) out[size_t(t * co + c)] = w[size_t(c * taps() + t)];
      return out;
    }
    const int64_t blocks = (ci + 3) / 4;
    out.assign(size_t(taps() * blocks * co * 4), 0);
    for (int64_t t = 0; t < taps(); ++t)
      for (int64_t c = 0; c < co; ++c)
        for (int64_t i = 0; i < ci; ++i)
          out[size_t(((t * blocks + i / 4) * co + c) * 4 + i % 4)] = w[size_t((c * taps() + t) * ci + i)];
    return out;
  }
  std::vector<int32_t> sums() const {
    if (depthwise) return {};
    std::vector<int32_t> s(size_t(co), 0);
    for (int64_t c = 0; c < co; ++c)
      for (int64_t j = 0; j < taps() * ci; ++j) s[size_t(c)] += w[size_t(c * taps() * ci + j)];
    return s;
  }
  // input -> quantize (or dynamic_quantize) [-> quantize of the input for the residual] -> conv; outputs: the
  // conv's input codes, the residual codes (or the input again), the conv.
  std::unique_ptr<Program> build(std::vector<float> s, std::vector<int32_t> z) const {
    auto p = std::make_unique<Program>();
    const int32_t x = p->set_input(ci);
    const int32_t q = dynamic ? p->dynamic_quantize(x) : p->quantize(x, in);
    const int32_t r = residual ? p->quantize(x, residual_q) : -1;
    const int32_t y = p->quantized_conv(q, depthwise, geometry(), co, packed(), sums(),
                                        dynamic ? std::vector<int32_t>{} : bias,
                                        dynamic ? std::vector<float>{} : dequant, in, r, residual_q, act, QuantParams{},
                                        true, dynamic ? weight_scale : std::vector<float>{},
                                        dynamic ? float_bias : std::vector<float>{}, std::move(s), std::move(z));
    const int32_t codes = dynamic ? p->quantize(x, in) : q;  // a dynamic value cannot be an output
    p->set_outputs({codes, residual ? r : codes, y}, std::vector<Program::Layout>(3, Program::Layout::nthwc));
    return p;
  }
  std::unique_ptr<Program> build() const { return build(scales, zero_points); }

  // The double reference from the input codes q (static qparams `in`; channels-last [N, T, H, W, Ci]).
  std::vector<int8_t> reference(const int8_t* q, const int8_t* res, const Shape5& x, QuantParams q_in,
                                const std::vector<int32_t>& b, const std::vector<float>& d) const {
    Shape5 y = x;  // stride 1, padding k / 2: same extent
    y.c = co;
    std::vector<int8_t> out(size_t(y.numel()));
    const int64_t pad = k / 2;
    for (int64_t n = 0; n < x.n; ++n)
      for (int64_t t = 0; t < x.t; ++t)
        for (int64_t h = 0; h < x.h; ++h)
          for (int64_t v = 0; v < x.w; ++v)
            for (int64_t c = 0; c < co; ++c) {
              int64_t acc = b[size_t(c)];
              for (int64_t dt = 0; dt < k; ++dt)
                for (int64_t dh = 0; dh < k; ++dh)
                  for (int64_t dw = 0; dw < k; ++dw) {
                    const int64_t tt = t + dt - pad, hh = h + dh - pad, ww = v + dw - pad;
                    if (tt < 0 || hh < 0 || ww < 0 || tt >= x.t || hh >= x.h || ww >= x.w) continue;
                    const int64_t tap = (dt * k + dh) * k + dw;
                    const int8_t* px = q + (((n * x.t + tt) * x.h + hh) * x.w + ww) * x.c;
                    for (int64_t i = 0; i < per_tap(); ++i)
                      acc += int64_t(px[depthwise ? c : i] - q_in.zero_point) * w[size_t((c * taps() + tap) * per_tap() + i)];
                  }
              const int64_t o = (((n * y.t + t) * y.h + h) * y.w + v) * co + c;
              double value = double(float(acc)) * double(d[size_t(c)]);
              if (res) value += double(res[o] - residual_q.zero_point) * double(residual_q.scale);
              const double r = std::nearbyint(activate(value, act) / double(scales[size_t(c)])) + zero_points[size_t(c)];
              out[size_t(o)] = int8_t(std::min(127.0, std::max(-128.0, r)));
            }
    return out;
  }
};

// Each sample's dynamic qparams as the runtime derives them (the dynamic tests compare per sample against the static
// reference built from those qparams).
QuantParams sample_qparams(const float* x, int64_t count) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float scale = std::max((hi - lo) / 255.0f, 1e-8f);
  const float zp = std::nearbyint(-128.0f - lo / scale);
  return {scale, int32_t(std::min(127.0f, std::max(-128.0f, zp)))};
}

void equals_the_reference() {
  std::mt19937 rng(91);
  int64_t compared = 0, off = 0, saturated = 0, layers = 0;
  struct Case {
    bool depthwise;
    int64_t ci, co, k;
    bool residual;
  };
  for (const Case& c : {Case{false, 13, 21, 1, false}, Case{false, 37, 37, 1, true}, Case{true, 19, 19, 3, false},
                        Case{true, 35, 35, 3, true}, Case{false, 6, 6, 3, true}})
    for (const Activation act : {Activation::identity, Activation::relu, Activation::swish}) {
      const ChannelConv conv(rng, c.depthwise, c.ci, c.co, c.k, c.residual, false, act);
      const auto p = conv.build();
      CHECK(p->describe().find("per-channel output") != std::string::npos);
      ++layers;
      for (const Shape5& shape : {Shape5{2, 3, 5, 7, c.ci}, Shape5{1, 1, 1, 1, c.ci}, Shape5{1, 2, 4, 19, c.ci}}) {
        const std::vector<float> x = random_floats(size_t(shape.numel()), rng, 4.0f);
        for (int threads : {1, 2, 3}) {
          const auto out = p->run(x.data(), shape, threads);
          CHECK(out[2].dtype == DType::int8 && out[2].shape.c == conv.co);
          const std::vector<int8_t> want =
              conv.reference(static_cast<const int8_t*>(out[0].data()),
                             c.residual ? static_cast<const int8_t*>(out[1].data()) : nullptr, shape, conv.in,
                             conv.bias, conv.dequant);
          const int8_t* got = static_cast<const int8_t*>(out[2].data());
          int64_t worst = 0;
          for (size_t i = 0; i < want.size(); ++i) {
            const int64_t d = std::abs(int(got[i]) - int(want[i]));
            worst = std::max(worst, d);
            off += d != 0;
            saturated += want[i] == 127 || want[i] == -128;
          }
          compared += int64_t(want.size());
          CHECK(worst <= 1);
          if (worst > 1)
            std::fprintf(stderr, "  per-channel conv dw=%d ci=%ld k=%ld act=%d threads=%d: max diff %ld\n",
                         int(c.depthwise), long(c.ci), long(c.k), int(act), threads, long(worst));
        }
      }
    }
  std::printf("per-channel int8 conv: %ld layers, %ld/%ld outputs off by 1 LSB from the double reference, %ld "
              "saturated\n", long(layers), long(off), long(compared), long(saturated));
  CHECK(off * 100 <= compared);  // only next to rounding ties
  CHECK(saturated * 3 < compared);  // most outputs inside the range: the channel scales are exercised
}

// A dynamic input: each sample is quantized with its own range, then requantized per channel.
void dynamic_input_equals_the_reference() {
  std::mt19937 rng(5);
  for (const bool depthwise : {false, true}) {
    const ChannelConv conv(rng, depthwise, 24, 29, depthwise ? 3 : 1, false, true, Activation::relu);
    const auto p = conv.build();
    const Shape5 shape{2, 2, 3, 5, 24};
    std::vector<float> x = random_floats(size_t(shape.numel()), rng, 3.0f);
    for (size_t i = x.size() / 2; i < x.size(); ++i) x[i] *= 0.1f;  // the second sample's range is 10x narrower
    const auto out = p->run(x.data(), shape, 2);
    const int64_t per_sample = shape.numel() / shape.n, out_per_sample = per_sample / shape.c * conv.co;
    Shape5 one = shape;
    one.n = 1;
    for (int64_t n = 0; n < shape.n; ++n) {
      const QuantParams qp = sample_qparams(x.data() + n * per_sample, per_sample);
      std::vector<int8_t> codes(static_cast<size_t>(per_sample));
      for (int64_t i = 0; i < per_sample; ++i)
        codes[size_t(i)] = int8_t(std::min(127.0f, std::max(-128.0f, std::nearbyint(x[size_t(n * per_sample + i)] /
                                                                                      qp.scale) + float(qp.zero_point))));
      std::vector<int32_t> b;
      std::vector<float> d;
      for (int64_t c = 0; c < conv.co; ++c) {
        d.push_back(qp.scale * conv.weight_scale[size_t(c)]);
        b.push_back(int32_t(std::nearbyint(double(conv.float_bias[size_t(c)]) / double(d.back()))));
      }
      const std::vector<int8_t> want = conv.reference(codes.data(), nullptr, one, qp, b, d);
      const int8_t* got = static_cast<const int8_t*>(out[2].data()) + n * out_per_sample;
      int64_t worst = 0;
      for (size_t i = 0; i < want.size(); ++i) worst = std::max<int64_t>(worst, std::abs(int(got[i]) - int(want[i])));
      CHECK(worst <= 1);
    }
  }
}

void builder_errors() {
  std::mt19937 rng(8);
  const ChannelConv conv(rng, false, 11, 9, 1, false, false, Activation::relu);
  const std::vector<float> s = conv.scales;
  const std::vector<int32_t> z = conv.zero_points;
  CHECK(!throws([&] { conv.build(s, z); }));
  CHECK(throws([&] { conv.build(std::vector<float>(s.begin(), s.end() - 1), z); }));  // 8 scales for 9 channels
  CHECK(throws([&] { conv.build(s, std::vector<int32_t>(z.begin() + 1, z.end())); }));
  CHECK(throws([&] { conv.build(s, {}); }));  // scales without zero points
  CHECK(throws([&] { conv.build({}, z); }));
  for (const float bad : {0.0f, -0.5f, std::nanf(""), INFINITY}) {
    std::vector<float> t = s;
    t[4] = bad;
    CHECK(throws([&] { conv.build(t, z); }));
  }
  for (const int32_t bad : {128, -129, 1 << 20}) {
    std::vector<int32_t> t = z;
    t[8] = bad;
    CHECK(throws([&] { conv.build(s, t); }));
  }
  // A float32 output takes no per-channel quantization.
  Program p;
  const int32_t x = p.set_input(conv.ci);
  const int32_t q = p.quantize(x, conv.in);
  CHECK(throws([&] {
    p.quantized_conv(q, false, conv.geometry(), conv.co, conv.packed(), conv.sums(), conv.bias, conv.dequant, conv.in,
                     -1, QuantParams{}, conv.act, QuantParams{}, false, {}, {}, s, z);
  }));
  // With per-channel qparams the per-tensor `out` is unused (any value), as for the squeeze-excitation.
  CHECK(!throws([&] {
    p.quantized_conv(q, false, conv.geometry(), conv.co, conv.packed(), conv.sums(), conv.bias, conv.dequant, conv.in,
                     -1, QuantParams{}, conv.act, QuantParams{0.0f, 999}, true, {}, {}, s, z);
  }));
}

void model_file_round_trip_and_validation() {
  std::mt19937 rng(12);
  const ChannelConv conv(rng, true, 19, 19, 3, true, false, Activation::swish);
  const auto program = conv.build();
  const std::string path = temp_path("channel_conv.pvp"), bad = temp_path("channel_conv_bad.pvp");
  program->save(path);
  const auto loaded = Program::load(path);
  CHECK(loaded->describe() == program->describe());
  const Shape5 shape{2, 3, 5, 7, 19};
  const std::vector<float> in = random_floats(size_t(shape.numel()), rng, 4.0f);
  const auto want = program->run(in.data(), shape, 1), got = loaded->run(in.data(), shape, 2);
  CHECK(std::memcmp(want[2].data(), got[2].data(), size_t(want[2].shape.numel())) == 0);
  const std::string bytes = read_file(path);
  CHECK(file_version(bytes) == kCurrentVersion && kCurrentVersion >= 9);
  // Labelled version 8 (same layout): a conv step's per-channel fields were not allowed then.
  write_file(bad, relabelled(bytes, 8));
  CHECK(load_fails_with(bad, "only int8 squeeze-excitation steps take it before format version 9"));
  // A bad scale in the file is refused by the builder's checks.
  const std::string scales_bytes(reinterpret_cast<const char*>(conv.scales.data()), conv.scales.size() * 4);
  const size_t at = bytes.find(scales_bytes);
  CHECK(at != std::string::npos);
  if (at != std::string::npos) {
    std::string b = bytes;
    const float zero = 0.0f;
    std::memcpy(&b[at + 4 * 5], &zero, 4);
    write_file(bad, b);
    CHECK(load_fails_with(bad, "channel 5 output quantization needs a positive finite scale"));
  }
  CHECK(every_truncation_refused(bytes, bad, 7, "program file"));
  std::remove(path.c_str());
  std::remove(bad.c_str());
}

}  // namespace

int main() {
  equals_the_reference();
  dynamic_input_equals_the_reference();
  builder_errors();
  model_file_round_trip_and_validation();
  return check::finish("test_program_channel_conv");
}
