// Every compiled dense-conv3d variant the CPU supports equals the scalar reference over many shapes: pointwise GEMMs
// with vector-tail channel counts and X3D's widths (every channel-block split), column counts that leave partial
// register tiles, X3D's temporal 3x1x1 / 5x1x1, spatial 1x3x3 stem and full 3x3x3 kernels, odd sizes, strides,
// padding wider than the kernel (border columns with any number of in-range taps, or none), every activation, with
// and without bias and residual, and work split into item ranges that cut output rows. The scalar reference itself
// is checked by hand on small cases. Every other pointwise case also transforms its input by a per-sample channel
// scale and activation (Epilogue::input_scale, the fused squeeze-excitation), with samples whose rows end inside a
// block of columns; the scalar reference's transform equals running it on an input transformed beforehand. Ranges
// of output channels computed alone (Conv3dShape::out_stride) equal the whole layer's; a flattened pointwise conv's
// items may be any number of columns wide (Conv3dShape::item_w). Layers with weights over 1 MB
// take the blocked loop nest, checked the same ways.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/cpu/conv3d/conv3d.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/dispatch.h"

using namespace pyvideo::kernels;

namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

Conv3dF32Fn variant(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::avx2: return conv3d_f32_avx2;
    case Isa::avx512: return conv3d_f32_avx512;
#endif
#if defined(__aarch64__)
    case Isa::neon: return conv3d_f32_neon;
#endif
    default: return conv3d_f32_scalar;
  }
}

size_t output_size(const Conv3dShape& s) { return size_t(s.rows() * s.out_w() * s.out_channels); }

