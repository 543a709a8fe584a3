// The depthwise conv3d "lines" entry points (input through caller-provided row pointers, work split into output
// lines) equal the row-range entry point of the same ISA bit for bit, over many shapes: strides 1 and 2 in every
// dimension, paddings 0..kernel, odd sizes, T = 1, batches of two, residual, every activation, per-row channel sums.
// The input rows are handed over scattered: each row in its own allocation (in reverse order), so a kernel that
// computed addresses from the first row instead of using the pointers would read the wrong data, and AddressSanitizer
// would flag it. Line ranges are cut anywhere and each runs on guard-filled buffers: a range must write exactly the
// rows of its lines. The row sums must be the stored values summed column after column (the scalar reference's
// order), whatever the grouping of rows, so they too are equal between the two entry points.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/dwconv3d/dwconv3d.h"

using namespace pyvideo::kernels;

namespace {

struct Variant {
  DwConv3dF32Fn rows;
  DwConv3dF32LinesFn lines;
};

Variant variant(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::avx2: return {dwconv3d_f32_avx2, dwconv3d_f32_lines_avx2};
    case Isa::avx512: return {dwconv3d_f32_avx512, dwconv3d_f32_lines_avx512};
#endif
#if defined(__aarch64__)
    case Isa::neon: return {dwconv3d_f32_neon, dwconv3d_f32_lines_neon};
#endif
    default: return {dwconv3d_f32_scalar, dwconv3d_f32_lines_scalar};
  }
}

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

int failures_reported = 0;

void compare(const DwConv3dShape& s, int config, std::mt19937& rng) {
  const Activation acts[] = {Activation::identity, Activation::relu, Activation::swish, Activation::hswish,
                             Activation::sigmoid};
  const int64_t C = s.channels, Wo = s.out_w(), rows = s.rows(), lines = s.lines(), row_size = Wo * C;
  const int64_t in_rows = s.batch * s.in_t * s.in_h, in_row_size = s.in_w * C;
  const auto x = random_vector(size_t(in_rows * in_row_size), rng);
  const auto w = random_vector(size_t(s.kernel_t * s.kernel_h * s.kernel_w * C), rng);
  const auto b = random_vector(size_t(C), rng);
  const auto residual = random_vector(size_t(rows * row_size), rng);
  Epilogue ep;
  ep.bias = config % 4 == 3 ? nullptr : b.data();
  ep.activation = acts[config % 5];
  ep.residual = config % 3 == 1 ? residual.data() : nullptr;
  const bool sums = config % 2 == 0;

  // Every input row in its own allocation, allocated last row first.
  std::vector<std::unique_ptr<float[]>> storage(static_cast<size_t>(in_rows));
  std::vector<const float*> row_ptrs(static_cast<size_t>(in_rows));
  for (int64_t r = in_rows - 1; r >= 0; --r) {
    storage[size_t(r)] = std::make_unique<float[]>(size_t(in_row_size));
    std::memcpy(storage[size_t(r)].get(), x.data() + r * in_row_size, size_t(in_row_size) * sizeof(float));
    row_ptrs[size_t(r)] = storage[size_t(r)].get();
  }

  for (Isa isa : supported_isas()) {
    const Variant v = variant(isa);
    std::vector<float> want(size_t(rows * row_size)), want_sums(size_t(rows * C), 0.0f);
    Epilogue ep_want = ep;
    ep_want.row_sums = sums ? want_sums.data() : nullptr;
    v.rows(s, x.data(), w.data(), ep_want, want.data(), 0, rows);

    bool same = true, guards = true, sums_sequential = true;
    if (sums)  // each row's sums: its stored values added one column after the other
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t c = 0; c < C; ++c) {
          float sum = 0.0f;
          for (int64_t ow = 0; ow < Wo; ++ow) sum += want[size_t((row * Wo + ow) * C + c)];
          sums_sequential = sums_sequential && sum == want_sums[size_t(row * C + c)];
        }
    const int64_t cuts[4] = {0, lines / 3, std::max(lines / 3, lines - lines / 4), lines};
    for (int part = 0; part < 3; ++part) {
      std::vector<float> got(want.size() + 16, 12345.0f), got_sums(want_sums.size() + 16, 0.0f);
      Epilogue ep_got = ep;
      ep_got.row_sums = sums ? got_sums.data() : nullptr;
      v.lines(s, row_ptrs.data(), w.data(), ep_got, got.data(), cuts[part], cuts[part + 1]);
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t line = row / (s.out_t() * s.out_h()) * s.out_h() + row % s.out_h();
        const bool mine = line >= cuts[part] && line < cuts[part + 1];
        for (int64_t i = row * row_size; i < (row + 1) * row_size; ++i)
          if (mine) same = same && std::memcmp(&got[size_t(i)], &want[size_t(i)], sizeof(float)) == 0;
          else guards = guards && got[size_t(i)] == 12345.0f;
        for (int64_t c = 0; c < C; ++c) {
          const float sum = got_sums[size_t(row * C + c)];
          if (mine) same = same && std::memcmp(&sum, &want_sums[size_t(row * C + c)], sizeof(float)) == 0;
          else guards = guards && sum == 0.0f;
        }
      }
      for (size_t i = want.size(); i < got.size(); ++i) guards = guards && got[i] == 12345.0f;
      for (size_t i = want_sums.size(); i < got_sums.size(); ++i) guards = guards && got_sums[i] == 0.0f;
    }
    CHECK(same);
    CHECK(guards);
    CHECK(sums_sequential);
    if ((!same || !guards || !sums_sequential) && failures_reported++ < 10)
      std::fprintf(stderr, "  isa=%s N=%ld C=%ld T=%ld H=%ld W=%ld k=%ldx%ldx%ld s=%ldx%ldx%ld p=%ldx%ldx%ld config %d\n",
                   isa_name(isa), long(s.batch), long(C), long(s.in_t), long(s.in_h), long(s.in_w), long(s.kernel_t),
                   long(s.kernel_h), long(s.kernel_w), long(s.stride_t), long(s.stride_h), long(s.stride_w),
                   long(s.pad_t), long(s.pad_h), long(s.pad_w), config);
  }
}

}  // namespace

