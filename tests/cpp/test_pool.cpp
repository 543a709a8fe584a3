// Fixed-kernel pooling (csrc/core/pool.h) and its program steps. Average pools: against a direct double-precision
// reference over many shapes, windows and thread counts, fp32 and int8 (float and requantized outputs); model files
// keep the steps (format version 4) and an older version may not hold them. Max pools (fp32, padded): bit for bit
// against a direct scalar reference over random shapes, windows, paddings and thread counts, NaN anywhere in a window
// giving NaN, padding never winning; model files keep the step (format version 6) and version 5 may not hold it. Bad
// shapes and parameters are std::invalid_argument (also run under ASan/UBSan).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
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
  const std::string bytes = read_file(path);
  CHECK(file_version(bytes) >= 4);  // the current version (4 added the pool kinds)
  const std::string old = temp_path("pools_v3.pvp");
  write_file(old, relabelled(bytes, 3));
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


// ---- max pooling ------------------------------------------------------------------------------------------------

PoolWindow max_window(const int64_t k[3], const int64_t st[3], const int64_t pad[3]) {
  PoolWindow w;
  for (int d = 0; d < 3; ++d) w.kernel[d] = k[d], w.stride[d] = st[d], w.padding[d] = pad[d];
  return w;
}

// torch's max_pool3d written out directly: every position of the padded window in (t, h, w) order, a padded one
// being -inf; NaN when the window holds one, else the first of the greatest values. Output-major [N, To, Ho, Wo, C].
std::vector<float> max_reference(const VolumeShape& in, const PoolWindow& w, const std::vector<float>& x) {
  const int64_t size[3] = {in.t, in.h, in.w};
  int64_t out[3];
  for (int d = 0; d < 3; ++d) out[d] = (size[d] + 2 * w.padding[d] - w.kernel[d]) / w.stride[d] + 1;
  std::vector<float> y;
  for (int64_t n = 0; n < in.batch; ++n)
    for (int64_t t = 0; t < out[0]; ++t)
      for (int64_t h = 0; h < out[1]; ++h)
        for (int64_t v = 0; v < out[2]; ++v)
          for (int64_t c = 0; c < in.channels; ++c) {
            float m = -std::numeric_limits<float>::infinity();
            bool nan = false;
            for (int64_t a = 0; a < w.kernel[0]; ++a)
              for (int64_t b = 0; b < w.kernel[1]; ++b)
                for (int64_t k = 0; k < w.kernel[2]; ++k) {
                  const int64_t it = t * w.stride[0] + a - w.padding[0], ih = h * w.stride[1] + b - w.padding[1],
                                iw = v * w.stride[2] + k - w.padding[2];
                  if (it < 0 || it >= in.t || ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;  // -inf
                  const float e = x[size_t((((n * in.t + it) * in.h + ih) * in.w + iw) * in.channels + c)];
                  if (std::isnan(e)) nan = true;
                  else if (e > m) m = e;
                }
            y.push_back(nan ? std::numeric_limits<float>::quiet_NaN() : m);
          }
  return y;
}

// Same values, NaN where the other has NaN.
bool same_values(const float* got, const std::vector<float>& want) {
  for (size_t i = 0; i < want.size(); ++i)
    if (std::isnan(want[i]) ? !std::isnan(got[i]) : !(got[i] == want[i])) return false;
  return true;
}

// A random max pool case: batch 1-2, T, H and W 1-9, one of a few channel counts, kernels 1-3, strides 1-2 and
// padding 0-1 where the kernel allows it, drawn again until the window fits the padded input.
struct MaxCase {
  VolumeShape in;
  PoolWindow w;
  bool padded;
};
MaxCase random_max_case(std::mt19937& rng) {
  std::uniform_int_distribution<int> size_dist(1, 9), k_dist(1, 3), s_dist(1, 2), p_dist(0, 1), pick(0, 5);
  const int64_t channel_counts[6] = {1, 3, 8, 16, 17, 64};
  while (true) {
    const VolumeShape in{1 + pick(rng) % 2, size_dist(rng), size_dist(rng), size_dist(rng), channel_counts[pick(rng)]};
    const int64_t sizes[3] = {in.t, in.h, in.w};
    int64_t k[3], st[3], pad[3];
    bool fits = true;
    for (int d = 0; d < 3; ++d) {
      k[d] = k_dist(rng), st[d] = s_dist(rng), pad[d] = k[d] >= 2 ? p_dist(rng) : 0;
      fits = fits && k[d] <= sizes[d] + 2 * pad[d];
    }
    if (fits) return MaxCase{in, max_window(k, st, pad), pad[0] + pad[1] + pad[2] > 0};
  }
}

void max_pool_matches_the_reference() {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  std::uniform_int_distribution<int> coin(0, 3);
  int with_nan = 0, padded = 0;
  for (int cases = 0; cases < 300; ++cases) {
    const MaxCase m = random_max_case(rng);
    const VolumeShape& in = m.in;
    const PoolWindow& w = m.w;
    std::vector<float> x(size_t(in.batch * in.positions() * in.channels));
    for (float& v : x) v = dist(rng);
    if (coin(rng) == 0) {  // a few NaNs and infinities anywhere
      ++with_nan;
      for (int i = 0; i < 3; ++i) x[size_t(rng() % x.size())] = std::numeric_limits<float>::quiet_NaN();
      x[size_t(rng() % x.size())] = std::numeric_limits<float>::infinity();
      x[size_t(rng() % x.size())] = -std::numeric_limits<float>::infinity();
    }
    padded += m.padded ? 1 : 0;
    const std::vector<float> want = max_reference(in, w, x);
    const VolumeShape o = w.output(in);
    CHECK(size_t(o.batch * o.positions() * o.channels) == want.size());
    std::vector<float> one(want.size(), 7.0f), three(want.size(), -7.0f);
    pyvideo::max_pool3d_f32(in, w, x.data(), one.data(), 1);
    pyvideo::max_pool3d_f32(in, w, x.data(), three.data(), 3);
    CHECK(same_values(one.data(), want));
    CHECK(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)) == 0);  // threads 1 and 3: same bits
  }
  CHECK(with_nan > 30 && padded > 100);
}

