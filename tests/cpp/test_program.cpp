// The native program runtime: steps chained over recycled buffers give what the steps give one by one, shapes follow
// the input, and bad programs / inputs are std::invalid_argument, not crashes (also run under ASan/UBSan).
// The fused squeeze-excitation (gate step + pointwise conv with an input gate, the depthwise conv's row sums) gives
// what the separate SE step gives, and its model-file fields round-trip and are validated.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <fstream>
#include <random>
#include <string>

#include "../../csrc/c_api/pyvideo.h"
#include "../../csrc/runtime/program.h"
#include "check.h"
#include "program_files.h"

using pyvideo::kernels::Activation;
using pyvideo::runtime::ConvGeometry;
using pyvideo::runtime::Program;
using pyvideo::runtime::QuantParams;
using pyvideo::runtime::Shape5;

namespace {

// [1, 1, 1, W, C] input: x[w][c] = w + 10 c
std::vector<float> ramp(int64_t w, int64_t c) {
  std::vector<float> x(size_t(w * c));
  for (int64_t i = 0; i < w; ++i)
    for (int64_t k = 0; k < c; ++k) x[size_t(i * c + k)] = float(i + 10 * k);
  return x;
}

ConvGeometry pointwise() { return ConvGeometry{}; }

void chained_steps_and_recycled_buffers() {
  // y = relu(pw(x)) with weight [[1, -1], [2, 0]] (Ci=2 x Co=2), then z = pw2(y) + y (residual), then mean over W.
  Program p;
  const int32_t x = p.set_input(2);
  const int32_t y = p.conv(x, false, pointwise(), 2, {1, -1, 2, 0}, {0.5f, 0.0f}, -1, Activation::relu);
  const int32_t z = p.conv(y, false, pointwise(), 2, {1, 0, 0, 1}, {0, 0}, y, Activation::identity);
  const int32_t m = p.global_avg_pool(z);
  p.set_outputs({m, y}, {Program::Layout::vector, Program::Layout::ncthw});
  CHECK(p.num_steps() == 3 && p.num_values() == 4);
  for (int64_t width : {3, 7, 2}) {  // new shapes on each run: buffers are resized and reused
    const std::vector<float> in = ramp(width, 2);
    const auto out = p.run(in.data(), Shape5{1, 1, 1, width, 2}, 1);
    CHECK(out.size() == 2);
    CHECK(out[0].shape == (Shape5{1, 1, 1, 1, 2}));
    CHECK(out[1].shape == (Shape5{1, 1, 1, width, 2}));
    double mean0 = 0, mean1 = 0;
    for (int64_t i = 0; i < width; ++i) {
      const float a = float(i), b = float(i + 10);
      const float y0 = std::max(0.0f, a * 1 + b * 2 + 0.5f), y1 = std::max(0.0f, -a);
      const float* got_y = static_cast<const float*>(out[1].data()) + i * 2;
      CHECK(std::fabs(got_y[0] - y0) < 1e-5f && std::fabs(got_y[1] - y1) < 1e-5f);
      mean0 += 2 * y0 / double(width);
      mean1 += 2 * y1 / double(width);
    }
    const float* got_m = static_cast<const float*>(out[0].data());
    CHECK(std::fabs(got_m[0] - float(mean0)) < 1e-4f && std::fabs(got_m[1] - float(mean1)) < 1e-4f);
  }
}

void int8_steps() {
  // quantize (scale 0.5, zp 1) -> int8 depthwise 1x1x1 with weight 2 (dequant 0.5 * 0.25) -> int8 mean.
  Program p;
  const int32_t x = p.set_input(1);
  const int32_t q = p.quantize(x, QuantParams{0.5f, 1});
  const int32_t c = p.quantized_conv(q, true, pointwise(), 1, {2}, {}, {0}, {0.125f}, QuantParams{0.5f, 1}, -1,
                                     QuantParams{}, Activation::identity, QuantParams{0.25f, 0});
  const int32_t m = p.quantized_global_avg_pool(c, QuantParams{0.25f, 0}, false, QuantParams{});
  p.set_outputs({q, c, m}, std::vector<Program::Layout>(3, Program::Layout::nthwc));
  const std::vector<float> in{0.0f, 1.0f, -3.0f, 100.0f};
  const auto out = p.run(in.data(), Shape5{1, 1, 1, 4, 1}, 2);
  const int8_t* qv = static_cast<const int8_t*>(out[0].data());
  CHECK(qv[0] == 1 && qv[1] == 3 && qv[2] == -5 && qv[3] == 127);  // round(x / 0.5) + 1, clamped
  const int8_t* cv = static_cast<const int8_t*>(out[1].data());
  // (q - 1) * 2 * 0.125 / 0.25 = q - 1
  CHECK(cv[0] == 0 && cv[1] == 2 && cv[2] == -6 && cv[3] == 126);
  CHECK(std::fabs(*static_cast<const float*>(out[2].data()) - 0.25f * (0 + 2 - 6 + 126) / 4.0f) < 1e-6f);
}

// An int8 conv with a float output (has_output_q false): act(dequantized accumulator + residual) as float32, which
// float steps can read and int8 steps cannot; its flag round-trips through a model file.
void int8_conv_with_float_output() {
  Program p;
  const int32_t x = p.set_input(1);
  const int32_t q = p.quantize(x, QuantParams{0.5f, 1});
  // (q - 1) * 2 * 0.125 + residual (q - 1) * 0.5, relu; no output quantization
  const int32_t c = p.quantized_conv(q, true, pointwise(), 1, {2}, {}, {0}, {0.125f}, QuantParams{0.5f, 1}, q,
                                     QuantParams{0.5f, 1}, Activation::relu, QuantParams{}, false);
  const int32_t m = p.global_avg_pool(c);  // a float step reads it
  CHECK(throws([&] {
    p.quantized_conv(c, true, pointwise(), 1, {2}, {}, {0}, {0.125f}, QuantParams{0.5f, 1}, -1, QuantParams{},
                     Activation::identity, QuantParams{0.25f, 0});
  }));  // an int8 step does not
  CHECK(p.describe().find("float output") != std::string::npos);
  p.set_outputs({c, m}, std::vector<Program::Layout>(2, Program::Layout::nthwc));
  const std::vector<float> in{0.0f, 1.0f, -3.0f, 100.0f};
  const std::string path = temp_path("float_output.pvp");
  p.save(path);
  const auto loaded = Program::load(path);
  for (const Program* program : {&p, loaded.get()}) {
    const auto out = const_cast<Program*>(program)->run(in.data(), Shape5{1, 1, 1, 4, 1}, 2);
    CHECK(out[0].dtype == pyvideo::runtime::DType::float32);
    const float* cv = static_cast<const float*>(out[0].data());
    // q = 1, 3, -5, 127: (q - 1) * 0.25 + (q - 1) * 0.5 = 0.75 (q - 1), relu
    CHECK(cv[0] == 0.0f && cv[1] == 1.5f && cv[2] == 0.0f && cv[3] == 94.5f);
    CHECK(std::fabs(*static_cast<const float*>(out[1].data()) - (1.5f + 94.5f) / 4.0f) < 1e-5f);
  }
}

void quantize_rounds_half_to_even_and_saturates() {
  Program p;
  const int32_t x = p.set_input(1);
  p.set_outputs({p.quantize(x, QuantParams{0.5f, 0})}, {Program::Layout::nthwc});
  const std::vector<float> pattern{1.25f, 1.75f, -1.25f, 0.25f, 1e30f, -1e30f, -3e38f, 63.75f};
  // x / 0.5 = 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 0.5 -> 0, saturation both ways, 127.5 -> 127 (clamped)
  const int8_t want[8] = {2, 4, -2, 0, 127, -128, -128, 127};
  std::vector<float> in;
  for (int r = 0; r < 5; ++r) in.insert(in.end(), pattern.begin(), pattern.end());  // vector blocks and a tail
  for (int threads : {1, 3}) {
    const auto out = p.run(in.data(), Shape5{1, 1, 1, int64_t(in.size()), 1}, threads);
    const int8_t* q = static_cast<const int8_t*>(out[0].data());
    for (size_t i = 0; i < in.size(); ++i) CHECK(q[i] == want[i % 8]);
  }
  // A NaN or an infinity anywhere (in a vector block or the tail, on any thread) is refused: no int8 code stands
  // for it (the kernel saturates it, NaN to -128).
  for (const float bad : {std::nanf(""), INFINITY, -INFINITY})
    for (size_t at : {size_t(0), size_t(13), in.size() - 1})
      for (int threads : {1, 3}) {
        std::vector<float> x = in;
        x[at] = bad;
        CHECK(throws([&] { p.run(x.data(), Shape5{1, 1, 1, int64_t(x.size()), 1}, threads); }));
      }
}

// Values for an [N, C, T, H, W] input of logical shape `x` ({N, T, H, W, C}), and the same values channels-last.
std::vector<float> ncthw_pattern(const Shape5& x) {
  std::vector<float> v(size_t(x.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(int(i * 37 % 101) - 50) / 16.0f;
  return v;
}
// [N, C, T, H, W] values in channels-last order (to_nthwc), or back (to_ncthw); x is the logical {N, T, H, W, C}.
std::vector<float> change_layout(const std::vector<float>& in, const Shape5& x, bool to_channels_last) {
  std::vector<float> out(in.size());
  for (int64_t n = 0; n < x.n; ++n)
    for (int64_t c = 0; c < x.c; ++c)
      for (int64_t t = 0; t < x.t; ++t)
        for (int64_t h = 0; h < x.h; ++h)
          for (int64_t w = 0; w < x.w; ++w) {
            const size_t last = size_t((((n * x.t + t) * x.h + h) * x.w + w) * x.c + c);
            const size_t first = size_t((((n * x.c + c) * x.t + t) * x.h + h) * x.w + w);
            if (to_channels_last)
              out[last] = in[first];
            else
              out[first] = in[last];
          }
  return out;
}
std::vector<float> to_nthwc(const std::vector<float>& ncthw, const Shape5& x) { return change_layout(ncthw, x, true); }
std::vector<float> to_ncthw(const std::vector<float>& nthwc, const Shape5& x) { return change_layout(nthwc, x, false); }

// An [N, C, T, H, W] input gives what the same values in channels-last order give, bit for bit, at 1 and 3 threads
// (the run copies them to channels-last itself): a 3x1x3 dense conv (C_in = 3, X3D's stem width) over odd sizes.
void ncthw_input_equals_channels_last() {
  Program p;
  const int32_t x = p.set_input(3);
  ConvGeometry g;
  g.kernel[0] = 3;
  g.kernel[2] = 3;
  g.padding[0] = 1;
  g.padding[2] = 1;
  std::vector<float> w(size_t(3 * 3 * 3 * 4));
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(int(i % 7) - 3) * 0.25f;
  p.set_outputs({p.conv(x, false, g, 4, w, {0.5f, -0.5f, 0.0f, 1.0f}, -1, Activation::identity)},
                {Program::Layout::nthwc});
  const Shape5 shape{2, 3, 5, 7, 3};
  const std::vector<float> ncthw = ncthw_pattern(shape), nthwc = to_nthwc(ncthw, shape);
  const auto want = p.run(nthwc.data(), shape, 1);
  const size_t count = size_t(want[0].shape.numel());
  for (int threads : {1, 3}) {
    const auto got = p.run(ncthw.data(), shape, threads, Program::InputLayout::ncthw);
    CHECK(got[0].shape == want[0].shape);
    CHECK(std::equal(static_cast<const float*>(got[0].data()), static_cast<const float*>(got[0].data()) + count,
                     static_cast<const float*>(want[0].data())));
  }
}

// An [N, C, T, H, W] input that only a quantize (or dynamic_quantize) step reads is quantized straight into
// channels-last int8, without the float copy: the same bytes as the channels-last input, at 1 and 3 threads, for
// C = 3 (its own interleave) and C = 5, rows longer than a vector and odd; and an input with another reader too
// (a float conv beside the quantize step) still gets its copy. A NaN is refused on that path as well.
void ncthw_input_quantized_in_place() {
  for (const int64_t C : {int64_t(3), int64_t(5)})
    for (const bool dynamic : {false, true})
      for (const bool other_reader : {false, true}) {
        Program p;
        const int32_t x = p.set_input(C);
        // a dynamic value cannot be an output: a 1x1x1 depthwise conv of weight 1 reads it back as float (q - zp) * s
        const int32_t q = dynamic ? p.quantized_conv(p.dynamic_quantize(x), true, ConvGeometry{}, C,
                                                     std::vector<int8_t>(size_t(C), 1), {}, {}, {}, QuantParams{}, -1,
                                                     QuantParams{}, Activation::identity, QuantParams{}, false,
                                                     std::vector<float>(size_t(C), 1.0f), std::vector<float>(size_t(C)))
                                  : p.quantize(x, QuantParams{0.03f, -5});
        std::vector<int32_t> outs{q};
        std::vector<Program::Layout> layouts{Program::Layout::nthwc};
        if (other_reader) {
          ConvGeometry g;
          std::vector<float> w(size_t(C * 2), 0.25f);
          outs.push_back(p.conv(x, false, g, 2, w, {0.0f, 1.0f}, -1, Activation::identity));
          layouts.push_back(Program::Layout::nthwc);
        }
        p.set_outputs(outs, layouts);
        const Shape5 shape{2, 3, 4, 37, C};
        const std::vector<float> ncthw = ncthw_pattern(shape), nthwc = to_nthwc(ncthw, shape);
        const auto want = p.run(nthwc.data(), shape, 1);
        for (int threads : {1, 3}) {
          const auto got = p.run(ncthw.data(), shape, threads, Program::InputLayout::ncthw);
          CHECK(got.size() == want.size());
          for (size_t o = 0; o < got.size(); ++o) {
            CHECK(got[o].shape == want[o].shape && got[o].dtype == want[o].dtype);
            const size_t bytes = size_t(want[o].shape.numel()) * (want[o].dtype == pyvideo::runtime::DType::int8 ? 1 : 4);
            CHECK(std::memcmp(got[o].data(), want[o].data(), bytes) == 0);
          }
          std::vector<float> bad = ncthw;
          bad[bad.size() - 7] = std::nanf("");
          CHECK(throws([&] { p.run(bad.data(), shape, threads, Program::InputLayout::ncthw); }));
        }
      }
}

void errors() {
  Program p;
  CHECK(throws([&] { p.global_avg_pool(0); }));  // no input declared yet
  const int32_t x = p.set_input(2);
  CHECK(throws([&] { p.set_input(2); }));
  CHECK(throws([&] { p.conv(x, false, pointwise(), 2, {1, 2, 3}, {0, 0}, -1, Activation::relu); }));  // weight size
  CHECK(throws([&] { p.conv(7, false, pointwise(), 2, {1, 2, 3, 4}, {0, 0}, -1, Activation::relu); }));  // no value 7
  CHECK(throws([&] { p.quantized_global_avg_pool(x, QuantParams{}, false, QuantParams{}); }));  // float input
  CHECK(throws([&] { p.quantize(x, QuantParams{0.0f, 0}); }));  // scale 0
  ConvGeometry big;
  big.kernel[2] = 5;
  const int32_t y = p.conv(x, true, big, 2, std::vector<float>(10, 1.0f), {0, 0}, -1, Activation::identity);
  std::vector<float> in(6, 1.0f);
  CHECK(throws([&] { p.run(in.data(), Shape5{1, 1, 1, 3, 2}, 1); }));  // no outputs yet
  p.set_outputs({y}, {Program::Layout::ncthw});
  CHECK(throws([&] { p.run(in.data(), Shape5{1, 1, 1, 3, 2}, 1); }));  // width 3 < kernel 5
  CHECK(throws([&] { p.run(in.data(), Shape5{1, 1, 1, 2, 3}, 1); }));  // 3 channels, program takes 2
  CHECK(throws([&] { p.run(nullptr, Shape5{1, 1, 1, 3, 2}, 1); }));
}

// save() -> the C API's load/run/output gives what the in-memory program gives; bad files are error statuses.
void model_file_through_the_c_api() {
  Program p;
  const int32_t x = p.set_input(2);
  ConvGeometry g;
  g.kernel[2] = 3;
  g.padding[2] = 1;
  const int32_t y = p.conv(x, true, g, 2, {1, 2, 3, -1, 0, 1}, {0.5f, -0.5f}, -1, Activation::hswish);
  const int32_t q = p.quantize(y, QuantParams{0.1f, -3});
  p.set_outputs({y, q}, {Program::Layout::ncthw, Program::Layout::nthwc});
  const std::string path = temp_path("model.pvp");
  p.save(path);

  const std::vector<float> in = ramp(5, 2);
  const int64_t shape[5] = {1, 1, 1, 5, 2};
  const auto expected = p.run(in.data(), Shape5{1, 1, 1, 5, 2}, 1);

  pyvideo_program* loaded = nullptr;
  CHECK(pyvideo_program_load(path.c_str(), &loaded) == PYVIDEO_OK && loaded);
  int64_t channels = 0;
  int32_t count = 0;
  CHECK(pyvideo_program_input_channels(loaded, &channels) == PYVIDEO_OK && channels == 2);
  CHECK(pyvideo_program_num_outputs(loaded, &count) == PYVIDEO_OK && count == 2);
  CHECK(pyvideo_program_output(loaded, 0, nullptr, nullptr, nullptr, nullptr) == PYVIDEO_ERROR_INVALID_ARGUMENT);
  CHECK(pyvideo_program_run(loaded, in.data(), shape, 2) == PYVIDEO_OK);
  for (int32_t i = 0; i < 2; ++i) {
    int64_t out_shape[5];
    int32_t dtype = -1, layout = -1;
    const void* data = nullptr;
    CHECK(pyvideo_program_output(loaded, i, out_shape, &dtype, &layout, &data) == PYVIDEO_OK);
    CHECK(out_shape[3] == 5 && out_shape[4] == 2 && dtype == i && layout == i);
    const size_t bytes = size_t(expected[size_t(i)].shape.numel()) * (i == 0 ? 4 : 1);
    CHECK(std::memcmp(data, expected[size_t(i)].data(), bytes) == 0);
  }
  const int64_t too_narrow[5] = {1, 1, 1, 5, 3};
  CHECK(pyvideo_program_run(loaded, in.data(), too_narrow, 1) == PYVIDEO_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(pyvideo_last_error()).find("channels") != std::string::npos);
  pyvideo_program_free(loaded);

  // Every truncation of the file is refused with a message (never a crash: this also runs under ASan/UBSan).
  std::ifstream file(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const std::string cut = temp_path("cut.pvp");
  // `content` written as it is to `cut` is refused by the C API with a message naming the program file.
  auto refused_by_c_api = [&](const std::string& content) {
    write_raw_file(cut, content);
    pyvideo_program* bad = nullptr;
    const bool refused = pyvideo_program_load(cut.c_str(), &bad) == PYVIDEO_ERROR_INVALID_ARGUMENT && !bad &&
                         std::string(pyvideo_last_error()).find("program file") != std::string::npos;
    pyvideo_program_free(bad);
    return refused;
  };
  int refused = 0, cuts = 0;
  for (size_t n = 0; n < bytes.size(); n += 7, ++cuts) refused += refused_by_c_api(bytes.substr(0, n)) ? 1 : 0;
  CHECK(refused == cuts);
  // Flipped bytes anywhere, weights included: every file is refused (by the checksum; the magic and version by
  // their own checks), with a message.
  CHECK(file_version(bytes) >= kChecksumVersion);
  uint32_t stored;  // the CRC-32 of the rest, as zlib computes it (bitwise here, by table in the loader)
  std::memcpy(&stored, bytes.data() + bytes.size() - 4, 4);
  CHECK(stored == crc32_bitwise(bytes.data(), bytes.size() - 4));
  std::string one_bit = bytes;  // one bit of the middle of the file, a weight, which no field check could judge
  one_bit[bytes.size() / 2] = char(one_bit[bytes.size() / 2] ^ 1);
  write_raw_file(cut, one_bit);
  CHECK(load_fails_with(cut, "checksum mismatch"));
  int flips = 0, flips_refused = 0;
  for (size_t at = 0; at < bytes.size(); at += 3, ++flips) {
    std::string flipped = bytes;
    flipped[at] = char(flipped[at] ^ 0x5a);
    flips_refused += refused_by_c_api(flipped) ? 1 : 0;
  }
  CHECK(flips_refused == flips);
  // The same flips with a matching checksum (a file written wrong, not damaged after): loading either fails cleanly
  // or gives a program that runs or fails cleanly.
  for (size_t at = 0; at + 4 < bytes.size(); at += 3) {
    std::string flipped = bytes;
    flipped[at] = char(flipped[at] ^ 0x5a);
    write_file(cut, flipped);
    pyvideo_program* maybe = nullptr;
    if (pyvideo_program_load(cut.c_str(), &maybe) == PYVIDEO_OK) {
      const pyvideo_status status = pyvideo_program_run(maybe, in.data(), shape, 1);
      CHECK(status == PYVIDEO_OK || status == PYVIDEO_ERROR_INVALID_ARGUMENT);
    }
    pyvideo_program_free(maybe);
  }
  pyvideo_program* none = nullptr;
  CHECK(pyvideo_program_load("/nonexistent/model.pvp", &none) == PYVIDEO_ERROR_INVALID_ARGUMENT && !none);
  std::remove(path.c_str());
  std::remove(cut.c_str());
}


// The layers of one X3D-like block: depthwise 3x3x3 conv -> SE -> pointwise conv with a residual, odd channel counts.
struct SeBlock {
  int64_t C = 19, hidden = 5, Co = 7;
  std::vector<float> dw_weight, dw_bias, fc0_w, fc0_b, fc1_w, fc1_b, pw_weight, pw_bias, res_weight;
  Activation se_act;
  explicit SeBlock(std::mt19937& rng, Activation act) : se_act(act) {
    dw_weight = random_floats(size_t(27 * C), rng, 0.3f);
    dw_bias = random_floats(size_t(C), rng);
    fc0_w = random_floats(size_t(hidden * C), rng);
    fc0_b = random_floats(size_t(hidden), rng);
    fc1_w = random_floats(size_t(C * hidden), rng);
    fc1_b = random_floats(size_t(C), rng);
    pw_weight = random_floats(size_t(C * Co), rng, 0.5f);
    pw_bias = random_floats(size_t(Co), rng);
    res_weight = random_floats(size_t(C * Co), rng);
  }
  // fused: the gate step and the gated pointwise conv; else the SE step that stores its output. gate_from_input: the
  // gate reads the program input (no depthwise producer: the gate sums the tensor itself).
  std::unique_ptr<Program> build(bool fused, bool gate_from_input = false) const {
    auto p = std::make_unique<Program>();
    const int32_t x = p->set_input(C);
    const int32_t r = p->conv(x, false, pointwise(), Co, res_weight, std::vector<float>(size_t(Co), 0.0f), -1,
                              Activation::identity);
    ConvGeometry g3;
    for (int i = 0; i < 3; ++i) g3.kernel[i] = 3, g3.padding[i] = 1;
    const int32_t d = gate_from_input ? x : p->conv(x, true, g3, C, dw_weight, dw_bias, -1, Activation::identity);
    int32_t y;
    if (fused) {
      const int32_t gate = p->squeeze_excitation_gate(d, hidden, fc0_w, fc0_b, fc1_w, fc1_b, Activation::relu);
      y = p->conv(d, false, pointwise(), Co, pw_weight, pw_bias, r, Activation::relu, gate, se_act);
    } else {
      const int32_t se = p->squeeze_excitation(d, hidden, fc0_w, fc0_b, fc1_w, fc1_b, Activation::relu, se_act);
      y = p->conv(se, false, pointwise(), Co, pw_weight, pw_bias, r, Activation::relu);
    }
    p->set_outputs({y}, {Program::Layout::ncthw});
    return p;
  }
};

void fused_squeeze_excitation_equals_the_separate_steps() {
  std::mt19937 rng(77);
  const Activation acts[] = {Activation::swish, Activation::identity, Activation::relu, Activation::hswish};
  const Shape5 shapes[] = {{2, 3, 5, 7, 19}, {1, 4, 9, 6, 19}, {3, 1, 1, 1, 19}};  // batch 2 and 3: per-sample gates
  for (const Activation act : acts) {
    const SeBlock block(rng, act);
    for (const bool gate_from_input : {false, true}) {
      const auto fused = block.build(true, gate_from_input), plain = block.build(false, gate_from_input);
      CHECK(fused->num_steps() == plain->num_steps());  // the gate step replaces the SE step
      // The depthwise conv feeding a gate writes row sums; the program input cannot.
      CHECK((fused->describe().find("row sums") != std::string::npos) == !gate_from_input);
      for (const Shape5& shape : shapes) {
        const std::vector<float> in = random_floats(size_t(shape.numel()), rng, 2.0f);
        const auto want = plain->run(in.data(), shape, 1);
        const float* w = static_cast<const float*>(want[0].data());
        const int64_t n = want[0].shape.numel();
        float scale = 0;
        for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(w[i]));
        // Threads split the gated pointwise conv by (n, t, h) rows (csrc/core/ops.cpp), here across the sample
        // boundary of the batch-2 and -3 shapes: every thread count gives the 1-thread bits.
        std::vector<float> one_thread;
        for (int threads : {1, 2, 3}) {
          const auto got = fused->run(in.data(), shape, threads);
          CHECK(got[0].shape == want[0].shape);
          const float* g = static_cast<const float*>(got[0].data());
          if (threads == 1) one_thread.assign(g, g + n);
          CHECK(std::equal(one_thread.begin(), one_thread.end(), g));
          double err = 0;
          for (int64_t i = 0; i < n; ++i) err = std::max(err, double(std::fabs(g[i] - w[i])));
          CHECK(err <= 1e-5 * scale);
          if (err > 1e-5 * scale)
            std::fprintf(stderr, "  act=%d gate_from_input=%d N=%ld threads=%d err=%g scale=%g\n", int(act),
                         int(gate_from_input), long(shape.n), threads, err, double(scale));
        }
      }
    }
  }
  // The gate is per sample: the same clip twice in a batch gives its single-clip result twice, a different second
  // clip does not change the first sample's output.
  const SeBlock block(rng, Activation::swish);
  const auto fused = block.build(true);
  const Shape5 one{1, 3, 5, 7, 19}, two{2, 3, 5, 7, 19};
  const std::vector<float> a = random_floats(size_t(one.numel()), rng), b = random_floats(size_t(one.numel()), rng);
  std::vector<float> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  const auto single = fused->run(a.data(), one, 1), pair = fused->run(ab.data(), two, 2);
  const float* s1 = static_cast<const float*>(single[0].data());
  const float* s2 = static_cast<const float*>(pair[0].data());
  double err = 0;
  for (int64_t i = 0; i < single[0].shape.numel(); ++i) err = std::max(err, double(std::fabs(s1[i] - s2[i])));
  CHECK(err < 1e-5);
}

void input_gate_errors() {
  std::mt19937 rng(5);
  Program p;
  const int32_t x = p.set_input(4);
  const int32_t gate = p.squeeze_excitation_gate(x, 2, random_floats(8, rng), {}, random_floats(8, rng), {},
                                                 Activation::relu);
  const std::vector<float> w(16, 0.5f), b(4, 0.0f);
  ConvGeometry k3;
  k3.kernel[2] = 3;
  k3.padding[2] = 1;
  CHECK(throws([&] { p.conv(x, false, k3, 4, std::vector<float>(48, 1.0f), b, -1, Activation::identity, gate); }));
  CHECK(throws([&] { p.conv(x, true, pointwise(), 4, b, b, -1, Activation::identity, gate); }));  // depthwise
  CHECK(throws([&] { p.conv(x, false, pointwise(), 4, w, b, -1, Activation::identity, 9); }));     // no value 9
  CHECK(throws([&] { p.conv(x, false, pointwise(), 4, w, b, -1, Activation::identity, -1, Activation::swish); }));
  CHECK(throws([&] { p.conv(x, false, pointwise(), 4, w, b, -1, Activation::identity, -5); }));
  const int32_t q = p.quantize(x, QuantParams{0.1f, 0});
  CHECK(throws([&] { p.conv(x, false, pointwise(), 4, w, b, -1, Activation::identity, q); }));  // int8 gate
  CHECK(throws([&] { p.squeeze_excitation_gate(q, 2, std::vector<float>(8), {}, std::vector<float>(8), {},
                                               Activation::relu); }));
  const int32_t narrow = p.conv(x, false, pointwise(), 2, std::vector<float>(8, 1.0f), {0, 0}, -1, Activation::identity);
  CHECK(throws([&] { p.conv(x, false, pointwise(), 4, w, b, -1, Activation::identity, narrow); }));  // 2 channels
  // A gate value must be [N, 1, 1, 1, C] at run time: a full tensor with the right channels is refused when run.
  const int32_t bad = p.conv(x, false, pointwise(), 4, w, b, -1, Activation::identity, x);
  p.set_outputs({bad}, {Program::Layout::ncthw});
  const std::vector<float> in(2 * 3 * 4, 1.0f);
  CHECK(throws([&] { p.run(in.data(), Shape5{1, 1, 2, 3, 4}, 1); }));
  CHECK(!throws([&] { p.run(in.data(), Shape5{6, 1, 1, 1, 4}, 1); }));  // where the input is [N, 1, 1, 1, C] it runs
  (void)gate;
}

// Where each step's fields of a current-version model file are (walks the layout documented in program_file.cpp):
// its input_gate field (version 2), its per-channel output arrays (version 3, up to `end`), its weight_scale array
// (version 5, from `end`) and where the next step starts.
struct StepFields {
  size_t gate, channel_q, end, next;
};

std::vector<StepFields> step_fields(const std::string& bytes) {
  auto u32 = [&](size_t at) { uint32_t v; std::memcpy(&v, bytes.data() + at, 4); return v; };
  auto u64 = [&](size_t at) { uint64_t v; std::memcpy(&v, bytes.data() + at, 8); return v; };
  std::vector<StepFields> fields;
  size_t at = first_step_offset(bytes);
  const uint32_t steps = u32(at - 4);
  for (uint32_t i = 0; i < steps; ++i) {
    StepFields f;
    at += 4 + 4 + 4 + 1 + 9 * 8 + 8 + 8 + 4 + 4 + 3 * 8 + 1;
    f.gate = at;
    at += 8;
    const size_t element[10] = {4, 4, 4, 4, 4, 4, 4, 1, 4, 4};
    for (size_t e : element) at += 8 + size_t(u64(at)) * e;
    f.channel_q = at;
    for (int k = 0; k < 2; ++k) at += 8 + size_t(u64(at)) * 4;
    f.end = at;
    at += 8 + size_t(u64(at)) * 4;
    f.next = at;
    fields.push_back(f);
  }
  return fields;
}

std::vector<size_t> input_gate_offsets(const std::string& bytes) {
  std::vector<size_t> offsets;
  for (const StepFields& f : step_fields(bytes)) offsets.push_back(f.gate);
  return offsets;
}

// The file in an older format version (1 to 4): the fields that version lacks cut out of every step.
std::string as_version(const std::string& sealed_bytes, uint32_t version) {
  const std::string bytes = unsealed(sealed_bytes);
  std::string old = bytes.substr(0, 8);
  old.append(reinterpret_cast<const char*>(&version), 4);
  size_t from = 12 + 4;  // the current header's input count (one input) is not in older files
  for (const StepFields& f : step_fields(bytes)) {
    if (version < 2) {
      old.append(bytes, from, f.gate - from);
      from = f.gate + 8;
    }
    if (version < 3) {
      old.append(bytes, from, f.channel_q - from);
      from = f.end;
    }
    old.append(bytes, from, f.end - from);
    from = f.next;
  }
  old.append(bytes, from, std::string::npos);
  return old;
}

void fused_model_file_round_trip_and_validation() {
  std::mt19937 rng(11);
  const SeBlock block(rng, Activation::swish);
  const auto fused = block.build(true);
  const std::string path = temp_path("fused.pvp"), bad = temp_path("fused_bad.pvp");
  fused->save(path);
  const auto loaded = Program::load(path);
  CHECK(loaded->describe() == fused->describe());  // gate, input activation and the derived row sums
  const Shape5 shape{2, 3, 5, 7, 19};
  const std::vector<float> in = random_floats(size_t(shape.numel()), rng);
  const auto want = fused->run(in.data(), shape, 1), got = loaded->run(in.data(), shape, 1);
  CHECK(std::memcmp(want[0].data(), got[0].data(), size_t(want[0].shape.numel()) * 4) == 0);
  // The same file through the C API.
  pyvideo_program* c_program = nullptr;
  CHECK(pyvideo_program_load(path.c_str(), &c_program) == PYVIDEO_OK && c_program);
  const int64_t c_shape[5] = {shape.n, shape.t, shape.h, shape.w, shape.c};
  CHECK(pyvideo_program_run(c_program, in.data(), c_shape, 2) == PYVIDEO_OK);
  const void* c_out = nullptr;
  CHECK(pyvideo_program_output(c_program, 0, nullptr, nullptr, nullptr, &c_out) == PYVIDEO_OK && c_out);
  if (c_out) {
    const float* a = static_cast<const float*>(want[0].data());
    const float* b = static_cast<const float*>(c_out);
    double err = 0;  // 2 threads here: the same up to float summation order
    for (int64_t i = 0; i < want[0].shape.numel(); ++i) err = std::max(err, double(std::fabs(a[i] - b[i])));
    CHECK(err < 1e-4);
  }
  pyvideo_program_free(c_program);

  const std::string bytes = read_file(path);
  const std::vector<size_t> gate_at = input_gate_offsets(bytes);
  CHECK(gate_at.size() == size_t(fused->num_steps()));
  // Steps: residual conv, depthwise conv, gate, gated pointwise conv.
  int32_t gate_field;
  std::memcpy(&gate_field, bytes.data() + gate_at[3], 4);
  CHECK(gate_field == 3);
  auto patched = [&](size_t at, int32_t value) {
    std::string b = bytes;
    std::memcpy(&b[at], &value, 4);
    write_file(bad, b);
  };
  patched(gate_at[3], 42);  // a value that does not exist
  CHECK(load_fails_with(bad, "does not exist"));
  patched(gate_at[3], 1);   // the residual conv's [N,T,H,W,7] output: wrong channels
  CHECK(load_fails_with(bad, "input gate must be float32 with the input's channels"));
  patched(gate_at[3] + 4, 17);  // input activation code
  CHECK(load_fails_with(bad, "unknown activation code 17"));
  patched(gate_at[2], 0);  // an input gate on the gate step itself
  CHECK(load_fails_with(bad, "only convs take one"));
  patched(gate_at[1], 3);  // on the depthwise conv: refers to a later value
  CHECK(load_fails_with(bad, "does not exist"));
  patched(gate_at[0] + 4, int32_t(Activation::swish));  // an input activation without a gate
  CHECK(load_fails_with(bad, "input gate -1 and the identity"));
  patched(8, int32_t(kCurrentVersion + 1));  // a future format version
  CHECK(load_fails_with(bad, "version " + std::to_string(kCurrentVersion + 1) + " is not supported"));
  patched(8, 0);
  CHECK(load_fails_with(bad, "version 0 is not supported"));
  // Every truncation is refused.
  CHECK(every_truncation_refused(bytes, bad, 5, "program file"));

  // A version-1 file (no gate fields, no gate step kind) still loads: the unfused program written as version 1.
  const auto plain = block.build(false);
  plain->save(path);
  const std::string v1 = as_version(read_file(path), 1);
  write_file(bad, v1);
  const auto old = Program::load(bad);
  const auto old_out = old->run(in.data(), shape, 1), plain_out = plain->run(in.data(), shape, 1);
  CHECK(std::memcmp(old_out[0].data(), plain_out[0].data(), size_t(plain_out[0].shape.numel()) * 4) == 0);
  std::string v1_gate = v1;  // a version-1 file cannot name the gate step kind (8)
  const uint32_t gate_kind = 8;
  std::memcpy(&v1_gate[24], &gate_kind, 4);
  write_file(bad, v1_gate);
  CHECK(load_fails_with(bad, "unknown step kind 8"));
  std::remove(path.c_str());
  std::remove(bad.c_str());
}
// An int8 squeeze-excitation with per-channel output quantization: quantize -> SE, odd channel count (not a multiple
// of any vector width), batch of 2 (per-sample gates).
struct ChannelSe {
  int64_t C = 19, hidden = 5;
  QuantParams in{0.04f, -9};
  std::vector<float> fc0_w, fc0_b, fc1_w, fc1_b, scales;
  std::vector<int32_t> zero_points;
  Activation act;
  ChannelSe(std::mt19937& rng, Activation a) : act(a) {
    fc0_w = random_floats(size_t(hidden * C), rng);
    fc0_b = random_floats(size_t(hidden), rng);
    fc1_w = random_floats(size_t(C * hidden), rng, 2.0f);
    fc1_b = random_floats(size_t(C), rng);
    std::uniform_real_distribution<float> log_scale(-9.0f, -5.0f);  // 1/512 .. 1/32: from saturating to fine
    std::uniform_int_distribution<int> zp(-128, 127);
    for (int64_t c = 0; c < C; ++c) {
      scales.push_back(std::exp2(log_scale(rng)));
      zero_points.push_back(zp(rng));
    }
  }
  std::unique_ptr<Program> build() const {
    auto p = std::make_unique<Program>();
    const int32_t x = p->set_input(C);
    const int32_t q = p->quantize(x, in);
    const int32_t y = p->quantized_squeeze_excitation(q, hidden, fc0_w, fc0_b, fc1_w, fc1_b, Activation::relu, act, in,
                                                      QuantParams{}, scales, zero_points);
    p->set_outputs({q, y}, {Program::Layout::nthwc, Program::Layout::nthwc});
    return p;
  }
  // The reference in double from the quantized input: mean of the dequantized values, the two layers, sigmoid,
  // act(dequant(x) * gate), then round half to even with channel c's scale and zero point.
  std::vector<int8_t> reference(const int8_t* q, const Shape5& shape) const {
    const int64_t P = shape.t * shape.h * shape.w;
    std::vector<int8_t> out(size_t(shape.numel()));
    auto activate = [](double v, Activation a) {
      switch (a) {
        case Activation::relu: return std::max(0.0, v);
        case Activation::swish: return v / (1.0 + std::exp(-v));
        case Activation::hswish: return v * std::min(6.0, std::max(0.0, v + 3.0)) / 6.0;
        case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-v));
        default: return v;
      }
    };
    for (int64_t n = 0; n < shape.n; ++n) {
      std::vector<double> mean(size_t(C), 0.0), h(size_t(hidden), 0.0), gate(size_t(C), 0.0);
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c) mean[size_t(c)] += (q[(n * P + p) * C + c] - in.zero_point) * double(in.scale) / P;
      for (int64_t j = 0; j < hidden; ++j) {
        double v = fc0_b[size_t(j)];
        for (int64_t c = 0; c < C; ++c) v += fc0_w[size_t(j * C + c)] * mean[size_t(c)];
        h[size_t(j)] = activate(v, Activation::relu);
      }
      for (int64_t c = 0; c < C; ++c) {
        double v = fc1_b[size_t(c)];
        for (int64_t j = 0; j < hidden; ++j) v += fc1_w[size_t(c * hidden + j)] * h[size_t(j)];
        gate[size_t(c)] = activate(v, Activation::sigmoid);
      }
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t i = (n * P + p) * C + c;
          const double y = activate((q[i] - in.zero_point) * double(in.scale) * gate[size_t(c)], act);
          const double r = std::nearbyint(y / scales[size_t(c)]) + zero_points[size_t(c)];
          out[size_t(i)] = int8_t(std::min(127.0, std::max(-128.0, r)));
        }
    }
    return out;
  }
};