int compare(const Conv3dShape& s, int variant_index, std::mt19937& rng) {
  const Activation acts[] = {Activation::identity, Activation::relu, Activation::swish, Activation::hswish,
                             Activation::sigmoid};
  const size_t out_n = output_size(s);
  const auto x = random_vector(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.in_channels), rng);
  const auto w = random_vector(size_t(s.kernel_t * s.kernel_h * s.kernel_w * s.in_channels * s.out_channels), rng);
  const auto b = random_vector(size_t(s.out_channels), rng);
  const auto residual = random_vector(out_n, rng);
  const std::vector<float> zeros(size_t(s.in_channels), 0.0f);
  Epilogue ep;
  ep.bias = variant_index % 4 != 0 ? b.data() : nullptr;
  ep.residual = variant_index % 3 == 1 ? residual.data() : nullptr;
  ep.activation = acts[variant_index % 5];
  const int64_t positions = s.in_t * s.in_h * s.in_w;
  std::vector<float> scale = random_vector(size_t(s.batch * s.in_channels), rng);
  for (float& v : scale) v *= 3.0f;  // gates are in (0, 1); larger and negative values exercise the activations more
  InputScale input_scale{scale.data(), positions, acts[variant_index / 2 % 5]};
  if (s.is_pointwise() && variant_index % 2 == 1) ep.input_scale = &input_scale;
  std::vector<float> ref(out_n, -7.0f);
  conv3d_f32_scalar(s, x.data(), w.data(), ep, zeros.data(), ref.data(), 0, s.items());
  int failures = 0;
  if (ep.input_scale) {  // the reference's transform is the plain conv of act(x * scale)
    std::vector<float> transformed(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const int64_t sample = int64_t(i) / s.in_channels / positions, k = int64_t(i) % s.in_channels;
      transformed[i] = activate_scalar(x[i] * scale[size_t(sample * s.in_channels + k)], input_scale.activation);
    }
    Epilogue plain = ep;
    plain.input_scale = nullptr;
    std::vector<float> want(out_n);
    conv3d_f32_scalar(s, transformed.data(), w.data(), plain, zeros.data(), want.data(), 0, s.items());
    CHECK(want == ref);
  }
  // Float rounding of the reference's sequential sums grows with the reduction length (K = taps x C_in): 2e-5 up to
  // K = 500 (every X3D layer), then with sqrt(K) (2.1e-5 was measured at K = 1440, the same on AVX2 and AVX-512).
  const double k_total = double(s.kernel_t * s.kernel_h * s.kernel_w * s.in_channels);
  const double tolerance = 2e-5 * std::max(1.0, std::sqrt(k_total / 500.0));
  for (Isa isa : supported_isas()) {
    if (isa == Isa::scalar) continue;
    // The shape, its flattened form (one row of N*T*H*W columns for a pointwise conv), and for a pointwise conv the
    // flattened row in items of other widths (Conv3dShape::item_w: csrc/core/ops.cpp's equal shares for the threads):
    // 5 and 37 columns, and 100, wider than tile_w (the fp32 kernels take any width).
    std::vector<Conv3dShape> works{s, s.flatten_pointwise()};
    if (s.is_pointwise())
      for (int64_t width : {5, 37, 100}) {
        works.push_back(s.flatten_pointwise());
        works.back().item_w = width;
      }
    std::vector<float> first_work;  // every work's outputs, bit for bit (the same chain of FMAs per output)
    for (const Conv3dShape& work : works) {
      std::vector<float> combined(out_n);
      // Three item ranges, as three threads would take them: the cuts fall anywhere, also inside an output row. Each
      // range runs alone on a buffer of guard values: it must write exactly the outputs of its own items.
      const int64_t items = work.items(), blocks = work.column_blocks(), Wo = work.out_w(), Co = work.out_channels;
      const int64_t cuts[4] = {0, items / 3, std::max(items / 3, items - items / 4), items};
      double max_err = 0;
      bool guard_ok = true;
      for (int part = 0; part < 3; ++part) {
        std::vector<float> got(out_n + 40, 12345.0f);  // guard values also catch writes past the end
        std::vector<bool> mine(got.size(), false);
        for (int64_t item = cuts[part]; item < cuts[part + 1]; ++item) {
          const int64_t row = item / blocks, ow0 = item % blocks * work.item_width();
          for (int64_t ow = ow0; ow < std::min(Wo, ow0 + work.item_width()); ++ow)
            for (int64_t c = 0; c < Co; ++c) mine[size_t((row * Wo + ow) * Co + c)] = true;
        }
        variant(isa)(work, x.data(), w.data(), ep, zeros.data(), got.data(), cuts[part], cuts[part + 1]);
        for (size_t i = 0; i < got.size(); ++i) {
          if (mine[i]) {
            max_err = std::max(max_err, double(std::fabs(got[i] - ref[i])) / (1.0 + std::fabs(ref[i])));
            combined[i] = got[i];
          } else {
            guard_ok = guard_ok && got[i] == 12345.0f;
          }
        }
      }
      CHECK(guard_ok);
      CHECK_NEAR(max_err, 0.0, tolerance);
      if (first_work.empty()) first_work = combined;
      const bool same_bits = std::memcmp(first_work.data(), combined.data(), out_n * sizeof(float)) == 0;
      CHECK(same_bits);
      if (max_err > tolerance || !guard_ok || !same_bits) {
        ++failures;
        std::fprintf(stderr, "  isa=%s Ci=%ld Co=%ld N=%ld T=%ld H=%ld W=%ld k=%ldx%ldx%ld s=%ldx%ldx%ld p=%ldx%ldx%ld\n",
                     isa_name(isa), long(s.in_channels), long(s.out_channels), long(s.batch), long(s.in_t),
                     long(s.in_h), long(s.in_w), long(s.kernel_t), long(s.kernel_h), long(s.kernel_w),
                     long(s.stride_t), long(s.stride_h), long(s.stride_w), long(s.pad_t), long(s.pad_h), long(s.pad_w));
      }
    }
  }
  return failures;
}