// The int8 max pool: the float reference on the codes (exact), for threads 1 and 3; inputs all -128 with padding
// check that padded positions never win. Then a program quantize -> max_pool (int8) -> output, against the kernels,
// its model file (version 8) and the same bytes labelled version 7, refused.
void max_pool_int8() {
  std::mt19937 rng(29);
  std::uniform_int_distribution<int> byte(-128, 127), coin(0, 4);
  int padded = 0, lowest = 0;
  for (int cases = 0; cases < 200; ++cases) {
    const MaxCase m = random_max_case(rng);
    const VolumeShape& in = m.in;
    const PoolWindow& w = m.w;
    std::vector<int8_t> x(size_t(in.batch * in.positions() * in.channels));
    const bool all_lowest = coin(rng) == 0;
    for (int8_t& v : x) v = all_lowest ? int8_t(-128) : int8_t(byte(rng));
    padded += m.padded ? 1 : 0;
    lowest += all_lowest && m.padded ? 1 : 0;
    const std::vector<float> want = max_reference(in, w, std::vector<float>(x.begin(), x.end()));
    std::vector<int8_t> one(want.size(), 7), three(want.size(), -7);
    pyvideo::max_pool3d_i8(in, w, x.data(), one.data(), 1);
    pyvideo::max_pool3d_i8(in, w, x.data(), three.data(), 3);
    bool same = true;
    for (size_t i = 0; i < want.size(); ++i) same = same && float(one[i]) == want[i];
    CHECK(same);
    CHECK(one == three);
  }
  CHECK(padded > 60 && lowest > 5);

  Program p;
  ConvGeometry stem = geometry(1, 3, 3, 1, 2, 2);
  stem.padding[1] = stem.padding[2] = 1;
  const QuantParams qp{0.05f, -3};
  const int32_t x = p.set_input(17);
  const int32_t q = p.quantize(x, qp);
  const int32_t pooled = p.max_pool(q, stem);
  p.set_outputs({pooled}, {Program::Layout::nthwc});
  const std::string path = temp_path("max_pool_int8.pvp");
  p.save(path);
  const auto loaded = Program::load(path);
  CHECK(loaded->describe() == p.describe());
  const Shape5 shape{2, 3, 9, 8, 17};
  std::vector<float> in(size_t(shape.numel()));
  std::uniform_real_distribution<float> dist(-8.0f, 5.0f);  // many codes clamp at -128 / 127
  for (float& v : in) v = dist(rng);
  const auto got = p.run(in.data(), shape, 3), again = loaded->run(in.data(), shape, 1);
  std::vector<int8_t> codes(in.size());
  for (size_t i = 0; i < in.size(); ++i)
    codes[i] = int8_t(std::min(127.0f, std::max(-128.0f, std::nearbyint(in[i] / qp.scale) + float(qp.zero_point))));
  const VolumeShape vin{shape.n, shape.t, shape.h, shape.w, shape.c};
  PoolWindow ws = window(1, 3, 3, 1, 2, 2);
  ws.padding[1] = ws.padding[2] = 1;
  const VolumeShape os = ws.output(vin);
  std::vector<int8_t> want(size_t(os.batch * os.positions() * os.channels));
  pyvideo::max_pool3d_i8(vin, ws, codes.data(), want.data(), 1);
  CHECK(got[0].shape == (Shape5{os.batch, os.t, os.h, os.w, os.channels}));
  CHECK(std::memcmp(got[0].data(), want.data(), want.size()) == 0);
  CHECK(std::memcmp(again[0].data(), want.data(), want.size()) == 0);
  const std::string bytes = read_file(path), old = temp_path("max_pool_int8_v7.pvp");
  CHECK(file_version(bytes) == kCurrentVersion);
  write_file(old, relabelled(bytes, 7));
  CHECK(load_fails_with(old, "int8 max_pool step needs format version 8"));
  std::remove(path.c_str());
  std::remove(old.c_str());
}