int main() {
  std::mt19937 rng(77);
  std::printf("supported ISA levels:");
  for (Isa isa : supported_isas()) std::printf(" %s", isa_name(isa));
  std::printf("\n");

  const int kernels[][3] = {{3, 3, 3}, {1, 3, 3}, {3, 1, 1}, {1, 5, 5}, {2, 2, 2}, {1, 1, 1}};
  const int channels[] = {1, 8, 17, 54};
  // T x H x W, including T = 1, odd sizes, 9 and 13 frames (more than a group of 8 output rows per line).
  const int sizes[][3] = {{1, 5, 5}, {4, 7, 9}, {3, 6, 13}, {13, 4, 5}, {9, 11, 6}};
  int config = 0;
  for (auto& k : kernels)
    for (int c : channels)
      for (auto& sz : sizes)
        for (int stride_mix = 0; stride_mix < 3; ++stride_mix) {
          DwConv3dShape s;
          s.batch = 1 + config % 2;
          s.channels = c;
          s.in_t = sz[0];
          s.in_h = sz[1];
          s.in_w = sz[2];
          s.kernel_t = k[0];
          s.kernel_h = k[1];
          s.kernel_w = k[2];
          s.stride_t = stride_mix == 2 ? 2 : 1;
          s.stride_h = s.stride_w = stride_mix >= 1 ? 2 : 1;
          // Paddings from 0 to the kernel size (padding == kernel leaves lines that read no input row at all).
          const int pad_mix = config % 3;
          s.pad_t = pad_mix == 2 ? k[0] : k[0] / 2;
          s.pad_h = pad_mix == 0 ? 0 : pad_mix == 1 ? k[1] / 2 : k[1];
          s.pad_w = pad_mix == 2 ? 0 : k[2] / 2;
          if (s.in_t + 2 * s.pad_t < s.kernel_t || s.in_h + 2 * s.pad_h < s.kernel_h ||
              s.in_w + 2 * s.pad_w < s.kernel_w)
            continue;
          compare(s, config++, rng);
        }
  std::printf("%d shapes\n", config);
  return check::finish("test_kernels_dwconv3d_lines");
}