void per_channel_squeeze_excitation_equals_the_reference() {
  std::mt19937 rng(31);
  int64_t compared = 0, off_by_one = 0, saturated = 0;
  for (const Activation act :
       {Activation::swish, Activation::identity, Activation::relu, Activation::hswish, Activation::sigmoid}) {
    const ChannelSe se(rng, act);
    const auto p = se.build();
    CHECK(p->describe().find("per-channel output") != std::string::npos);
    // the last shape has 1200 positions per sample: swish and sigmoid then go by table (qchannel_lookup)
    for (const Shape5& shape :
         {Shape5{2, 3, 5, 7, 19}, Shape5{1, 1, 1, 1, 19}, Shape5{2, 2, 3, 33, 19}, Shape5{2, 2, 24, 25, 19}}) {
      const std::vector<float> x = random_floats(size_t(shape.numel()), rng, 5.0f);
      for (int threads : {1, 2}) {
        const auto out = p->run(x.data(), shape, threads);
        const std::vector<int8_t> want = se.reference(static_cast<const int8_t*>(out[0].data()), shape);
        const int8_t* got = static_cast<const int8_t*>(out[1].data());
        int64_t worst = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          const int64_t d = std::abs(int(got[i]) - int(want[i]));
          worst = std::max(worst, d);
          off_by_one += d != 0;
          saturated += want[i] == 127 || want[i] == -128;
        }
        compared += int64_t(want.size());
        CHECK(worst <= 1);
        if (worst > 1) std::fprintf(stderr, "  per-channel SE act=%d N=%ld max diff %ld\n", int(act), long(shape.n),
                                    long(worst));
      }
    }
  }
  std::printf("per-channel SE: %ld/%ld outputs off by 1 LSB from the double reference, %ld saturated\n",
              long(off_by_one), long(compared), long(saturated));
  CHECK(off_by_one * 100 <= compared);    // 1 LSB only next to rounding ties (float vs the double reference)
  CHECK(saturated * 2 < compared);        // most outputs are inside the range: the scales are really exercised
}

