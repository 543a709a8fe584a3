// Every compiled depthwise-conv3d variant the CPU supports equals the scalar reference over many shapes:
// odd sizes, channel counts that leave vector tails, every stride/padding mix, 3x3x3, 5x1x1 and 1xkxk kernels,
// X3D-sized rows with 4 and 13 frames, batches of two, and work split into ranges of positions (rows in line order)
// cut anywhere: each range writes exactly its own rows. Every other shape also asks for the per-row channel sums (the
// squeeze-excitation's input), which must equal the sums of the values the variant stored, whatever the split, and
// stay inside the rows of each range.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/dwconv3d/dwconv3d.h"

using namespace pyvideo::kernels;

namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

DwConv3dF32Fn variant(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::avx2: return dwconv3d_f32_avx2;
    case Isa::avx512: return dwconv3d_f32_avx512;
#endif
#if defined(__aarch64__)
    case Isa::neon: return dwconv3d_f32_neon;
#endif
    default: return dwconv3d_f32_scalar;
  }
}

void compare(const DwConv3dShape& s, bool with_bias, std::mt19937& rng) {
  const Activation acts[] = {Activation::identity, Activation::relu, Activation::swish, Activation::hswish,
                             Activation::sigmoid};
  static int calls = 0;
  ++calls;
  const size_t in_n = size_t(s.batch * s.in_t * s.in_h * s.in_w * s.channels);
  const size_t out_n = size_t(s.rows() * s.out_w() * s.channels);
  const auto x = random_vector(in_n, rng);
  const auto w = random_vector(size_t(s.kernel_t * s.kernel_h * s.kernel_w * s.channels), rng);
  const auto b = random_vector(size_t(s.channels), rng);
  const auto residual = random_vector(out_n, rng);
  Epilogue ep;  // cycle through the fused epilogues: activations, with and without residual
  ep.bias = with_bias ? b.data() : nullptr;
  ep.activation = acts[calls % 5];
  ep.residual = calls % 3 == 1 ? residual.data() : nullptr;
  std::vector<float> ref(out_n, -7.0f);
  dwconv3d_f32_scalar(s, x.data(), w.data(), ep, ref.data(), 0, s.rows());
  const bool sums = calls % 2 == 0;
  for (Isa isa : supported_isas()) {
    // Three ranges of positions (rows in line order: position p is row ot = p % To of line (n, oh) = p / To), as
    // threads would take them, cut anywhere (also inside a line and inside a group of rows the kernel computes
    // together). Each range runs alone on a buffer of guard values: it must write exactly its own rows.
    const int64_t rows = s.rows(), row_size = s.out_w() * s.channels;
    const int64_t cuts[4] = {0, rows / 3, std::max(rows / 3, rows - rows / 4), rows};
    double max_err = 0, max_sum_err = 0;
    bool guard_ok = true;
    const int64_t C = s.channels, Wo = s.out_w(), To = s.out_t(), Ho = s.out_h();
    for (int part = 0; part < 3; ++part) {
      std::vector<bool> mine(size_t(rows), false);  // the rows at this part's positions, mapped by hand
      for (int64_t p = cuts[part]; p < cuts[part + 1]; ++p) {
        const int64_t n = p / To / Ho, oh = p / To % Ho, ot = p % To;
        mine[size_t((n * To + ot) * Ho + oh)] = true;
      }
      std::vector<float> got(out_n + 16, 12345.0f);  // guard values also catch writes past the end
      std::vector<float> row_sums(size_t(rows * C) + 16, 0.0f);
      Epilogue ep_part = ep;
      ep_part.row_sums = sums ? row_sums.data() : nullptr;
      variant(isa)(s, x.data(), w.data(), ep_part, got.data(), cuts[part], cuts[part + 1]);
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t i = row * row_size; i < (row + 1) * row_size; ++i)
          if (mine[size_t(row)])
            max_err = std::max(max_err, double(std::fabs(got[size_t(i)] - ref[size_t(i)])));
          else
            guard_ok = guard_ok && got[size_t(i)] == 12345.0f;
      for (size_t i = out_n; i < got.size(); ++i) guard_ok = guard_ok && got[i] == 12345.0f;
      if (!sums) continue;
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t c = 0; c < C; ++c) {
          const float sum = row_sums[size_t(row * C + c)];
          if (!mine[size_t(row)]) {
            guard_ok = guard_ok && sum == 0.0f;
            continue;
          }
          double want = 0, magnitude = 0;  // the sum of what the variant stored, in double
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const double v = got[size_t((row * Wo + ow) * C + c)];
            want += v;
            magnitude += std::fabs(v);
          }
          max_sum_err = std::max(max_sum_err, std::fabs(sum - want) / (magnitude + 1e-30));
        }
      for (size_t i = size_t(rows * C); i < row_sums.size(); ++i) guard_ok = guard_ok && row_sums[i] == 0.0f;
    }
    CHECK(guard_ok);
    CHECK_NEAR(max_err, 0.0, 1e-4);
    CHECK_NEAR(max_sum_err, 0.0, 1e-5);
    if (max_err > 1e-4 || max_sum_err > 1e-5 || !guard_ok)
      std::fprintf(stderr, "  isa=%s C=%ld T=%ld H=%ld W=%ld k=%ldx%ldx%ld s=%ldx%ldx%ld p=%ldx%ldx%ld\n", isa_name(isa),
                   long(s.channels), long(s.in_t), long(s.in_h), long(s.in_w), long(s.kernel_t), long(s.kernel_h),
                   long(s.kernel_w), long(s.stride_t), long(s.stride_h), long(s.stride_w), long(s.pad_t),
                   long(s.pad_h), long(s.pad_w));
  }
}