// NaN at any position of a window (among finite values and infinities) gives NaN in its channel only; padding never
// wins over negative inputs; of 0.0 and -0.0 the first in the window is kept, as torch does.
void max_pool_nan_padding_and_zeros() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const VolumeShape in{1, 2, 2, 3, 5};  // a single 2x2x3 window, 5 channels
  const int64_t k[3] = {2, 2, 3}, st[3] = {1, 1, 1}, pad[3] = {0, 0, 0};
  const PoolWindow w = max_window(k, st, pad);
  const float fill[3] = {1.0f, inf, -inf};
  for (float other : fill)
    for (size_t pos = 0; pos < 12; ++pos) {
      std::vector<float> x(60, other);
      for (size_t i = 0; i < 12; ++i) x[i * 5 + 1] = float(i) - 20.0f;  // channel 1: finite values, no NaN
      x[pos * 5 + 2] = nan;                                              // channel 2: NaN at `pos`
      x[pos * 5 + 3] = nan;                                              // channel 3: NaN at `pos` next to +inf
      x[((pos + 5) % 12) * 5 + 3] = inf;
      std::vector<float> out(5, 0.0f);
      pyvideo::max_pool3d_f32(in, w, x.data(), out.data(), 1);
      CHECK(std::isnan(out[2]) && std::isnan(out[3]));
      CHECK(out[0] == other && out[4] == other && out[1] == -9.0f);
    }
  // All inputs negative and padding on every side: each output is a real (negative) input, never the padding.
  const VolumeShape small{2, 3, 4, 5, 3};
  std::vector<float> x(size_t(small.batch * small.positions() * small.channels));
  for (size_t i = 0; i < x.size(); ++i) x[i] = -1.0f - float(i % 7);
  const int64_t k3[3] = {3, 3, 3}, s2[3] = {2, 2, 2}, p1[3] = {1, 1, 1};
  const PoolWindow pw = max_window(k3, s2, p1);
  const VolumeShape o = pw.output(small);
  CHECK(o.t == 2 && o.h == 2 && o.w == 3);
  std::vector<float> out(size_t(o.batch * o.positions() * o.channels), 0.0f);
  pyvideo::max_pool3d_f32(small, pw, x.data(), out.data(), 2);
  CHECK(same_values(out.data(), max_reference(small, pw, x)));
  CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v <= -1.0f; }));
  // Signed zeros: the first of equal values wins (-0.0 then 0.0 gives -0.0, and the other way round 0.0).
  const VolumeShape line{1, 1, 1, 2, 1};
  const int64_t k2[3] = {1, 1, 2}, s1[3] = {1, 1, 1}, p0[3] = {0, 0, 0};
  for (float first : {-0.0f, 0.0f}) {
    const float zeros[2] = {first, -first};
    float z = 1.0f;
    pyvideo::max_pool3d_f32(line, max_window(k2, s1, p0), zeros, &z, 1);
    CHECK(z == 0.0f && std::signbit(z) == std::signbit(first));
  }
}