void per_channel_squeeze_excitation_builder_errors() {
  std::mt19937 rng(8);
  const ChannelSe se(rng, Activation::swish);
  Program p;
  const int32_t x = p.set_input(se.C);
  const int32_t q = p.quantize(x, se.in);
  auto build = [&](int32_t input, std::vector<float> scales, std::vector<int32_t> zps) {
    return throws([&] {
      p.quantized_squeeze_excitation(input, se.hidden, se.fc0_w, se.fc0_b, se.fc1_w, se.fc1_b, Activation::relu,
                                     se.act, se.in, QuantParams{}, scales, zps);
    });
  };
  std::vector<float> s = se.scales;
  std::vector<int32_t> z = se.zero_points;
  CHECK(!build(q, s, z));
  CHECK(build(x, s, z));  // a float input
  CHECK(build(q, std::vector<float>(s.begin(), s.end() - 1), z));  // 18 scales for 19 channels
  CHECK(build(q, s, std::vector<int32_t>(z.begin() + 1, z.end())));
  CHECK(build(q, s, {}));  // scales without zero points
  CHECK(build(q, {}, z));
  for (const float bad : {0.0f, -0.5f, std::nanf(""), INFINITY}) {
    std::vector<float> t = s;
    t[7] = bad;
    CHECK(build(q, t, z));
  }
  for (const int32_t bad : {128, -129, 1 << 20}) {
    std::vector<int32_t> t = z;
    t[18] = bad;
    CHECK(build(q, s, t));
  }
}