// A range [c0, c1) of a layer's output channels computed alone (out_stride = C_out, pointers offset to c0, as
// csrc/core/ops.cpp splits a GEMV across threads) equals those channels of the whole layer computed by the same
// variant bit for bit, and writes nothing outside them. Ranges cut at vector multiples and anywhere else.
int compare_channel_ranges(const Conv3dShape& s, bool gated, std::mt19937& rng) {
  const int64_t Co = s.out_channels, out_n = int64_t(output_size(s));
  const auto x = random_vector(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.in_channels), rng);
  const auto w = random_vector(size_t(s.kernel_t * s.kernel_h * s.kernel_w * s.in_channels * Co), rng);
  const auto b = random_vector(size_t(Co), rng);
  const auto residual = random_vector(size_t(out_n), rng);
  const auto scale = random_vector(size_t(s.batch * s.in_channels), rng);
  const std::vector<float> zeros(size_t(s.in_channels), 0.0f);
  InputScale input_scale{scale.data(), s.in_t * s.in_h * s.in_w, Activation::swish};
  Epilogue ep;
  ep.bias = b.data();
  ep.residual = residual.data();
  ep.activation = Activation::swish;
  if (gated) ep.input_scale = &input_scale;
  int failures = 0;
  for (Isa isa : supported_isas()) {
    std::vector<float> whole(static_cast<size_t>(out_n));
    variant(isa)(s, x.data(), w.data(), ep, zeros.data(), whole.data(), 0, s.items());
    const int64_t cuts[] = {0, 5, 16, 48, Co};
    for (int r = 0; r + 1 < int(sizeof(cuts) / sizeof(cuts[0])); ++r) {
      const int64_t c0 = std::min(cuts[r], Co), c1 = std::min(cuts[r + 1], Co);
      if (c0 >= c1) continue;
      Conv3dShape part = s;
      part.out_channels = c1 - c0;
      part.out_stride = Co;
      part.validate();
      Epilogue pe = ep;
      pe.bias += c0;
      pe.residual += c0;
      std::vector<float> got(size_t(out_n) + 40, 12345.0f);
      variant(isa)(part, x.data(), w.data() + c0, pe, zeros.data(), got.data() + c0, 0, part.items());
      bool same = true, guard_ok = true;
      for (int64_t i = 0; i < int64_t(got.size()); ++i) {
        const int64_t c = i % Co;
        if (i < out_n && c >= c0 && c < c1)
          same = same && got[size_t(i)] == whole[size_t(i)];
        else
          guard_ok = guard_ok && got[size_t(i)] == 12345.0f;
      }
      CHECK(same);
      CHECK(guard_ok);
      if (!same || !guard_ok) {
        ++failures;
        std::fprintf(stderr, "  channel range [%ld, %ld) isa=%s Ci=%ld Co=%ld gated=%d\n", long(c0), long(c1),
                     isa_name(isa), long(s.in_channels), long(Co), int(gated));
      }
    }
  }
  return failures;
}

Conv3dShape make_shape(int ci, int co, const int size[3], const int k[3], const int stride[3], const int pad[3], int n) {
  Conv3dShape s;
  s.batch = n; s.in_channels = ci; s.out_channels = co;
  s.in_t = size[0]; s.in_h = size[1]; s.in_w = size[2];
  s.kernel_t = k[0]; s.kernel_h = k[1]; s.kernel_w = k[2];
  s.stride_t = stride[0]; s.stride_h = stride[1]; s.stride_w = stride[2];
  s.pad_t = pad[0]; s.pad_h = pad[1]; s.pad_w = pad[2];
  return s;
}