void max_pool_kernel_errors() {
  const VolumeShape in{1, 4, 5, 5, 8};
  std::vector<float> x(size_t(in.positions() * in.channels)), out(x.size());
  auto run = [&](PoolWindow w, const VolumeShape& shape, const float* src, float* dst) {
    return throws([&] { pyvideo::max_pool3d_f32(shape, w, src, dst, 1); });
  };
  PoolWindow w = window(3, 3, 3, 1, 1, 1);
  CHECK(!run(w, in, x.data(), out.data()));
  w.padding[1] = 2;  // more than half the kernel (torch refuses it too): windows made of padding only
  CHECK(run(w, in, x.data(), out.data()));
  w = window(2, 2, 2, 1, 1, 1);
  w.padding[0] = 2;
  CHECK(run(w, in, x.data(), out.data()));
  w.padding[0] = -1;
  CHECK(run(w, in, x.data(), out.data()));
  w = window(4, 1, 1, 1, 1, 1);
  w.padding[0] = 1;  // 4 <= 1 + 2: fits a T of 1 ...
  CHECK(!run(w, VolumeShape{1, 2, 5, 5, 8}, x.data(), out.data()));
  CHECK(run(w, VolumeShape{1, 1, 5, 5, 8}, x.data(), out.data()));  // ... but not a T of 1 (4 > 1 + 2)
  CHECK(run(window(1, 6, 1, 1, 1, 1), in, x.data(), out.data()));  // H 5 < 6, no padding
  CHECK(run(window(1, 1, 1, 1, 0, 1), in, x.data(), out.data()));  // stride 0
  CHECK(run(window(1, 1, 0, 1, 1, 1), in, x.data(), out.data()));  // kernel 0
  CHECK(run(window(1, 1, 1, 1, 1, 1), in, nullptr, out.data()));
  CHECK(run(window(1, 1, 1, 1, 1, 1), in, x.data(), nullptr));
  for (const VolumeShape& empty : {VolumeShape{1, 4, 0, 5, 8}, VolumeShape{1, 4, 5, 5, 0}, VolumeShape{-1, 4, 5, 5, 8}})
    CHECK(run(window(1, 1, 1, 1, 1, 1), empty, x.data(), out.data()));
  // An empty batch computes nothing, as torch gives an empty output: no error, even with null pointers (an empty
  // tensor's data), and nothing written.
  const VolumeShape no_clips{0, 4, 5, 5, 8};
  CHECK(!run(window(3, 3, 3, 1, 1, 1), no_clips, nullptr, nullptr));
  CHECK(!throws([&] { pyvideo::max_pool3d_i8(no_clips, window(3, 3, 3, 1, 1, 1), nullptr, nullptr, 1); }));
  CHECK(!throws([&] { pyvideo::avg_pool3d_f32(no_clips, window(3, 3, 3, 1, 1, 1), nullptr, nullptr, 1); }));
  CHECK(!throws([&] {
    pyvideo::quantized_avg_pool3d(no_clips, window(3, 3, 3, 1, 1, 1), nullptr, 1.0f, 0, false, 0, 0, nullptr, 1);
  }));
  std::fill(out.begin(), out.end(), 7.0f);
  CHECK(!run(window(3, 3, 3, 1, 1, 1), no_clips, x.data(), out.data()));
  CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v == 7.0f; }));
  // the average pools take no padding
  PoolWindow padded = window(3, 3, 3, 1, 1, 1);
  padded.padding[2] = 1;
  CHECK(throws([&] { pyvideo::avg_pool3d_f32(in, padded, x.data(), out.data(), 1); }));
  std::vector<int8_t> q(x.size());
  CHECK(throws([&] { pyvideo::quantized_avg_pool3d(in, padded, q.data(), 1.0f, 0, false, 0, 0, out.data(), 1); }));
}