void per_channel_model_file_round_trip_and_validation() {
  std::mt19937 rng(12);
  const ChannelSe se(rng, Activation::swish);
  const auto program = se.build();
  const std::string path = temp_path("channel.pvp"), bad = temp_path("channel_bad.pvp");
  program->save(path);
  const auto loaded = Program::load(path);
  CHECK(loaded->describe() == program->describe());
  const Shape5 shape{2, 3, 5, 7, 19};
  const std::vector<float> in = random_floats(size_t(shape.numel()), rng, 5.0f);
  const auto want = program->run(in.data(), shape, 1), got = loaded->run(in.data(), shape, 1);
  CHECK(std::memcmp(want[1].data(), got[1].data(), size_t(want[1].shape.numel())) == 0);
  pyvideo_program* c_program = nullptr;  // and through the C API
  CHECK(pyvideo_program_load(path.c_str(), &c_program) == PYVIDEO_OK && c_program);
  const int64_t c_shape[5] = {shape.n, shape.t, shape.h, shape.w, shape.c};
  const void* c_out = nullptr;
  CHECK(pyvideo_program_run(c_program, in.data(), c_shape, 1) == PYVIDEO_OK);
  CHECK(pyvideo_program_output(c_program, 1, nullptr, nullptr, nullptr, &c_out) == PYVIDEO_OK && c_out);
  if (c_out) CHECK(std::memcmp(c_out, want[1].data(), size_t(want[1].shape.numel())) == 0);
  pyvideo_program_free(c_program);

  const std::string bytes = read_file(path);
  const std::vector<StepFields> fields = step_fields(bytes);
  CHECK(fields.size() == 2 && fields[1].end - fields[1].channel_q == 2 * 8 + size_t(se.C) * 8);
  const size_t scales_at = fields[1].channel_q + 8, zps_at = scales_at + size_t(se.C) * 4 + 8;
  auto patched = [&](size_t at, auto value) {
    std::string b = bytes;
    std::memcpy(&b[at], &value, sizeof(value));
    write_file(bad, b);
  };
  patched(scales_at + 4 * 3, 0.0f);
  CHECK(load_fails_with(bad, "channel 3 output quantization needs a positive finite scale"));
  patched(scales_at + 4 * 18, -1.0f);
  CHECK(load_fails_with(bad, "channel 18 output quantization"));
  patched(scales_at, std::nanf(""));
  CHECK(load_fails_with(bad, "positive finite scale"));
  patched(scales_at + 4, INFINITY);
  CHECK(load_fails_with(bad, "positive finite scale"));
  patched(zps_at + 4 * 5, int32_t(128));
  CHECK(load_fails_with(bad, "zero point in [-128, 127]"));
  patched(zps_at, int32_t(-129));
  CHECK(load_fails_with(bad, "channel 0 output quantization"));
  // One scale too few (the array shortened, the rest of the file intact).
  std::string shorter = bytes;
  shorter.erase(scales_at, 4);
  const uint64_t eighteen = 18;
  std::memcpy(&shorter[fields[1].channel_q], &eighteen, 8);
  write_file(bad, shorter);
  CHECK(load_fails_with(bad, "per-channel output scales has 18 values, expected 19"));
  // Scales without zero points.
  std::string no_zps = bytes.substr(0, zps_at - 8);
  const uint64_t zero = 0;
  no_zps.append(reinterpret_cast<const char*>(&zero), 8);
  no_zps.append(bytes, fields[1].end, std::string::npos);
  write_file(bad, no_zps);
  CHECK(load_fails_with(bad, "per-channel output zero points has 0 values, expected 19"));
  // Per-channel fields on the quantize step.
  std::string on_quantize = bytes.substr(0, fields[0].channel_q);
  const uint64_t one = 1;
  const float scale = 0.5f;
  on_quantize.append(reinterpret_cast<const char*>(&one), 8).append(reinterpret_cast<const char*>(&scale), 4);
  on_quantize.append(bytes, fields[0].channel_q + 8, std::string::npos);
  write_file(bad, on_quantize);
  CHECK(load_fails_with(bad, "(quantize) has per-channel output quantization"));
  // A count far beyond the file is a truncation, not an allocation.
  patched(fields[1].channel_q, uint64_t(1) << 60);
  CHECK(load_fails_with(bad, "truncated"));
  CHECK(every_truncation_refused(bytes, bad, 3, "program file"));
  // Flipped bytes in the per-channel arrays: refused with a message or loaded and run (ASan/UBSan: no crash).
  for (size_t at = fields[1].channel_q; at < fields[1].end; ++at) {
    std::string flipped = bytes;
    flipped[at] = char(flipped[at] ^ 0x41);
    write_file(bad, flipped);
    try {
      Program::load(bad)->run(in.data(), shape, 1);
    } catch (const std::invalid_argument&) {
    }
  }

  // Older files still load: a per-tensor SE program written as versions 1 to 4.
  Program per_tensor;
  const int32_t x = per_tensor.set_input(se.C);
  const int32_t q = per_tensor.quantize(x, se.in);
  per_tensor.set_outputs({per_tensor.quantized_squeeze_excitation(q, se.hidden, se.fc0_w, se.fc0_b, se.fc1_w,
                                                                  se.fc1_b, Activation::relu, se.act, se.in,
                                                                  QuantParams{0.02f, 3})},
                         {Program::Layout::nthwc});
  per_tensor.save(path);
  const auto current = per_tensor.run(in.data(), shape, 1);
  for (uint32_t version : {1u, 2u, 3u, 4u}) {
    write_file(bad, as_version(read_file(path), version));
    const auto old = Program::load(bad)->run(in.data(), shape, 1);
    CHECK(std::memcmp(old[0].data(), current[0].data(), size_t(current[0].shape.numel())) == 0);
  }
  std::remove(path.c_str());
  std::remove(bad.c_str());
}
// Two inputs (one clip per pathway, as SlowFast) and a concat step: the concatenation is exact, the conv reading it
// equals the same conv run on the concatenation as its own program's input, ncthw inputs equal channels-last ones,
// buffers are recycled across runs of new sizes, the model file (version 7: input count and channels; concat's second
// input in the residual field) round-trips through Program::load and the C API, and bad calls are refused.
void multi_input_concat() {
  auto filled = [](const Shape5& s, int seed) {
    std::vector<float> v(size_t(s.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(int((i * 37 + size_t(seed) * 11) % 101) - 50) / 16.0f;
    return v;
  };
  ConvGeometry g;  // 1x3x3, padding 1
  g.kernel[1] = g.kernel[2] = 3;
  g.padding[1] = g.padding[2] = 1;
  std::vector<float> w_a(size_t(3 * 4)), w_c(size_t(9 * 9 * 6));
  for (size_t i = 0; i < w_a.size(); ++i) w_a[i] = float(int(i % 5) - 2) * 0.5f;
  for (size_t i = 0; i < w_c.size(); ++i) w_c[i] = float(int(i % 7) - 3) * 0.25f;
  const std::vector<float> b_c{0.5f, -0.5f, 0.0f, 1.0f, 2.0f, -1.0f};
  Program p;
  const int32_t slow = p.set_input(3), fast = p.add_input(5);
  CHECK(slow == 0 && fast == 1 && p.num_inputs() == 2);
  CHECK(p.inputs_channels() == (std::vector<int64_t>{3, 5}) && p.input_channels() == 3);
  const int32_t a = p.conv(slow, false, pointwise(), 4, w_a, {0, 0, 0, 0}, -1, Activation::relu);
  const int32_t cat = p.concat(a, fast);
  const int32_t out = p.conv(cat, false, g, 6, w_c, b_c, -1, Activation::identity);
  p.set_outputs({cat, out}, {Program::Layout::nthwc, Program::Layout::nthwc});
  CHECK(p.describe().find("concat(v2, v1) -> 9 channels") != std::string::npos);
  // The conv after the concat alone, on the concatenation as its input.
  Program tail;
  tail.set_outputs({tail.conv(tail.set_input(9), false, g, 6, w_c, b_c, -1, Activation::identity)},
                   {Program::Layout::nthwc});
  const std::string path = temp_path("two_inputs.pvp");
  p.save(path);
  const auto loaded = Program::load(path);
  CHECK(loaded->num_inputs() == 2 && loaded->inputs_channels() == (std::vector<int64_t>{3, 5}));
  for (const Shape5& s : {Shape5{1, 2, 4, 5, 0}, Shape5{2, 3, 6, 7, 0}, Shape5{1, 1, 3, 3, 0}}) {
    Shape5 s_slow = s, s_fast = s;
    s_slow.c = 3;
    s_fast.c = 5;
    const auto x_slow = filled(s_slow, 1), x_fast = filled(s_fast, 2);
    const auto got = p.run({x_slow.data(), x_fast.data()}, {s_slow, s_fast}, 2);
    CHECK(got.size() == 2 && got[0].shape == (Shape5{s.n, s.t, s.h, s.w, 9}));
    const float* c = static_cast<const float*>(got[0].data());
    // The concatenation: the conv's 4 channels (relu(x . w_a)), then the fast input's 5, at every position.
    bool exact = true;
    for (int64_t q = 0; q < s.n * s.t * s.h * s.w; ++q) {
      for (int64_t k = 0; k < 4; ++k) {
        float acc = 0.0f;
        for (int64_t ci = 0; ci < 3; ++ci) acc += x_slow[size_t(q * 3 + ci)] * w_a[size_t(ci * 4 + k)];
        exact = exact && std::fabs(c[q * 9 + k] - std::max(acc, 0.0f)) < 1e-5f;
      }
      for (int64_t k = 0; k < 5; ++k) exact = exact && c[q * 9 + 4 + k] == x_fast[size_t(q * 5 + k)];
    }
    CHECK(exact);
    const auto want = tail.run(c, got[0].shape, 1);
    CHECK(got[1].shape == want[0].shape);
    CHECK(std::memcmp(got[1].data(), want[0].data(), size_t(want[0].shape.numel()) * 4) == 0);
    // Loaded from the file, and from [N, C, T, H, W] inputs: the same bits.
    const auto from_file = loaded->run({x_slow.data(), x_fast.data()}, {s_slow, s_fast}, 1);
    CHECK(std::memcmp(from_file[1].data(), got[1].data(), size_t(want[0].shape.numel()) * 4) == 0);
    const auto n_slow = to_ncthw(x_slow, s_slow), n_fast = to_ncthw(x_fast, s_fast);
    const auto from_ncthw = p.run({n_slow.data(), n_fast.data()}, {s_slow, s_fast}, 3, Program::InputLayout::ncthw);
    CHECK(std::memcmp(from_ncthw[1].data(), got[1].data(), size_t(want[0].shape.numel()) * 4) == 0);
  }
  // The C API: input count and channels, a run of both inputs, and a one-input run refused.
  pyvideo_program* c_program = nullptr;
  CHECK(pyvideo_program_load(path.c_str(), &c_program) == PYVIDEO_OK && c_program);
  int32_t count = 0;
  int64_t channels = 0;
  CHECK(pyvideo_program_num_inputs(c_program, &count) == PYVIDEO_OK && count == 2);
  CHECK(pyvideo_program_input_channels_at(c_program, 1, &channels) == PYVIDEO_OK && channels == 5);
  CHECK(pyvideo_program_input_channels_at(c_program, 2, &channels) == PYVIDEO_ERROR_INVALID_ARGUMENT);
  const Shape5 s_slow{1, 2, 4, 5, 3}, s_fast{1, 2, 4, 5, 5};
  const auto x_slow = filled(s_slow, 1), x_fast = filled(s_fast, 2);
  const float* c_inputs[2] = {x_slow.data(), x_fast.data()};
  const int64_t c_shapes[2][5] = {{1, 2, 4, 5, 3}, {1, 2, 4, 5, 5}};
  CHECK(pyvideo_program_run_inputs(c_program, 2, c_inputs, c_shapes, 1) == PYVIDEO_OK);
  const void* c_out = nullptr;
  CHECK(pyvideo_program_output(c_program, 1, nullptr, nullptr, nullptr, &c_out) == PYVIDEO_OK && c_out);
  const auto want = p.run({x_slow.data(), x_fast.data()}, {s_slow, s_fast}, 1);
  CHECK(c_out && std::memcmp(c_out, want[1].data(), size_t(want[1].shape.numel()) * 4) == 0);
  CHECK(pyvideo_program_run(c_program, x_slow.data(), c_shapes[0], 1) == PYVIDEO_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(pyvideo_last_error()).find("takes 2 inputs") != std::string::npos);
  CHECK(pyvideo_program_run_inputs(c_program, 2, nullptr, c_shapes, 1) == PYVIDEO_ERROR_INVALID_ARGUMENT);
  pyvideo_program_free(c_program);
  // Bad calls.
  CHECK(throws([&] { p.run({x_slow.data()}, {s_slow}, 1); }));                              // one input of two
  CHECK(throws([&] { p.run({x_slow.data(), x_fast.data()}, {s_slow, s_slow}, 1); }));       // 3 channels, not 5
  CHECK(throws([&] { p.run({x_slow.data(), nullptr}, {s_slow, s_fast}, 1); }));             // null input
  const Shape5 longer{1, 4, 4, 5, 5};
  const auto x_long = filled(longer, 3);
  try {  // the pathways' T differ at the concat (SlowFast's fast clip not alpha times the slow one's)
    p.run({x_slow.data(), x_long.data()}, {s_slow, longer}, 1);
    CHECK(false);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("concat") != std::string::npos &&
          std::string(e.what()).find("differ") != std::string::npos);
  }
  CHECK(throws([&] { p.add_input(2); }));  // inputs come before the steps
  CHECK(throws([&] { p.concat(a, 99); }));
  Program q;
  const int32_t qx = q.set_input(2);
  CHECK(throws([&] { q.concat(qx, q.quantize(qx, QuantParams{0.5f, 0})); }));  // int8
  CHECK(throws([&] { Program().add_input(0); }));
  // int8: two quantized inputs concatenated and requantized (hand-computed values), saved and loaded.
  {
    Program iq;
    const int32_t xa = iq.set_input(1), xb = iq.add_input(2);
    const int32_t qa = iq.quantize(xa, QuantParams{0.5f, 1}), qb = iq.quantize(xb, QuantParams{2.0f, -3});
    const int32_t joined = iq.quantized_concat(qa, qb, QuantParams{0.5f, 1}, QuantParams{2.0f, -3}, true,
                                               QuantParams{1.0f, 0});
    const int32_t real = iq.quantized_concat(qa, qb, QuantParams{0.5f, 1}, QuantParams{2.0f, -3}, false, {});
    iq.set_outputs({joined, real}, {Program::Layout::nthwc, Program::Layout::nthwc});
    // a = [3.0] -> q 7 -> 3.0 -> 3; b = [5.0, -300] -> q (round 2.5 = 2) - 3 = -1, -153 -> -128 -> real 4.0, -250
    const std::vector<float> va{3.0f}, vb{5.0f, -300.0f};
    const Shape5 sa{1, 1, 1, 1, 1}, sb{1, 1, 1, 1, 2};
    const std::string qpath = temp_path("qconcat.pvp");
    iq.save(qpath);
    const auto reloaded = Program::load(qpath);
    for (const Program* prog : {&iq, reloaded.get()}) {
      const auto res = const_cast<Program*>(prog)->run({va.data(), vb.data()}, {sa, sb}, 1);
      const int8_t* q8 = static_cast<const int8_t*>(res[0].data());
      const float* f = static_cast<const float*>(res[1].data());
      CHECK(res[0].shape == (Shape5{1, 1, 1, 1, 3}));
      CHECK(q8[0] == 3 && q8[1] == 4 && q8[2] == -128);  // 4.0 / 1.0 = 4; -250 saturates
      CHECK(f[0] == 3.0f && f[1] == 4.0f && f[2] == -250.0f);
    }
    CHECK(iq.describe().find("quantized_concat(v2, v3, float output)") != std::string::npos);
    CHECK(throws([&] { iq.quantized_concat(xa, qb, QuantParams{0.5f, 1}, QuantParams{2.0f, -3}, true, {}); }));
    CHECK(throws([&] { iq.quantized_concat(qa, qb, QuantParams{0.0f, 1}, QuantParams{2.0f, -3}, false, {}); }));
    CHECK(throws([&] { iq.quantized_concat(qa, qb, QuantParams{0.5f, 1}, QuantParams{2.0f, -3}, true,
                                           QuantParams{1.0f, 300}); }));
  }
  // A version 6 file cannot hold a concat: a one-input program with one, relabelled, is refused (concat is kind 13).
  Program one;
  const int32_t ox = one.set_input(2);
  one.set_outputs({one.concat(ox, ox)}, {Program::Layout::nthwc});
  const std::string one_path = temp_path("concat_v6.pvp");
  one.save(one_path);
  const std::string bytes = read_file(one_path);
  CHECK(file_version(bytes) == kCurrentVersion);
  write_file(one_path, relabelled(bytes, 6));
  CHECK(load_fails_with(one_path, "unknown step kind 13 for format version 6"));
  // A two-input file: every truncation is refused; an input count of 0 or 65 too.
  const std::string two = read_file(path);
  CHECK(every_truncation_refused(two, one_path, 5, ""));
  for (uint32_t bad_count : {0u, 65u}) {
    std::string b = two;
    std::memcpy(&b[12], &bad_count, 4);
    write_file(one_path, b);
    CHECK(load_fails_with(one_path, "input count"));
  }
}

}  // namespace

int main() {
  chained_steps_and_recycled_buffers();
  int8_steps();
  int8_conv_with_float_output();
  quantize_rounds_half_to_even_and_saturates();
  ncthw_input_equals_channels_last();
  ncthw_input_quantized_in_place();
  errors();
  model_file_through_the_c_api();
  fused_squeeze_excitation_equals_the_separate_steps();
  input_gate_errors();
  fused_model_file_round_trip_and_validation();
  per_channel_squeeze_excitation_equals_the_reference();
  per_channel_squeeze_excitation_builder_errors();
  per_channel_model_file_round_trip_and_validation();
  multi_input_concat();
  return check::finish("test_program");
}
