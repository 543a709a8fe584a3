// The dense conv3d "rows" entry points (output rows [row_begin, row_end) into a buffer that holds only those rows, as
// the runtime's conv -> depthwise fusion uses them) equal the item-range entry point of the same ISA bit for bit, over
// many shapes: pointwise, X3D's 1x3x3 stride-2 stem, 3x3x3, strided and uneven kernels, paddings, odd sizes, T = 1,
// batches of two, a residual (also relative to row_begin), every activation, and a pointwise conv with an input
// scale (the SE-fused form), and layers large enough for the blocked loop nest. Row ranges are cut anywhere; each writes into a guard-filled buffer of exactly its rows
// (plus the guard), which must be left untouched. Built for ARM64 too (the NEON entry under qemu).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/cpu/conv3d/conv3d.h"
#include "kernels/cpu/dispatch.h"

using namespace pyvideo::kernels;

namespace {

struct Variant {
  Conv3dF32Fn items;
  Conv3dF32RowsFn rows;
};

Variant variant(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::avx2: return {conv3d_f32_avx2, conv3d_f32_rows_avx2};
    case Isa::avx512: return {conv3d_f32_avx512, conv3d_f32_rows_avx512};
#endif
#if defined(__aarch64__)
    case Isa::neon: return {conv3d_f32_neon, conv3d_f32_rows_neon};
#endif
    default: return {conv3d_f32_scalar, conv3d_f32_rows_scalar};
  }
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct Geometry {
  int k[3], s[3], p[3];
};

int reported = 0;

}  // namespace