// A program: x -> max_pool (a ResNet stem's window: 1x3x3, stride 1x2x2, padding 0x1x1) -> avg_pool, and a second
// max pool padded in every dim. Each output equals the kernels called directly, for two input shapes; the model file
// keeps the step (version 6), the same bytes labelled version 5 are refused, and bad steps are refused.
void max_pool_program_and_model_file() {
  Program p;
  ConvGeometry stem = geometry(1, 3, 3, 1, 2, 2), cube = geometry(3, 3, 2, 2, 1, 2);
  stem.padding[1] = stem.padding[2] = 1;
  cube.padding[0] = cube.padding[1] = cube.padding[2] = 1;
  const int32_t x = p.set_input(17);
  const int32_t pooled = p.max_pool(x, stem);
  const int32_t averaged = p.avg_pool(pooled, geometry(1, 2, 2, 1, 1, 1));
  const int32_t cubed = p.max_pool(x, cube);
  p.set_outputs({pooled, averaged, cubed}, {Program::Layout::ncthw, Program::Layout::ncthw, Program::Layout::nthwc});
  CHECK(p.describe().find("max_pool") != std::string::npos);
  const std::string path = temp_path("max_pool.pvp");
  p.save(path);
  const auto loaded = Program::load(path);
  CHECK(loaded->describe() == p.describe());
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  for (const Shape5& shape : {Shape5{1, 3, 9, 8, 17}, Shape5{2, 4, 12, 13, 17}}) {
    std::vector<float> in(size_t(shape.numel()));
    for (float& v : in) v = dist(rng);
    in[5] = std::numeric_limits<float>::quiet_NaN();
    const auto got = p.run(in.data(), shape, 3), again = loaded->run(in.data(), shape, 1);
    const VolumeShape vin{shape.n, shape.t, shape.h, shape.w, shape.c};
    PoolWindow ws = window(1, 3, 3, 1, 2, 2), wc = window(3, 3, 2, 2, 1, 2);
    ws.padding[1] = ws.padding[2] = 1;
    wc.padding[0] = wc.padding[1] = wc.padding[2] = 1;
    const VolumeShape os = ws.output(vin), oc = wc.output(vin), oa = window(1, 2, 2, 1, 1, 1).output(os);
    CHECK(got[0].shape == (Shape5{os.batch, os.t, os.h, os.w, os.channels}));
    CHECK(got[1].shape == (Shape5{oa.batch, oa.t, oa.h, oa.w, oa.channels}));
    CHECK(got[2].shape == (Shape5{oc.batch, oc.t, oc.h, oc.w, oc.channels}));
    auto sized = [](const VolumeShape& v) { return std::vector<float>(size_t(v.batch * v.positions() * v.channels)); };
    std::vector<float> want_s = sized(os), want_a = sized(oa), want_c = sized(oc);
    pyvideo::max_pool3d_f32(vin, ws, in.data(), want_s.data(), 1);
    pyvideo::avg_pool3d_f32(os, window(1, 2, 2, 1, 1, 1), want_s.data(), want_a.data(), 1);
    pyvideo::max_pool3d_f32(vin, wc, in.data(), want_c.data(), 1);
    CHECK(same_values(want_s.data(), max_reference(vin, ws, in)) && std::isnan(want_s[5]));
    const std::vector<float>* want[3] = {&want_s, &want_a, &want_c};
    for (size_t k = 0; k < 3; ++k) {
      const size_t bytes = want[k]->size() * sizeof(float);
      CHECK(std::memcmp(got[k].data(), want[k]->data(), bytes) == 0);
      CHECK(std::memcmp(again[k].data(), want[k]->data(), bytes) == 0);
    }
  }
  // A window larger than the padded input is a run-time error naming the step, not a crash.
  Program tight;
  ConvGeometry big = geometry(1, 4, 1, 1, 1, 1);
  big.padding[1] = 1;  // fits H >= 2 only
  const int32_t tight_in = tight.set_input(2);
  tight.set_outputs({tight.max_pool(tight_in, big)}, {Program::Layout::ncthw});
  std::vector<float> small(size_t(1 * 1 * 2 * 3 * 2), 1.0f);
  CHECK(!throws([&] { tight.run(small.data(), Shape5{1, 1, 2, 3, 2}, 1); }));
  CHECK(throws([&] { tight.run(small.data(), Shape5{1, 1, 1, 3, 2}, 1); }));

  // Version 5 files cannot hold the max_pool kind: the same bytes labelled version 5 are refused, naming it (kind 12).
  std::string bytes = read_file(path);
  CHECK(file_version(bytes) == kCurrentVersion);
  const std::string old = temp_path("max_pool_v5.pvp");
  write_file(old, relabelled(bytes, 5));
  CHECK(load_fails_with(old, "unknown step kind 12 for format version 5"));
  // A saved max pool with a padding over half its kernel (patched in the file) is refused by the builder on load.
  bytes = read_file(path);
  // step 0 (the stem pool): kind, input, residual (4 bytes each), depthwise (1), kernel[3], stride[3], padding[3]
  const size_t step0 = first_step_offset(bytes), padding_h = step0 + 4 + 4 + 4 + 1 + 6 * 8 + 8;
  int64_t pad_h;
  std::memcpy(&pad_h, bytes.data() + padding_h, 8);
  CHECK(pad_h == 1);
  const int64_t two = 2;
  std::memcpy(&bytes[padding_h], &two, 8);
  write_file(old, bytes);
  CHECK(load_fails_with(old, "at most half its kernel"));
  std::remove(path.c_str());
  std::remove(old.c_str());
}

