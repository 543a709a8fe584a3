// Fixed-kernel average pooling (csrc/core/pool.h) and its program steps: against a direct double-precision reference
// over many shapes, windows and thread counts, fp32 and int8 (float and requantized outputs); model files keep the
// steps (format version 4) and an older version may not hold them; bad shapes and parameters are
// std::invalid_argument (also run under ASan/UBSan).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "../../csrc/core/pool.h"
#include "../../csrc/runtime/program.h"
#include "check.h"
#include "program_files.h"

using pyvideo::PoolWindow;
using pyvideo::VolumeShape;
using pyvideo::runtime::ConvGeometry;
using pyvideo::runtime::Program;
using pyvideo::runtime::QuantParams;
using pyvideo::runtime::Shape5;

namespace {

template <class F>
bool throws(F f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

PoolWindow window(int64_t kt, int64_t kh, int64_t kw, int64_t st, int64_t sh, int64_t sw) {
  PoolWindow w;
  w.kernel[0] = kt, w.kernel[1] = kh, w.kernel[2] = kw;
  w.stride[0] = st, w.stride[1] = sh, w.stride[2] = sw;
  return w;
}

// Window sums of x (any element type) in double, output-major [N, To, Ho, Wo, C].
template <class T>
std::vector<double> window_sums(const VolumeShape& in, const PoolWindow& w, const std::vector<T>& x) {
  const VolumeShape o = w.output(in);
  std::vector<double> sums;
  for (int64_t n = 0; n < o.batch; ++n)
    for (int64_t t = 0; t < o.t; ++t)
      for (int64_t h = 0; h < o.h; ++h)
        for (int64_t v = 0; v < o.w; ++v)
          for (int64_t c = 0; c < in.channels; ++c) {
            double s = 0;
            for (int64_t a = 0; a < w.kernel[0]; ++a)
              for (int64_t b = 0; b < w.kernel[1]; ++b)
                for (int64_t k = 0; k < w.kernel[2]; ++k) {
                  const int64_t it = t * w.stride[0] + a, ih = h * w.stride[1] + b, iw = v * w.stride[2] + k;
                  s += double(x[size_t((((n * in.t + it) * in.h + ih) * in.w + iw) * in.channels + c)]);
                }
            sums.push_back(s);
          }
  return sums;
}

struct Case {
  VolumeShape in;
  PoolWindow w;
};

std::vector<Case> cases() {
  return {
      {{1, 4, 5, 5, 432}, window(4, 5, 5, 1, 1, 1)},   // X3D-XS head at 160x160: one global window
      {{2, 6, 6, 7, 24}, window(4, 5, 5, 1, 1, 1)},    // a larger clip: 3 x 2 x 3 windows per sample
      {{1, 8, 7, 7, 17}, window(8, 7, 7, 1, 1, 1)},    // ResNet-style head
      {{3, 5, 9, 11, 3}, window(2, 3, 2, 2, 2, 3)},    // strided, odd sizes, windows that skip inputs
      {{1, 1, 1, 1, 1}, window(1, 1, 1, 1, 1, 1)},
      {{1, 3, 4, 4, 70}, window(1, 1, 1, 1, 1, 1)},    // the identity
  };
}

void fp32_matches_the_reference() {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  for (const Case& k : cases()) {
    std::vector<float> x(size_t(k.in.batch * k.in.positions() * k.in.channels));
    for (float& v : x) v = dist(rng);
    const std::vector<double> want = window_sums(k.in, k.w, x);
    const double count = double(k.w.kernel[0] * k.w.kernel[1] * k.w.kernel[2]);
    for (int threads : {1, 2, 3}) {
      std::vector<float> out(want.size(), -1.0f);
      pyvideo::avg_pool3d_f32(k.in, k.w, x.data(), out.data(), threads);
      double err = 0;
      for (size_t i = 0; i < want.size(); ++i) err = std::max(err, std::fabs(double(out[i]) - want[i] / count));
      CHECK(err < 1e-5);
    }
  }
}

void int8_matches_the_reference() {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> dist(-128, 127);
  for (const Case& k : cases()) {
    std::vector<int8_t> x(size_t(k.in.batch * k.in.positions() * k.in.channels));
    for (int8_t& v : x) v = int8_t(dist(rng));
    const std::vector<double> sums = window_sums(k.in, k.w, x);
    const int64_t count = k.w.kernel[0] * k.w.kernel[1] * k.w.kernel[2];
    const float scale = 0.037f, out_scale = 0.011f;
    const int32_t zp = -7, out_zp = 5;
    const float per_element = scale / float(count);
    for (int threads : {1, 2}) {
      std::vector<float> mean(sums.size());
      std::vector<int8_t> q(sums.size());
      pyvideo::quantized_avg_pool3d(k.in, k.w, x.data(), scale, zp, false, 0.0f, 0, mean.data(), threads);
      pyvideo::quantized_avg_pool3d(k.in, k.w, x.data(), scale, zp, true, out_scale, out_zp, q.data(), threads);
      int exact = 0, requantized = 0;
      for (size_t i = 0; i < sums.size(); ++i) {
        // The specification: float32 of the exact centred sum, times float32(scale) / float32(count).
        const float want = float(sums[i] - double(zp) * double(count)) * per_element;
        exact += mean[i] == want ? 1 : 0;
        const float r = std::min(127.0f, std::max(-128.0f, std::nearbyint(want / out_scale) + float(out_zp)));
        requantized += float(q[i]) == r ? 1 : 0;
      }
      CHECK(exact == int(sums.size()));
      CHECK(requantized == int(sums.size()));
    }
  }
}

void kernel_errors() {
  const VolumeShape in{1, 4, 5, 5, 8};
  std::vector<float> x(size_t(in.positions() * in.channels)), out(x.size());
  std::vector<int8_t> q(x.size());
  CHECK(throws([&] { pyvideo::avg_pool3d_f32(in, window(5, 1, 1, 1, 1, 1), x.data(), out.data(), 1); }));  // T 4 < 5
  CHECK(throws([&] { pyvideo::avg_pool3d_f32(in, window(1, 1, 1, 0, 1, 1), x.data(), out.data(), 1); }));
  CHECK(throws([&] { pyvideo::avg_pool3d_f32(in, window(1, 1, 1, 1, 1, 1), nullptr, out.data(), 1); }));
  CHECK(throws([&] { pyvideo::avg_pool3d_f32(VolumeShape{1, 0, 5, 5, 8}, window(1, 1, 1, 1, 1, 1), x.data(), out.data(), 1); }));
  CHECK(throws([&] { pyvideo::quantized_avg_pool3d(in, window(1, 1, 1, 1, 1, 1), q.data(), 0.0f, 0, false, 0, 0, out.data(), 1); }));
  CHECK(throws([&] { pyvideo::quantized_avg_pool3d(in, window(1, 1, 1, 1, 1, 1), q.data(), 1.0f, 200, false, 0, 0, out.data(), 1); }));
  CHECK(throws([&] { pyvideo::quantized_avg_pool3d(in, window(1, 1, 1, 1, 1, 1), q.data(), 1.0f, 0, true, -1.0f, 0, q.data(), 1); }));
}

ConvGeometry geometry(int64_t kt, int64_t kh, int64_t kw, int64_t st, int64_t sh, int64_t sw) {
  ConvGeometry g;
  g.kernel[0] = kt, g.kernel[1] = kh, g.kernel[2] = kw;
  g.stride[0] = st, g.stride[1] = sh, g.stride[2] = sw;
  return g;
}

std::string temp_path(const char* name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/pyvideo_test_pool_" + name;
}

// A program: x -> avg_pool (fp32 output) and x -> quantize -> quantized_avg_pool (int8 and fp32 outputs). Each
// output equals the kernel called directly; shapes follow the input; the model file keeps both step kinds.
void program_steps_and_model_file() {
  Program p;
  const ConvGeometry g = geometry(2, 3, 3, 1, 2, 1);
  const int32_t x = p.set_input(6);
  const int32_t pooled = p.avg_pool(x, g);
  const int32_t q = p.quantize(x, QuantParams{0.05f, 3});
  const int32_t qpooled = p.quantized_avg_pool(q, g, QuantParams{0.05f, 3}, true, QuantParams{0.02f, -1});
  const int32_t fpooled = p.quantized_avg_pool(q, g, QuantParams{0.05f, 3}, false, QuantParams{});
  p.set_outputs({pooled, qpooled, fpooled},
                {Program::Layout::ncthw, Program::Layout::ncthw, Program::Layout::ncthw});
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  const std::string path = temp_path("pools.pvp");
  p.save(path);
  const auto loaded = Program::load(path);
  CHECK(loaded->describe() == p.describe());
  for (const Shape5& shape : {Shape5{1, 3, 5, 5, 6}, Shape5{2, 4, 7, 6, 6}}) {
    std::vector<float> in(size_t(shape.numel()));
    for (float& v : in) v = dist(rng);
    const auto got = p.run(in.data(), shape, 2), again = loaded->run(in.data(), shape, 1);
    const VolumeShape vin{shape.n, shape.t, shape.h, shape.w, shape.c};
    PoolWindow w = window(2, 3, 3, 1, 2, 1);
    const VolumeShape o = w.output(vin);
    CHECK(got[0].shape == (Shape5{o.batch, o.t, o.h, o.w, o.channels}));
    const size_t n = size_t(o.batch * o.positions() * o.channels);
    std::vector<float> want(n), want_f(n);
    std::vector<int8_t> xq(in.size()), want_q(n);
    pyvideo::avg_pool3d_f32(vin, w, in.data(), want.data(), 1);
    for (size_t i = 0; i < in.size(); ++i)  // the quantize step's rounding: half to even
      xq[i] = int8_t(std::min(127.0f, std::max(-128.0f, std::nearbyint(in[i] / 0.05f) + 3.0f)));
    pyvideo::quantized_avg_pool3d(vin, w, xq.data(), 0.05f, 3, true, 0.02f, -1, want_q.data(), 1);
    pyvideo::quantized_avg_pool3d(vin, w, xq.data(), 0.05f, 3, false, 0.0f, 0, want_f.data(), 1);
    CHECK(std::memcmp(got[0].data(), want.data(), n * 4) == 0);
    CHECK(std::memcmp(got[1].data(), want_q.data(), n) == 0);
    CHECK(std::memcmp(got[2].data(), want_f.data(), n * 4) == 0);
    for (int k = 0; k < 3; ++k)
      CHECK(std::memcmp(got[size_t(k)].data(), again[size_t(k)].data(), n * (k == 1 ? 1 : 4)) == 0);
  }
  // A window larger than the input is an error naming the step, not a crash.
  std::vector<float> small(size_t(1 * 1 * 5 * 5 * 6), 0.0f);
  CHECK(throws([&] { p.run(small.data(), Shape5{1, 1, 5, 5, 6}, 1); }));

  // Version 3 files cannot hold the new step kinds: the same bytes labelled version 3 are refused.
  std::ifstream file(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  uint32_t version;
  std::memcpy(&version, bytes.data() + 8, 4);
  CHECK(version >= 4);  // the current version (4 added the pool kinds)
  const uint32_t v3 = 3;
  std::memcpy(&bytes[8], &v3, 4);
  const std::string old = temp_path("pools_v3.pvp");
  std::ofstream(old, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  CHECK(load_fails_with(old, "unknown step kind"));
}

void builder_errors() {
  Program p;
  const int32_t x = p.set_input(4);
  const int32_t q = p.quantize(x, QuantParams{0.1f, 0});
  ConvGeometry padded = geometry(3, 3, 3, 1, 1, 1);
  padded.padding[1] = 1;
  CHECK(throws([&] { p.avg_pool(x, padded); }));                             // pools take no padding
  CHECK(throws([&] { p.avg_pool(q, geometry(1, 1, 1, 1, 1, 1)); }));          // int8 input to the fp32 pool
  CHECK(throws([&] { p.avg_pool(x, geometry(0, 1, 1, 1, 1, 1)); }));          // empty window
  CHECK(throws([&] { p.quantized_avg_pool(x, geometry(1, 1, 1, 1, 1, 1), QuantParams{}, false, QuantParams{}); }));
  CHECK(throws([&] { p.quantized_avg_pool(q, geometry(1, 1, 1, 1, 1, 1), QuantParams{0.0f, 0}, false, QuantParams{}); }));
  CHECK(throws([&] { p.quantized_avg_pool(q, geometry(1, 1, 1, 1, 1, 1), QuantParams{}, true, QuantParams{1.0f, 300}); }));
  CHECK(throws([&] { p.avg_pool(7, geometry(1, 1, 1, 1, 1, 1)); }));          // no such value
}

}  // namespace

int main() {
  fp32_matches_the_reference();
  int8_matches_the_reference();
  kernel_errors();
  program_steps_and_model_file();
  builder_errors();
  return check::finish("test_pool");
}