int main() {
  std::mt19937 rng(77);
  const Geometry geometries[] = {
      {{1, 1, 1}, {1, 1, 1}, {0, 0, 0}}, {{1, 3, 3}, {1, 2, 2}, {0, 1, 1}}, {{3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
      {{1, 1, 1}, {1, 2, 2}, {0, 0, 0}}, {{2, 1, 3}, {2, 1, 1}, {1, 0, 1}}, {{3, 5, 5}, {1, 2, 1}, {0, 2, 3}}};
  const int64_t sizes[][4] = {{1, 4, 9, 11}, {2, 3, 7, 6}, {1, 1, 5, 5}, {2, 2, 12, 70}};
  const Activation acts[] = {Activation::identity, Activation::relu, Activation::swish, Activation::hswish,
                             Activation::sigmoid};
  const float guard = -12345.0f;
  int cases = 0;
  // One shape on one ISA: the item entry point's output, then row ranges of it through the rows entry point.
  auto compare_rows = [&](Isa isa, const Variant& fn, const Conv3dShape& s, bool scaled) {
    s.validate();
    const int64_t row_floats = s.out_w() * s.out_channels, rows = s.rows();
    const auto input = random_floats(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.in_channels), rng);
    const auto weight = random_floats(size_t(s.kernel_t * s.kernel_h * s.kernel_w * s.in_channels *
                                             s.out_channels), rng);
    const auto bias = random_floats(size_t(s.out_channels), rng);
    const auto residual = random_floats(size_t(rows * row_floats), rng);
    const auto scale = random_floats(size_t(s.batch * s.in_channels), rng);
    InputScale in_scale;
    in_scale.scale = scale.data();
    in_scale.positions = s.in_t * s.in_h * s.in_w;
    in_scale.activation = acts[(cases + 1) % 5];
    Epilogue ep;
    ep.bias = bias.data();
    ep.activation = acts[cases % 5];
    ep.residual = cases % 2 ? residual.data() : nullptr;
    ep.input_scale = scaled ? &in_scale : nullptr;
    const std::vector<float> zeros(size_t(s.in_channels), 0.0f);
    std::vector<float> want(size_t(rows * row_floats));
    fn.items(s, input.data(), weight.data(), ep, zeros.data(), want.data(), 0, s.items());
    // Ranges: every row alone, then random cuts.
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (int64_t r = 0; r < rows; ++r) ranges.push_back({r, r + 1});
    for (int i = 0; i < 6; ++i) {
      const int64_t a = int64_t(rng() % uint32_t(rows)), b = a + 1 + int64_t(rng() % uint32_t(rows - a));
      ranges.push_back({a, b});
    }
    ranges.push_back({0, rows});
    for (const auto& [a, b] : ranges) {
      const size_t count = size_t((b - a) * row_floats);
      std::vector<float> got(count + 64, guard);
      Epilogue part = ep;
      part.residual = ep.residual ? ep.residual + a * row_floats : nullptr;
      fn.rows(s, input.data(), weight.data(), part, got.data(), a, b);
      const bool same = std::memcmp(got.data(), want.data() + a * row_floats, count * sizeof(float)) == 0;
      const bool guarded = std::all_of(got.begin() + int64_t(count), got.end(), [&](float v) { return v == guard; });
      CHECK(same);
      CHECK(guarded);
      if ((!same || !guarded) && reported++ < 10)
        std::fprintf(stderr, "  isa=%s k=%ldx%ldx%ld s=%ldx%ldx%ld p=%ldx%ldx%ld size=%ldx%ldx%ldx%ld rows [%ld, %ld)\n",
                     isa_name(isa), long(s.kernel_t), long(s.kernel_h), long(s.kernel_w), long(s.stride_t),
                     long(s.stride_h), long(s.stride_w), long(s.pad_t), long(s.pad_h), long(s.pad_w), long(s.batch),
                     long(s.in_t), long(s.in_h), long(s.in_w), long(a), long(b));
    }
    ++cases;
  };
  for (Isa isa : supported_isas()) {
    const Variant fn = variant(isa);
    for (const Geometry& g : geometries)
      for (const auto& size : sizes)
        for (int scaled = 0; scaled < 2; ++scaled) {
          Conv3dShape s;
          s.batch = size[0], s.in_t = size[1], s.in_h = size[2], s.in_w = size[3];
          s.kernel_t = g.k[0], s.kernel_h = g.k[1], s.kernel_w = g.k[2];
          s.stride_t = g.s[0], s.stride_h = g.s[1], s.stride_w = g.s[2];
          s.pad_t = g.p[0], s.pad_h = g.p[1], s.pad_w = g.p[2];
          s.in_channels = cases % 2 ? 3 : 13;
          s.out_channels = cases % 3 == 0 ? 24 : cases % 3 == 1 ? 7 : 40;
          if (scaled && !s.is_pointwise()) continue;
          if (s.in_t + 2 * s.pad_t < s.kernel_t || s.in_h + 2 * s.pad_h < s.kernel_h ||
              s.in_w + 2 * s.pad_w < s.kernel_w)
            continue;
          compare_rows(isa, fn, s, scaled);
        }
    // Layers whose weights take the blocked loop nest (Conv3dShape::blocked_reduction: ResNet-sized 1x3x3 / 3x1x1):
    // rows of a ring must still equal the item entry point's bit for bit.
    for (const Geometry& g : {Geometry{{1, 3, 3}, {1, 2, 2}, {0, 1, 1}}, Geometry{{3, 1, 1}, {1, 1, 1}, {1, 0, 0}}}) {
      Conv3dShape s;
      s.batch = 2, s.in_t = 3, s.in_h = 5, s.in_w = 6;
      s.kernel_t = g.k[0], s.kernel_h = g.k[1], s.kernel_w = g.k[2];
      s.stride_t = g.s[0], s.stride_h = g.s[1], s.stride_w = g.s[2];
      s.pad_t = g.p[0], s.pad_h = g.p[1], s.pad_w = g.p[2];
      s.in_channels = 200, s.out_channels = g.k[0] == 3 ? 450 : 150;
      CHECK(s.blocked_reduction());
      compare_rows(isa, fn, s, false);
    }
  }
  std::printf("%d shapes compared\n", cases);
  return check::finish("test_kernels_conv3d_rows");
}