void max_pool_builder_errors() {
  Program p;
  const int32_t x = p.set_input(4);
  const int32_t q = p.quantize(x, QuantParams{0.1f, 0});
  ConvGeometry g = geometry(3, 3, 3, 1, 1, 1);
  g.padding[0] = 1;
  CHECK(!throws([&] { p.max_pool(x, g); }));
  CHECK(!throws([&] { p.max_pool(q, g); }));  // int8 codes (max_pool_int8)
  g.padding[0] = 2;                          // over half the kernel
  CHECK(throws([&] { p.max_pool(x, g); }));
  g.padding[0] = -1;
  CHECK(throws([&] { p.max_pool(x, g); }));
  CHECK(throws([&] { p.max_pool(x, geometry(1, 0, 1, 1, 1, 1)); }));  // empty window
  CHECK(throws([&] { p.max_pool(x, geometry(1, 1, 1, 1, 1, 0)); }));  // stride 0
  CHECK(throws([&] { p.max_pool(9, geometry(1, 1, 1, 1, 1, 1)); }));  // no such value
  const int32_t dyn = p.dynamic_quantize(x);
  CHECK(throws([&] { p.max_pool(dyn, geometry(1, 1, 1, 1, 1, 1)); }));  // a dynamic int8 value
}

}  // namespace

int main() {
  fp32_matches_the_reference();
  int8_matches_the_reference();
  kernel_errors();
  program_steps_and_model_file();
  builder_errors();
  max_pool_matches_the_reference();
  max_pool_nan_padding_and_zeros();
  max_pool_int8();
  max_pool_kernel_errors();
  max_pool_program_and_model_file();
  max_pool_builder_errors();
  return check::finish("test_pool");
}