// act(x) on `isa` through a 1x1x1 depthwise conv of weight 1 without bias over `x` (C channels, x.size() a multiple).
// with_sums: the row sums asked for too, so each column is activated on its own (one vector at a time); without, the
// row is activated as one run, several vectors interleaved (epilogue.h's activate_n).
std::vector<float> activated(Isa isa, const std::vector<float>& x, int64_t C, Activation act, bool with_sums = false) {
  DwConv3dShape s;
  s.batch = 1; s.channels = C; s.in_t = 1; s.in_h = 1; s.in_w = int64_t(x.size()) / C;
  const std::vector<float> w(size_t(C), 1.0f);
  Epilogue ep;
  ep.activation = act;
  std::vector<float> sums(size_t(C), 0.0f);
  if (with_sums) ep.row_sums = sums.data();
  std::vector<float> y(x.size(), 12345.0f);
  variant(isa)(s, x.data(), w.data(), ep, y.data(), 0, s.rows());
  return y;
}

// The vector sigmoid and swish (epilogue.h: exp_neg, a reciprocal refined by Newton-Raphson) against the definitions in
// double precision, on every ISA, through a 1x1x1 depthwise conv of weight 1 (and equal bit for bit with and without
// row sums: activate() one vector at a time, activate_n interleaved): a dense sweep of [-100, 100] and the
// values around the [-80, 80] clamp, the largest floats and tiny ones. Relative error <= 1e-6 where the result is a
// normal float; below that (sigmoid/swish of x < -80) the result must still be below 1e-30 in magnitude (swish of
// -3.4e38 once gave -6e3: x times the clamped sigmoid); NaN stays NaN.
void activation_accuracy() {
  std::vector<float> x;
  for (int i = -200000; i <= 200000; ++i) x.push_back(float(i) * 5e-4f + 1e-5f * float(i % 7));
  const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 79.99f, 80.0f, 80.01f, 88.7f, 1e30f, 3.4e38f,
                           -79.99f, -80.0f, -80.01f, -88.7f, -1e30f, -3.4e38f, 0.34657f, -0.34657f, 0.5f, -0.5f,
                           std::nanf("")};
  for (float v : special) x.push_back(v);
  while (x.size() % 48 != 0) x.push_back(1.0f);
  for (Activation act : {Activation::swish, Activation::sigmoid}) {
    for (Isa isa : supported_isas()) {
      const std::vector<float> y = activated(isa, x, 48, act);
      double worst = 0;
      bool tiny_ok = true, nan_ok = true;
      for (size_t i = 0; i < x.size(); ++i) {
        if (std::isnan(x[i])) {
          nan_ok = nan_ok && std::isnan(y[i]);
          continue;
        }
        const double sig = 1.0 / (1.0 + std::exp(-double(x[i])));
        const double want = act == Activation::swish ? double(x[i]) * sig : sig;
        if (std::fabs(want) < 1e-30) {
          tiny_ok = tiny_ok && std::fabs(double(y[i])) < 1e-30;
          continue;
        }
        worst = std::max(worst, std::fabs(double(y[i]) - want) / std::fabs(want));
      }
      CHECK(tiny_ok);
      CHECK(nan_ok);
      CHECK_NEAR(worst, 0.0, 1e-6);
      // the interleaved form (activate_n) gives activate()'s bits: the same operations per element
      const std::vector<float> one_by_one = activated(isa, x, 48, act, true);
      bool same_bits = true;
      for (size_t i = 0; i < x.size(); ++i)
        same_bits = same_bits && (std::memcmp(&y[i], &one_by_one[i], sizeof(float)) == 0 ||
                                  (std::isnan(y[i]) && std::isnan(one_by_one[i])));
      CHECK(same_bits);
      if (worst > 1e-6 || !tiny_ok || !nan_ok)
        std::fprintf(stderr, "  isa=%s %s: worst relative error %g\n", isa_name(isa),
                     act == Activation::swish ? "swish" : "sigmoid", worst);
    }
  }
}

