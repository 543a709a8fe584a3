// The native program runtime: steps chained over recycled buffers give what the steps give one by one, shapes follow
// the input, and bad programs / inputs are std::invalid_argument, not crashes (also run under ASan/UBSan).
#include <cmath>
#include <cstdint>
#include <vector>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <fstream>
#include <string>

#include "../../csrc/c_api/pyvideo.h"
#include "../../csrc/runtime/program.h"
#include "check.h"

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

void quantize_rounds_half_to_even_and_saturates() {
  Program p;
  const int32_t x = p.set_input(1);
  p.set_outputs({p.quantize(x, QuantParams{0.5f, 0})}, {Program::Layout::nthwc});
  const std::vector<float> pattern{1.25f, 1.75f, -1.25f, 0.25f, 1e30f, -1e30f, std::nanf(""), 63.75f};
  // x / 0.5 = 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 0.5 -> 0, saturation both ways, NaN -> -128, 127.5 -> 127 (clamped)
  const int8_t want[8] = {2, 4, -2, 0, 127, -128, -128, 127};
  std::vector<float> in;
  for (int r = 0; r < 5; ++r) in.insert(in.end(), pattern.begin(), pattern.end());  // vector blocks and a tail
  const auto out = p.run(in.data(), Shape5{1, 1, 1, int64_t(in.size()), 1}, 1);
  const int8_t* q = static_cast<const int8_t*>(out[0].data());
  for (size_t i = 0; i < in.size(); ++i) CHECK(q[i] == want[i % 8]);
}

template <class F>
bool throws(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
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

std::string temp_path(const char* name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/pyvideo_test_program_" + name;
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
  int refused = 0, cuts = 0;
  for (size_t n = 0; n < bytes.size(); n += 7, ++cuts) {
    std::ofstream(cut, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(n));
    pyvideo_program* bad = nullptr;
    if (pyvideo_program_load(cut.c_str(), &bad) == PYVIDEO_ERROR_INVALID_ARGUMENT && !bad &&
        std::string(pyvideo_last_error()).find("program file") != std::string::npos)
      ++refused;
    pyvideo_program_free(bad);
  }
  CHECK(refused == cuts);
  // Flipped bytes anywhere: loading either fails cleanly or gives a program that runs or fails cleanly.
  for (size_t at = 0; at < bytes.size(); at += 3) {
    std::string flipped = bytes;
    flipped[at] = char(flipped[at] ^ 0x5a);
    std::ofstream(cut, std::ios::binary | std::ios::trunc).write(flipped.data(), std::streamsize(flipped.size()));
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

}  // namespace

int main() {
  chained_steps_and_recycled_buffers();
  int8_steps();
  quantize_rounds_half_to_even_and_saturates();
  errors();
  model_file_through_the_c_api();
  return check::finish("test_program");
}