// A NaN in the input reaches every output it feeds, through ReLU too (applied in registers by the SIMD tiles, where
// x86's max with the 0 second returned the 0), as torch's conv + relu gives: a pointwise conv (full and partial
// register tiles, a masked channel tail) and a padded 1x3x3 conv, on every ISA and the scalar reference. The other
// outputs equal the run without the NaN.
void nan_reaches_outputs() {
  struct Case { int ci, co; int size[3]; int k[3]; int pad[3]; };
  const Case cases[] = {{24, 54, {1, 3, 13}, {1, 1, 1}, {0, 0, 0}}, {3, 24, {1, 6, 9}, {1, 3, 3}, {0, 1, 1}},
                        {16, 8, {2, 2, 5}, {1, 1, 1}, {0, 0, 0}}};
  std::mt19937 rng(77);
  const int one[3] = {1, 1, 1};
  for (const Case& c : cases) {
    const Conv3dShape s = make_shape(c.ci, c.co, c.size, c.k, one, c.pad, 1);
    auto x = random_vector(size_t(s.in_t * s.in_h * s.in_w * s.in_channels), rng);
    const auto w = random_vector(size_t(s.kernel_t * s.kernel_h * s.kernel_w * s.in_channels * s.out_channels), rng);
    const auto b = random_vector(size_t(s.out_channels), rng);
    const std::vector<float> zeros(size_t(s.in_channels), 0.0f);
    const int64_t bad_position = s.in_h * s.in_w / 2 + 1;  // (t 0, an inner row and column)
    for (Activation act : {Activation::relu, Activation::identity, Activation::hswish}) {
      Epilogue ep;
      ep.bias = b.data();
      ep.activation = act;
      for (Isa isa : supported_isas()) {
        std::vector<float> clean(output_size(s)), y(output_size(s));
        variant(isa)(s, x.data(), w.data(), ep, zeros.data(), clean.data(), 0, s.items());
        std::vector<float> xn = x;
        xn[size_t(bad_position * s.in_channels + 1)] = std::nanf("");
        variant(isa)(s, xn.data(), w.data(), ep, zeros.data(), y.data(), 0, s.items());
        bool ok = true;
        int64_t nans = 0;
        const int64_t oh0 = bad_position / s.in_w, ow0 = bad_position % s.in_w;
        for (int64_t oh = 0; oh < s.out_h(); ++oh)
          for (int64_t ow = 0; ow < s.out_w(); ++ow) {
            // output (oh, ow) reads input rows oh - pad .. oh - pad + k - 1 (stride 1)
            const bool reads = oh0 >= oh - c.pad[1] && oh0 < oh - c.pad[1] + c.k[1] && ow0 >= ow - c.pad[2] &&
                               ow0 < ow - c.pad[2] + c.k[2];
            for (int64_t co = 0; co < s.out_channels; ++co) {
              const size_t o = size_t((oh * s.out_w() + ow) * s.out_channels + co);
              if (reads) {
                ok = ok && std::isnan(y[o]);
                ++nans;
              } else {
                ok = ok && y[o] == clean[o];
              }
            }
          }
        CHECK(ok && nans > 0);
        if (!ok) std::fprintf(stderr, "  isa=%s %d->%d act %d: a NaN lost or another output changed\n", isa_name(isa),
                              c.ci, c.co, int(act));
      }
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(4321);
  nan_reaches_outputs();

  // Hand-checked reference: 1x1x1 conv of x = [1, 2] (two columns, one input channel) with weights [3, -1] into two
  // output channels, bias [0.5, 0]: outputs (3.5, -1), (6.5, -2); relu zeroes the negatives.
  {
    const int size[3] = {1, 1, 2}, k[3] = {1, 1, 1}, one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
    const Conv3dShape s = make_shape(1, 2, size, k, one, zero, 1);
    const float x[2] = {1, 2}, w[2] = {3, -1}, b[2] = {0.5f, 0}, zeros[1] = {0};
    float y[4];
    Epilogue ep;
    ep.bias = b;
    ep.activation = Activation::relu;
    conv3d_f32_scalar(s, x, w, ep, zeros, y, 0, s.items());
    CHECK_NEAR(y[0], 3.5, 0); CHECK_NEAR(y[1], 0, 0); CHECK_NEAR(y[2], 6.5, 0); CHECK_NEAR(y[3], 0, 0);
  }
  // 1x3x3 all-ones kernel over an all-ones 1x1x3x3 input with padding 1 counts the in-bounds taps.
  {
    const int size[3] = {1, 3, 3}, k[3] = {1, 3, 3}, one[3] = {1, 1, 1}, pad[3] = {0, 1, 1};
    const Conv3dShape s = make_shape(1, 1, size, k, one, pad, 1);
    const std::vector<float> x(9, 1.0f), w(9, 1.0f), zeros(1, 0.0f);
    std::vector<float> y(9);
    conv3d_f32_scalar(s, x.data(), w.data(), Epilogue{}, zeros.data(), y.data(), 0, s.items());
    CHECK_NEAR(y[0], 4, 0); CHECK_NEAR(y[1], 6, 0); CHECK_NEAR(y[4], 9, 0);
  }

  struct Case { int ci, co; int size[3]; int k[3]; int stride[3]; int pad[3]; int n; };
  const Case cases[] = {
      {24, 54, {2, 5, 7}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},     // pointwise, X3D widths
      {54, 24, {1, 3, 70}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 2},    // pointwise, > one column tile
      {17, 33, {3, 4, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},     // odd channel counts
      {1, 1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {16, 64, {1, 2, 9}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},     // full vector tiles
      {12, 9, {3, 6, 6}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}, 1},      // strided 1x1x1 (a projection shortcut)
      {3, 24, {2, 9, 11}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, 1},     // X3D stem spatial conv, Cin = 3
      {3, 24, {1, 8, 8}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 2},
      {24, 24, {5, 3, 4}, {5, 1, 1}, {1, 1, 1}, {2, 0, 0}, 1},     // X3D stem temporal conv
      {9, 13, {4, 3, 3}, {3, 1, 1}, {2, 1, 1}, {1, 0, 0}, 1},
      {5, 7, {3, 5, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 1},       // full 3x3x3
      {8, 20, {4, 7, 9}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, 1},
      {6, 5, {2, 4, 4}, {1, 1, 1}, {1, 1, 1}, {0, 1, 2}, 1},       // padding wider than the kernel
      {4, 40, {2, 2, 3}, {2, 2, 2}, {1, 1, 1}, {1, 2, 1}, 1},
      {20, 3, {1, 5, 67}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 1},     // wide rows, tiny C_out
      // X3D's pointwise widths: channel blocks of 4 + 3 vectors (108), 3 + 3 (96), 4 x 6 + 3 (432), tails
      {24, 108, {1, 3, 23}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {48, 96, {2, 2, 13}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {9, 432, {1, 1, 11}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {54, 216, {1, 2, 7}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {30, 130, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},    // a single column (the head's GEMV)
      // single columns in blocks of up to 28 vectors (14 on AVX2): 448 = exactly 28 AVX-512 vectors; 470 = 15 + 15
      // with a tail (AVX2 12 x 4 + 11, NEON 24 x 4 + 22), over three K parts; 2 samples of one column each
      {40, 448, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {300, 470, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 2},
      {7, 455, {1, 3, 3}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 1},     // padded 3x3: border columns one at a time
      {432, 24, {1, 5, 11}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 2},   // K parts, 24-row blocks, samples of 55 rows
      {216, 48, {2, 3, 9}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 3},
      {24, 54, {1, 3, 161}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}, 1},   // strided projection, rows of > 64 columns
      {3, 24, {2, 10, 161}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, 1},   // stem with > 64 output columns per row
      {3, 54, {1, 6, 19}, {1, 3, 5}, {1, 1, 2}, {0, 2, 3}, 2},     // wide padded window: several border columns
      {5, 20, {1, 4, 9}, {1, 1, 5}, {1, 1, 1}, {0, 0, 4}, 1},      // kw range of 1..5 taps at the borders
      {4, 17, {2, 3, 6}, {1, 2, 3}, {1, 1, 3}, {0, 1, 5}, 1},      // columns entirely in the padding
      // Long rows of pointwise columns in chunks (280 columns: 120 + 120 + 40, two K parts, a channel tail), and C_out a
      // multiple of 512 (weight rows 2 or 4 KB apart), whose long rows read a padded copy of the weights: three
      // chunks; two K parts; 4 KB rows; a strided projection with four rows of 100 columns (one copy for all)
      {150, 101, {2, 7, 20}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {40, 512, {1, 2, 60}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {129, 512, {1, 1, 96}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {20, 1024, {1, 2, 48}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {16, 512, {2, 4, 200}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}, 1},
  };
  // Weights over 1 MB: the blocked loop nest (Conv3dShape::blocked_reduction), ResNet-like res4 / res5 layers at toy
  // sizes (multi-tap and strided one-tap): parts of the input channels (160 = 2 x 80, 300 = 3 x 100), strides, T / H / W padding, rows of more than
  // 64 columns (item ranges cut inside rows), columns entirely in the padding, channel tails.
  const Case blocked_cases[] = {
      {160, 200, {2, 5, 9}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 1},
      {160, 200, {3, 6, 7}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, 2},
      {300, 300, {4, 3, 5}, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 1},
      {96, 130, {3, 4, 6}, {3, 3, 3}, {2, 2, 2}, {1, 2, 1}, 1},
      {64, 480, {1, 2, 70}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 1},
      {70, 700, {1, 2, 8}, {1, 2, 3}, {1, 1, 3}, {0, 1, 5}, 1},
      {300, 900, {2, 5, 6}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}, 1},  // a strided shortcut projection (one tap)
  };
  int count = 0, failures = 0;
  for (const Case& c : cases)
    for (int v = 0; v < 5; ++v) failures += compare(make_shape(c.ci, c.co, c.size, c.k, c.stride, c.pad, c.n), count++, rng);
  for (const Case& c : blocked_cases) {
    const Conv3dShape s = make_shape(c.ci, c.co, c.size, c.k, c.stride, c.pad, c.n);
    CHECK(s.blocked_reduction());
    for (int v = 0; v < 5; ++v) failures += compare(s, count++, rng);
  }
  // The blocked nest's threshold follows the L2 (within 256 KB - 1 MB; 1 MB when unknown), and /sys's size texts parse.
  CHECK(blocked_weight_bytes(0) == int64_t(1) << 20);
  CHECK(blocked_weight_bytes(512 << 10) == int64_t(512) << 10);
  CHECK(blocked_weight_bytes(64 << 10) == int64_t(256) << 10);
  CHECK(blocked_weight_bytes(int64_t(32) << 20) == int64_t(1) << 20);
  CHECK(parse_cache_size("512K") == 512 << 10);
  CHECK(parse_cache_size("2M") == 2 << 20);
  CHECK(parse_cache_size("16384") == 16384);
  CHECK(parse_cache_size("") == 0 && parse_cache_size("K") == 0 && parse_cache_size("12Q") == 0);
  std::printf("L2 %lld bytes: multi-tap layers over %lld bytes of weights are blocked\n", l2_cache_bytes(),
              (long long)blocked_weight_bytes(l2_cache_bytes()));
  {  // 590 KB of weights (Slow-R50's res3 1x3x3 at a toy size): blocked on a 512 KB L2, row by row on 1 MB and more;
     // either way it equals the reference
    const int size[3] = {2, 5, 7}, k[3] = {1, 3, 3}, one[3] = {1, 1, 1}, pad[3] = {0, 1, 1};
    const Conv3dShape s = make_shape(128, 128, size, k, one, pad, 1);
    CHECK(s.blocked_reduction() == (9 * 128 * 128 * 4 > blocked_weight_bytes(l2_cache_bytes())));
    for (int v = 0; v < 2; ++v) failures += compare(s, count++, rng);
  }
  for (const Case& c : cases)  // X3D-sized layers keep the row-at-a-time loop nest
    CHECK(!make_shape(c.ci, c.co, c.size, c.k, c.stride, c.pad, c.n).blocked_reduction());
  {  // so do stride-1 pointwise layers of any size (flattened into one row of columns, K-blocked there)
    const int size[3] = {1, 2, 3}, k[3] = {1, 1, 1}, one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
    CHECK(!make_shape(2048, 512, size, k, one, zero, 1).blocked_reduction());
  }
  // A sweep of output-channel tails (1 to 6 AVX-512 vectors) and column counts (full and partial tiles of every size)
  // for the GEMM path.
  for (int co = 1; co <= 97; co += 4)
    for (int w = 1; w <= 19; w += 3) {
      const int size[3] = {1, 1, w}, k[3] = {1, 1, 1}, one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
      failures += compare(make_shape(1 + co % 7, co, size, k, one, zero, 1), count++, rng);
    }
  std::printf("compared %d shapes, %d failing\n", count, failures);
  CHECK(count > 250);

  // Channel ranges: the head's GEMV (one column, K parts), a pointwise GEMM with a fused gate, X3D's stem and a padded
  // 3x3x3 conv (border columns), each with every activation path's epilogue (bias, residual, swish).
  {
    const int one[3] = {1, 1, 1}, zero[3] = {0, 0, 0}, k1[3] = {1, 1, 1}, k3[3] = {3, 3, 3}, kxy[3] = {1, 3, 3};
    const int gemv[3] = {1, 1, 1}, cols[3] = {2, 3, 11}, stem[3] = {2, 9, 11}, cube[3] = {3, 5, 6};
    const int s122[3] = {1, 2, 2}, pxy[3] = {0, 1, 1};
    int range_failures = 0;
    range_failures += compare_channel_ranges(make_shape(300, 70, gemv, k1, one, zero, 1), false, rng);
    range_failures += compare_channel_ranges(make_shape(300, 70, gemv, k1, one, zero, 2), true, rng);
    range_failures += compare_channel_ranges(make_shape(54, 61, cols, k1, one, zero, 2), true, rng);
    const int long_row[3] = {1, 2, 60};  // one row of 120 columns: chunks, and the padded weight copy (out_stride 512)
    range_failures += compare_channel_ranges(make_shape(40, 512, long_row, k1, one, zero, 1).flatten_pointwise(), false,
                                             rng);
    range_failures += compare_channel_ranges(make_shape(3, 24, stem, kxy, s122, pxy, 1), false, rng);
    range_failures += compare_channel_ranges(make_shape(5, 40, cube, k3, one, one, 1), false, rng);
    const int big[3] = {2, 3, 5};  // blocked: the ranges decide by the whole layer's width, as the layer does
    range_failures += compare_channel_ranges(make_shape(150, 200, big, kxy, one, pxy, 1), false, rng);
    CHECK(make_shape(150, 200, big, kxy, one, pxy, 1).blocked_reduction());
    std::printf("channel ranges: %d failing\n", range_failures);
    Conv3dShape narrow = make_shape(3, 24, gemv, k1, one, zero, 1);
    narrow.out_stride = 23;  // narrower than the range it would hold
    CHECK_THROWS(narrow.validate(), std::invalid_argument);
    narrow.out_stride = 0;
    narrow.item_w = -1;
    CHECK_THROWS(narrow.validate(), std::invalid_argument);
  }

  const int size[3] = {2, 2, 2}, k[3] = {5, 5, 5}, one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
  CHECK_THROWS(make_shape(3, 3, size, k, one, zero, 1).validate(), std::invalid_argument);
  const int k1[3] = {1, 1, 1};
  CHECK_THROWS(make_shape(0, 3, size, k1, one, zero, 1).validate(), std::invalid_argument);
  return check::finish("test_kernels_conv3d");
}