// ReLU as torch.relu on every ISA and the scalar reference: +0 for negatives, x otherwise, so a NaN stays NaN (x86's
// max with the 0 second returned the 0 for a NaN). HardSwish keeps a NaN too (x times relu6(x + 3) / 6). A 1x1x1
// depthwise conv of weight 1 and no bias passes the values through (but for -0: 0 + -0 is +0).
void relu_like_torch() {
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  std::vector<float> x;
  for (int i = 0; i < 40; ++i) x.push_back(float(i - 20) * 0.37f);
  for (float v : {nan, 0.0f, inf, -inf, -1e-40f, 1e-40f, -3.4e38f}) x.push_back(v);
  while (x.size() % 24 != 0) x.push_back(nan);
  for (Activation act : {Activation::relu, Activation::hswish}) {
    for (Isa isa : supported_isas()) {
      const std::vector<float> y = activated(isa, x, 24, act);
      bool ok = true;
      for (size_t i = 0; i < x.size(); ++i) {
        if (std::isnan(x[i])) {
          ok = ok && std::isnan(y[i]);
        } else if (act == Activation::relu) {
          const float want = x[i] < 0.0f ? 0.0f : x[i];
          ok = ok && y[i] == want && std::signbit(y[i]) == std::signbit(want);
        }
      }
      CHECK(ok);
      if (!ok) std::fprintf(stderr, "  isa=%s %s: a NaN not kept, or a negative not +0\n", isa_name(isa),
                            act == Activation::relu ? "relu" : "hswish");
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  std::printf("supported ISA levels:");
  for (Isa isa : supported_isas()) std::printf(" %s", isa_name(isa));
  std::printf("\n");
  activation_accuracy();
  relu_like_torch();

  // A hand-checkable case: all-ones 1x1x3x3x1 input, all-ones 3x3x3 kernel, padding 1: the centre output sums
  // the 9 in-plane taps (T=1 so only kt=1 lands), a corner sums 4.
  {
    DwConv3dShape s;
    s.batch = 1; s.channels = 1; s.in_t = 1; s.in_h = 3; s.in_w = 3;
    s.kernel_t = s.kernel_h = s.kernel_w = 3;
    s.pad_t = s.pad_h = s.pad_w = 1;
    std::vector<float> x(9, 1.0f), w(27, 1.0f), y(9, 0.0f);
    dwconv3d_f32_scalar(s, x.data(), w.data(), Epilogue{}, y.data(), 0, s.rows());
    CHECK_NEAR(y[4], 9.0, 0);
    CHECK_NEAR(y[0], 4.0, 0);
    CHECK_NEAR(y[1], 6.0, 0);
  }

  const int kernels[][3] = {{3, 3, 3}, {5, 1, 1}, {1, 3, 3}, {3, 1, 1}, {1, 5, 5}, {2, 2, 2}, {1, 1, 1}};
  const int channels[] = {1, 3, 8, 16, 17, 24, 54};
  const int sizes[][3] = {{1, 1, 1}, {4, 7, 9}, {3, 5, 13}, {2, 11, 6}};
  int cases = 0;
  for (auto& k : kernels)
    for (int c : channels)
      for (auto& sz : sizes)
        for (int stride_mix = 0; stride_mix < 3; ++stride_mix) {
          DwConv3dShape s;
          s.batch = 1 + (cases % 2);
          s.channels = c;
          s.in_t = sz[0]; s.in_h = sz[1]; s.in_w = sz[2];
          s.kernel_t = k[0]; s.kernel_h = k[1]; s.kernel_w = k[2];
          s.stride_t = stride_mix == 2 ? 2 : 1;
          s.stride_h = s.stride_w = stride_mix >= 1 ? 2 : 1;
          s.pad_t = k[0] / 2; s.pad_h = k[1] / 2; s.pad_w = k[2] / 2;
          if (cases % 3 == 0) s.pad_w = 0;  // asymmetric padding mixes
          if (cases % 7 == 0) s.pad_h = s.kernel_h;  // padding as wide as the kernel: some rows see only padding
          if (s.in_t + 2 * s.pad_t < s.kernel_t || s.in_h + 2 * s.pad_h < s.kernel_h || s.in_w + 2 * s.pad_w < s.kernel_w)
            continue;
          compare(s, cases % 4 != 0, rng);
          ++cases;
        }
  // X3D-sized rows: wide enough for the widest column blocks (16 on AVX-512, 8 on AVX2), channel counts that span
  // several channel-block groups with a tail, both strides, and a 5-wide kernel.
  const int64_t wide[][6] = {  // C, T, H, W, kernel (cubic), stride (H and W)
      {54, 4, 6, 40, 3, 1}, {54, 4, 7, 41, 3, 2}, {128, 3, 5, 37, 3, 1}, {216, 2, 4, 20, 3, 2},
      {432, 2, 5, 10, 3, 1}, {136, 2, 3, 34, 5, 1}, {24, 5, 4, 80, 3, 2},
      {54, 13, 3, 21, 3, 1}, {108, 13, 4, 9, 3, 2}};  // 13 frames (X3D-S): more planes than one group of rows
  int wide_cases = 0;
  for (const auto& w : wide) {
    DwConv3dShape s;
    s.batch = 1 + wide_cases++ % 2;
    s.channels = w[0];
    s.in_t = w[1]; s.in_h = w[2]; s.in_w = w[3];
    s.kernel_t = s.kernel_h = s.kernel_w = w[4];
    s.pad_t = s.pad_h = s.pad_w = w[4] / 2;
    s.stride_h = s.stride_w = w[5];
    compare(s, true, rng);
    ++cases;
  }
  std::printf("compared %d shapes\n", cases);
  CHECK(cases > 300);

  // The fused epilogue's definitions by hand: bias 0.5 + residual 1 on the centre output 9 -> 10.5 -> activation.
  {
    DwConv3dShape s;
    s.batch = 1; s.channels = 1; s.in_t = 1; s.in_h = 3; s.in_w = 3;
    s.kernel_t = s.kernel_h = s.kernel_w = 3;
    s.pad_t = s.pad_h = s.pad_w = 1;
    std::vector<float> x(9, 1.0f), w(27, 1.0f), y(9, 0.0f), res(9, 1.0f);
    const float bias = -10.5f;  // centre: 9 - 10.5 + 1 = -0.5
    Epilogue ep;
    ep.bias = &bias;
    ep.residual = res.data();
    for (Activation act : {Activation::relu, Activation::swish, Activation::hswish, Activation::sigmoid}) {
      ep.activation = act;
      for (Isa isa : supported_isas()) {
        variant(isa)(s, x.data(), w.data(), ep, y.data(), 0, s.rows());
        const double v = -0.5;
        const double want = act == Activation::relu ? 0.0
                          : act == Activation::swish ? v / (1 + std::exp(-v))
                          : act == Activation::hswish ? v * (v + 3) / 6
                                                      : 1 / (1 + std::exp(-v));
        CHECK_NEAR(y[4], want, 1e-6);
      }
    }
  }

  // Validation rejects impossible shapes.
  DwConv3dShape bad;
  bad.batch = 1; bad.channels = 4; bad.in_t = 2; bad.in_h = 2; bad.in_w = 2;
  bad.kernel_t = bad.kernel_h = bad.kernel_w = 5;
  CHECK_THROWS(bad.validate(), std::invalid_argument);
  bad.kernel_t = bad.kernel_h = bad.kernel_w = 1;
  bad.stride_h = 0;
  CHECK_THROWS(bad.validate(), std::invalid_argument);
  return check::finish("test_kernels_dwconv3d");
}
