// The int8 convolutions: every dot-product variant (AVX512-VNNI, AVX-VNNI, ARM dotprod, and the dot's exact emulations
// on plain AVX2, AVX-512 without VNNI and ARMv8.0 NEON) and every depthwise SIMD variant the CPU supports (float-accumulating and
// dot-product) matches the int32 scalar reference within 1 LSB (and bit-exactly for >= 99% of outputs) over many
// shapes: K not a multiple of 4 (folded kernel rows, their borders), output-channel tails and remainder tiles at X3D
// widths, padding, strides, odd widths (every column block size), batches, nonzero zero points, residuals, every
// activation, per-tensor and per-channel output quantization (channel counts not multiples of any vector width), and
// work split into uneven chunks (as threads do). The reference itself is checked by hand. The channel-scaled activation
// (the int8 squeeze-excitation's apply pass) likewise, and equal to the depthwise variants it replaced there.
// AMX-INT8 (where the CPU and OS allow it): its pointwise kernel equals the AVX512-VNNI variant bit for bit on every
// pointwise shape (K, M and C_out tails, residuals, per-channel outputs, activations, uneven work splits), also with
// input and weights ending right before an unmapped page (a tile reading past them faults; ASan does not see tile
// loads), its dispatch entry falls back to VNNI for the other shapes, and PYVIDEO_AMX=0 keeps it out of the table.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/int8/qconv3d.h"
#if defined(__x86_64__)
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "kernels/cpu/int8/qconv3d_amx.h"
#endif

using namespace pyvideo::kernels;

namespace {

struct Named { const char* name; QConv3dFn fn; };

#if defined(__x86_64__)
bool amx_usable() {
  const CpuFeatures& f = cpu_features();
  return f.amx_int8 && f.avx512vnni && f.avx512f && f.avx512bw && f.avx512vl;
}
#endif
struct NamedDw { const char* name; QDwConv3dFn fn; };

std::vector<Named> dense_variants() {
  std::vector<Named> out;
  const CpuFeatures& f = cpu_features();
  (void)f;
#if defined(__x86_64__)
  if (f.avx512vnni && f.avx512f && f.avx512bw && f.avx512vl) out.push_back({"avx512vnni", qconv3d_avx512vnni});
  if (f.avx_vnni) out.push_back({"avxvnni", qconv3d_avxvnni});
  if (f.avx2 && f.fma) out.push_back({"avx2", qconv3d_avx2});  // the dot emulated with vpmaddwd (no VNNI)
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma)
    out.push_back({"avx512", qconv3d_avx512});  // the same emulation on 16 lanes (AVX-512 without VNNI)
  if (amx_usable()) out.push_back({"amx", qconv3d_amx});
#endif
#if defined(__aarch64__)
  out.push_back({"neon", qconv3d_neon});  // the dot emulated with widening multiplies (no dotprod)
  if (f.dotprod) out.push_back({"neondot", qconv3d_neondot});
#endif
  return out;
}

std::vector<NamedDw> depthwise_variants() {
  std::vector<NamedDw> out;
  for (Isa isa : supported_isas()) {
    switch (isa) {
#if defined(__x86_64__)
      case Isa::avx2: out.push_back({"avx2", qdwconv3d_avx2}); break;
      case Isa::avx512: out.push_back({"avx512", qdwconv3d_avx512}); break;
#endif
#if defined(__aarch64__)
      case Isa::neon: out.push_back({"neon", qdwconv3d_neon}); break;
#endif
      default: break;
    }
  }
  const CpuFeatures& f = cpu_features();
  (void)f;
#if defined(__x86_64__)
  if (f.avx512vnni && f.avx512f && f.avx512bw && f.avx512vl) out.push_back({"avx512vnni", qdwconv3d_avx512vnni});
  if (f.avx_vnni) out.push_back({"avxvnni", qdwconv3d_avxvnni});
#endif
#if defined(__aarch64__)
  if (f.dotprod) out.push_back({"neondot", qdwconv3d_neondot});
#endif
  return out;
}

// The geometry both shape kinds (Conv3dShape, DwConv3dShape) share, from a test case's [T, H, W] triples.
template <class Shape>
void set_geometry(Shape& s, const int (&size)[3], const int (&k)[3], const int (&stride)[3], const int (&pad)[3]) {
  s.in_t = size[0]; s.in_h = size[1]; s.in_w = size[2];
  s.kernel_t = k[0]; s.kernel_h = k[1]; s.kernel_w = k[2];
  s.stride_t = stride[0]; s.stride_h = stride[1]; s.stride_w = stride[2];
  s.pad_t = pad[0]; s.pad_h = pad[1]; s.pad_w = pad[2];
}

std::vector<int8_t> random_i8(size_t n, std::mt19937& rng, int lo = -128, int hi = 127) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = int8_t(dist(rng));
  return v;
}

// Per-test quantization parameters; scales chosen so outputs spread over the int8 range.
struct QParams {
  std::vector<int32_t> bias;
  std::vector<float> bias_float, dequant, out_scales, out_inverse_scales, out_zero_points;
  std::vector<int8_t> residual;
  Requant q;
};

// Whether case `index` quantizes its output per channel: 3 of every 7, so with every activation, residual and input
// zero point of the other cycles (5, 4, 3: coprime with 7).
bool per_channel_case(int index) { return index % 7 >= 4; }

QParams make_qparams(int64_t channels, size_t out_n, int64_t fan_in, int index, std::mt19937& rng) {
  const Activation acts[] = {Activation::identity, Activation::relu, Activation::swish, Activation::hswish,
                             Activation::sigmoid};
  QParams p;
  std::uniform_int_distribution<int> bias_dist(-20000, 20000);
  std::uniform_real_distribution<float> scale_dist(0.5f, 1.5f);
  for (int64_t c = 0; c < channels; ++c) {
    p.bias.push_back(bias_dist(rng));
    p.bias_float.push_back(float(p.bias.back()));
    p.dequant.push_back(scale_dist(rng) * 1e-4f);
  }
  p.residual = random_i8(out_n, rng);
  p.q.input_zero_point = (index % 3 == 0) ? 0 : (index % 3 == 1 ? -17 : 25);
  p.q.bias = p.bias.data();
  p.q.bias_float = p.bias_float.data();
  p.q.dequant_scale = p.dequant.data();
  p.q.residual = index % 4 == 1 ? p.residual.data() : nullptr;
  p.q.residual_scale = 0.03f;
  p.q.residual_zero_point = 5;
  p.q.activation = acts[index % 5];
  p.q.output_scale = 0.02f * std::sqrt(float(fan_in)) / 8.0f + (p.q.activation == Activation::sigmoid ? 0.0f : 0.01f);
  if (p.q.activation == Activation::sigmoid) p.q.output_scale = 1.0f / 255.0f;
  p.q.output_zero_point = p.q.activation == Activation::sigmoid ? -128 : -3;
  if (per_channel_case(index)) {
    // Scales 1/4x to 4x the per-tensor one, zero points spread widely: a kernel reading the wrong channel's (or the
    // per-tensor) values is off by many LSB.
    std::uniform_real_distribution<float> log_factor(-2.0f, 2.0f);
    std::uniform_int_distribution<int> zp_dist(-40, 40);
    for (int64_t c = 0; c < channels; ++c) {
      p.out_scales.push_back(p.q.output_scale * std::exp2(log_factor(rng)));
      p.out_inverse_scales.push_back(1.0f / p.out_scales.back());
      p.out_zero_points.push_back(float(p.q.activation == Activation::sigmoid ? -128 + zp_dist(rng) / 2 + 20
                                                                              : zp_dist(rng)));
    }
    p.q.output_scales = p.out_scales.data();
    p.q.output_inverse_scales = p.out_inverse_scales.data();
    p.q.output_zero_points = p.out_zero_points.data();
  }
  return p;
}

// Packs [Co][Ci][taps] weights into the kernel layout [taps][ceil(Ci/4)][Co][4] and sums each output channel.
void pack(const std::vector<int8_t>& w, int64_t co_n, int64_t ci_n, int64_t taps, std::vector<int8_t>& packed,
          std::vector<int32_t>& sums) {
  const int64_t k4 = (ci_n + 3) / 4;
  packed.assign(size_t(taps * k4 * co_n * 4), 0);
  sums.assign(size_t(co_n), 0);
  for (int64_t co = 0; co < co_n; ++co)
    for (int64_t ci = 0; ci < ci_n; ++ci)
      for (int64_t t = 0; t < taps; ++t) {
        const int8_t v = w[size_t((co * ci_n + ci) * taps + t)];
        packed[size_t(((t * k4 + ci / 4) * co_n + co) * 4 + ci % 4)] = v;
        sums[size_t(co)] += v;
      }
}

struct Diff { int64_t max = 0, inexact = 0, total = 0; };

Diff diff(const std::vector<int8_t>& got, const std::vector<int8_t>& ref, size_t n) {
  Diff d;
  d.total = int64_t(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t e = std::abs(int(got[i]) - int(ref[i]));
    d.max = std::max(d.max, e);
    d.inexact += e != 0;
  }
  return d;
}

Diff total_dense, total_dw, total_per_channel;
#if defined(__x86_64__)
int amx_pointwise_checks = 0, amx_multitap_checks = 0, amx_lines_checks = 0;
#endif

// Chunk boundaries of [0, n) as threads would get them: halves, and three uneven parts (so chunks start and end
// inside output planes and rows).
std::vector<std::vector<int64_t>> splits(int64_t n) {
  return {{0, n / 2, n}, {0, n / 3, std::min(n, n / 3 + 1 + n / 5), n}};
}

void accumulate(Diff& into, const Diff& d) {
  into.max = std::max(into.max, d.max);
  into.inexact += d.inexact;
  into.total += d.total;
}

void compare_dense(const Conv3dShape& s, int index, std::mt19937& rng) {
  const int64_t taps = s.kernel_t * s.kernel_h * s.kernel_w;
  const size_t out_n = size_t(s.rows() * s.out_w() * s.out_channels);
  const auto x = random_i8(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.in_channels), rng);
  const auto w = random_i8(size_t(s.out_channels * s.in_channels * taps), rng, -127, 127);
  std::vector<int8_t> packed;
  std::vector<int32_t> sums;
  pack(w, s.out_channels, s.in_channels, taps, packed, sums);
  const QParams p = make_qparams(s.out_channels, out_n, s.in_channels * taps, index, rng);
  const std::vector<int8_t> pad_row(size_t(s.in_channels), int8_t(p.q.input_zero_point));
  std::vector<int8_t> ref(out_n);
  qconv3d_scalar(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), ref.data(), 0, s.items());
  // The shape, its flattened form (one row of columns for a pointwise conv) and, for a pointwise conv, the flattened
  // row in items of 5 and 37 columns (Conv3dShape::item_w: csrc/core/ops.cpp's equal shares for the threads).
  std::vector<Conv3dShape> works{s, s.flatten_pointwise()};
  if (s.is_pointwise())
    for (int64_t width : {5, 37}) {
      works.push_back(s.flatten_pointwise());
      works.back().item_w = width;
    }
  // Whether fn on items [begin, end) of work alone writes exactly those items' outputs, equal to `whole` (the run over
  // all items) there, and leaves every other byte (the guard bytes past out_n included) as it was.
  auto writes_only_its_items = [&](QConv3dFn fn, const Conv3dShape& work, const std::vector<int8_t>& whole,
                                   int64_t begin, int64_t end) {
    std::vector<int8_t> alone(out_n + 64, int8_t(99));
    fn(work, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), alone.data(), begin, end);
    const int64_t blocks = work.column_blocks(), iw = work.item_width(), Wo = work.out_w(), Co = work.co_stride();
    auto offset = [&](int64_t item) {  // output offset of an item's first column (items(): past the last)
      return item == work.items() ? int64_t(out_n) : (item / blocks * Wo + item % blocks * iw) * Co;
    };
    const int64_t lo = offset(begin), hi = offset(end);
    bool own = true;
    for (int64_t i = 0; i < int64_t(alone.size()); ++i)
      own = own && alone[size_t(i)] == (i >= lo && i < hi ? whole[size_t(i)] : int8_t(99));
    return own;
  };
  for (const Named& v : dense_variants())
    for (const Conv3dShape& work : works) {
      for (const auto& bounds : splits(work.items())) {
      std::vector<int8_t> got(out_n + 64, int8_t(99));
      for (size_t b = 0; b + 1 < bounds.size(); ++b)
        v.fn(work, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), got.data(), bounds[b], bounds[b + 1]);
      bool guard_ok = true;
      for (size_t i = out_n; i < got.size(); ++i) guard_ok = guard_ok && got[i] == 99;
      CHECK(guard_ok);
      const Diff d = diff(got, ref, out_n);
      CHECK(d.max <= 1);
      if (d.max > 1)
        std::fprintf(stderr, "  %s Ci=%ld Co=%ld k=%ldx%ldx%ld max diff %ld\n", v.name, long(s.in_channels),
                     long(s.out_channels), long(s.kernel_t), long(s.kernel_h), long(s.kernel_w), long(d.max));
      accumulate(total_dense, d);
      if (p.q.per_channel_output()) accumulate(total_per_channel, d);
      // Each item range alone writes exactly its items' outputs, as in the whole run (a range that wrote more, e.g.
      // whole rows for items that end inside one, is hidden above when the next range overwrites it).
      for (size_t b = 0; b + 1 < bounds.size(); ++b) {
        const bool own = writes_only_its_items(v.fn, work, got, bounds[b], bounds[b + 1]);
        CHECK(own);
        if (!own)
          std::fprintf(stderr, "  %s Ci=%ld Co=%ld W=%ld: items [%ld, %ld) wrote outside their columns\n", v.name,
                       long(s.in_channels), long(s.out_channels), long(s.in_w), long(bounds[b]), long(bounds[b + 1]));
      }
      }
    }
#if defined(__x86_64__)
  // The AMX pointwise kernel itself (whatever amx_pays routes): the same int32 sums and epilogue as AVX512-VNNI.
  if (amx_usable() && s.is_pointwise())
    for (const Conv3dShape& work : works)
      for (const auto& bounds : splits(work.items())) {
        std::vector<int8_t> got(out_n + 64, int8_t(99)), vnni(out_n + 64, int8_t(99));
        for (size_t b = 0; b + 1 < bounds.size(); ++b) {
          qconv3d_amx_pointwise(work, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), got.data(), bounds[b],
                                bounds[b + 1]);
          qconv3d_avx512vnni(work, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), vnni.data(), bounds[b],
                             bounds[b + 1]);
        }
        CHECK(got == vnni);  // the guard bytes past out_n included
        // On the flattened row, each item range alone writes exactly the columns of its items (an item range that
        // computed more, e.g. with the wrong item width, would still give the right tensor, computed twice).
        if (work.rows() == 1)
          for (const auto& parts : splits(work.items()))
            for (size_t b = 0; b + 1 < parts.size(); ++b)
              CHECK(writes_only_its_items(qconv3d_amx_pointwise, work, got, parts[b], parts[b + 1]));
        const Diff d = diff(got, ref, out_n);
        CHECK(d.max <= 1);
        accumulate(total_dense, d);
        if (p.q.per_channel_output()) accumulate(total_per_channel, d);
        ++amx_pointwise_checks;
      }
  // An AMX kernel against AVX512-VNNI on this shape, bit for bit, with item ranges that start and end inside rows,
  // planes and samples; counts the runs.
  auto equals_vnni = [&](const char* name, QConv3dFn amx, int& runs) {
    for (const auto& bounds : splits(s.items())) {
      std::vector<int8_t> got(out_n + 64, int8_t(99)), vnni(out_n + 64, int8_t(99));
      for (size_t b = 0; b + 1 < bounds.size(); ++b) {
        amx(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), got.data(), bounds[b], bounds[b + 1]);
        qconv3d_avx512vnni(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), vnni.data(), bounds[b],
                           bounds[b + 1]);
      }
      CHECK(got == vnni);
      if (got != vnni)
        std::fprintf(stderr, "  %s Ci=%ld Co=%ld k=%ldx%ldx%ld s=%ldx%ldx%ld p=%ldx%ldx%ld size=%ldx%ldx%ldx%ld\n", name,
                     long(s.in_channels), long(s.out_channels), long(s.kernel_t), long(s.kernel_h), long(s.kernel_w),
                     long(s.stride_t), long(s.stride_h), long(s.stride_w), long(s.pad_t), long(s.pad_h),
                     long(s.pad_w), long(s.batch), long(s.in_t), long(s.in_h), long(s.in_w));
      ++runs;
    }
  };
  // The AMX multi-tap kernel (every non-pointwise shape: padded grid at stride 1, gathered rows otherwise; whatever
  // amx_taps_pays routes).
  if (amx_usable() && !s.is_pointwise()) equals_vnni("amx multitap", qconv3d_amx_multitap, amx_multitap_checks);
  // The AMX narrow-line kernel (kernel rows of at most 64 bytes, wider than one tap; whatever amx_lines_pays routes).
  if (amx_usable() && !s.is_pointwise() && s.kernel_w > 1 && s.kernel_w * s.in_channels <= 64)
    equals_vnni("amx lines", qconv3d_amx_narrow_lines, amx_lines_checks);
#endif
}

void compare_depthwise(const DwConv3dShape& s, int index, std::mt19937& rng) {
  const int64_t taps = s.kernel_t * s.kernel_h * s.kernel_w;
  const size_t out_n = size_t(s.rows() * s.out_w() * s.channels);
  const auto x = random_i8(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.channels), rng);
  const auto w = random_i8(size_t(taps * s.channels), rng, -127, 127);
  const QParams p = make_qparams(s.channels, out_n, taps * 4, index, rng);
  std::vector<int8_t> ref(out_n);
  qdwconv3d_scalar(s, x.data(), w.data(), p.q, ref.data(), 0, s.rows());
  for (const NamedDw& v : depthwise_variants())
    for (const auto& bounds : splits(s.rows())) {
      std::vector<int8_t> got(out_n + 64, int8_t(99));
      for (size_t b = 0; b + 1 < bounds.size(); ++b)
        v.fn(s, x.data(), w.data(), p.q, got.data(), bounds[b], bounds[b + 1]);
      bool guard_ok = true;
      for (size_t i = out_n; i < got.size(); ++i) guard_ok = guard_ok && got[i] == 99;
      CHECK(guard_ok);
      const Diff d = diff(got, ref, out_n);
      CHECK(d.max <= 1);
      if (d.max > 1)
        std::fprintf(stderr, "  %s C=%ld %ldx%ldx%ld k=%ldx%ldx%ld s=%ld,%ld,%ld max diff %ld\n", v.name,
                     long(s.channels), long(s.in_t), long(s.in_h), long(s.in_w), long(s.kernel_t), long(s.kernel_h),
                     long(s.kernel_w),
                     long(s.stride_t), long(s.stride_h), long(s.stride_w), long(d.max));
      accumulate(total_dw, d);
      if (p.q.per_channel_output()) accumulate(total_per_channel, d);
    }
}

// A call computes exactly the output rows at positions [begin, end) of the line order (dwconv3d.h): position p is
// row ot = p % To of output line p / To, line = n * Ho + oh. Every variant and the reference, over ranges that are
// one position, part of one line, whole lines, lines of two samples and (T > 16) more frames than the dot kernel takes
// in one pass: the rows inside equal the whole call's, every other row keeps what the buffer held (two fill values,
// since 99 or -77 could be a real output). Splitting in this order is what gives threads ranges of oh in every frame
// (each then rearranges only its own input rows in the dot kernels).
void depthwise_positions_are_line_order(std::mt19937& rng) {
  struct Case { int c; int size[3]; int k[3]; int stride[3]; int pad[3]; int batch; };
  const Case cases[] = {
      {54, {4, 8, 8}, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}, 2},   // quads, stride 2
      {37, {5, 5, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 2},   // quads, stride 1
      {24, {4, 3, 7}, {5, 1, 1}, {1, 1, 1}, {2, 0, 0}, 2},   // temporal-only rows
      {20, {3, 4, 9}, {1, 3, 5}, {1, 1, 2}, {0, 1, 2}, 2},   // single-tap mode
      {8, {19, 3, 3}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 2},   // more than 16 output planes
  };
  int checked = 0;
  for (const Case& c : cases) {
    DwConv3dShape s;
    s.batch = c.batch; s.channels = c.c;
    set_geometry(s, c.size, c.k, c.stride, c.pad);
    const int64_t To = s.out_t(), Ho = s.out_h(), P = s.rows(), row_bytes = s.out_w() * s.channels;
    const size_t out_n = size_t(P * row_bytes);
    const auto x = random_i8(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.channels), rng);
    const auto w = random_i8(size_t(s.kernel_t * s.kernel_h * s.kernel_w * s.channels), rng, -127, 127);
    const QParams p = make_qparams(s.channels, out_n, 27 * 4, 2, rng);
    std::vector<int64_t> row_of;  // position -> row, counted out independently of the kernels' arithmetic
    for (int64_t n = 0; n < s.batch; ++n)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ot = 0; ot < To; ++ot) row_of.push_back((n * To + ot) * Ho + oh);
    CHECK(int64_t(row_of.size()) == P);
    for (int64_t q = 0; q < P; ++q) CHECK(DwConv3dShape::row_at(q, To, Ho) == row_of[size_t(q)]);
    const std::pair<int64_t, int64_t> ranges[] = {
        {0, 1}, {To + 1, To + 2}, {To + 1, std::min(P, 2 * To)}, {To, 3 * To}, {To - 1, P / 2 + 1},
        {P / 2 - 1, P}, {1, P - 1}};
    std::vector<NamedDw> variants = depthwise_variants();
    variants.push_back({"scalar", qdwconv3d_scalar});
    for (const NamedDw& v : variants) {
      std::vector<int8_t> whole(out_n);
      v.fn(s, x.data(), w.data(), p.q, whole.data(), 0, P);
      for (const auto& [begin, end] : ranges) {
        if (begin >= end) continue;
        for (int8_t fill : {int8_t(99), int8_t(-77)}) {
          std::vector<int8_t> got(out_n, fill);
          v.fn(s, x.data(), w.data(), p.q, got.data(), begin, end);
          std::vector<char> inside(size_t(P), 0);
          for (int64_t q = begin; q < end; ++q) inside[size_t(row_of[size_t(q)])] = 1;
          int64_t wrong = 0;
          for (int64_t row = 0; row < P; ++row)
            for (int64_t i = row * row_bytes; i < (row + 1) * row_bytes; ++i)
              wrong += inside[size_t(row)] ? got[size_t(i)] != whole[size_t(i)] : got[size_t(i)] != fill;
          CHECK(wrong == 0);
          if (wrong)
            std::fprintf(stderr, "  %s C=%d [%ld, %ld) of %ld positions: %ld bytes wrong\n", v.name, c.c, long(begin),
                         long(end), long(P), long(wrong));
          ++checked;
        }
      }
    }
  }
  CHECK(checked > 100);
}

// Per-channel arrays that hold the per-tensor values give the per-tensor result bit for bit, in every variant and in
// the reference (the same arithmetic, only the operands' source differs), wherever the per-tensor call does not take
// the linear path (identity or relu without residual: it folds the scales differently).
void equal_channels_equal_per_tensor(std::mt19937& rng) {
  // make_qparams cases: relu and identity with a residual, swish, hswish, sigmoid
  for (int index : {1, 5, 2, 3, 9})
    for (int k : {1, 3}) {  // the SE's 1x1x1 (single-tap mode of the dot kernels) and 3x3x3 (quads)
      DwConv3dShape s;
      s.batch = 2; s.channels = 37; s.in_t = 2; s.in_h = 3; s.in_w = 11;
      s.kernel_t = s.kernel_h = s.kernel_w = k;
      s.pad_t = s.pad_h = s.pad_w = k / 2;
      const size_t out_n = size_t(s.rows() * s.out_w() * s.channels);
      const auto x = random_i8(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.channels), rng);
      const auto w = random_i8(size_t(k * k * k * s.channels), rng, -127, 127);
      QParams p = make_qparams(s.channels, out_n, 108, index, rng);
      p.q.output_scales = p.q.output_inverse_scales = p.q.output_zero_points = nullptr;
      CHECK(p.q.residual || (p.q.activation != Activation::identity && p.q.activation != Activation::relu));
      Requant per_channel = p.q;
      const std::vector<float> scales(size_t(s.channels), p.q.output_scale);
      const std::vector<float> inverse(size_t(s.channels), 1.0f / p.q.output_scale);
      const std::vector<float> zero_points(size_t(s.channels), float(p.q.output_zero_point));
      per_channel.output_scales = scales.data();
      per_channel.output_inverse_scales = inverse.data();
      per_channel.output_zero_points = zero_points.data();
      std::vector<int8_t> a(out_n), b(out_n);
      qdwconv3d_scalar(s, x.data(), w.data(), p.q, a.data(), 0, s.rows());
      qdwconv3d_scalar(s, x.data(), w.data(), per_channel, b.data(), 0, s.rows());
      CHECK(a == b);
      for (const NamedDw& v : depthwise_variants()) {
        v.fn(s, x.data(), w.data(), p.q, a.data(), 0, s.rows());
        v.fn(s, x.data(), w.data(), per_channel, b.data(), 0, s.rows());
        CHECK(a == b);
      }
    }
}

// Float outputs (Requant::float_output, an int8 conv read by float code): every dense and depthwise variant stores
// act(dequantized accumulator [+ residual]) as float32 within float rounding of the scalar reference (its exp is a
// polynomial), at the int8 output's offsets, and leaves the int8 output untouched; the linear (identity / relu)
// path is not taken. Shapes cover the AMX pointwise route (>= 16 positions, enough MACs), 3x3x3 and the depthwise
// dot and float-accumulating variants, residuals and every activation.
void float_outputs(std::mt19937& rng) {
  int index = 0, compared = 0;
  auto close = [](const std::vector<float>& got, const std::vector<float>& ref) {
    bool ok = got.size() == ref.size();
    for (size_t i = 0; ok && i < ref.size(); ++i)
      ok = std::fabs(got[i] - ref[i]) <= 2e-5f * std::max(1.0f, std::fabs(ref[i]));
    return ok;
  };
  auto untouched_ok = [](const std::vector<int8_t>& v) {
    return std::all_of(v.begin(), v.end(), [](int8_t b) { return b == 99; });
  };
  for (int64_t k : {1, 3})
    for (int64_t ci : {24, 54})
      for (int64_t co : {17, 64}) {
        Conv3dShape s;
        s.batch = 1; s.in_channels = ci; s.out_channels = co; s.in_t = 2; s.in_h = 6; s.in_w = 7;
        s.kernel_t = s.kernel_h = s.kernel_w = k;
        s.pad_t = s.pad_h = s.pad_w = k / 2;
        const int64_t taps = k * k * k;
        const size_t out_n = size_t(s.rows() * s.out_w() * co);
        const auto x = random_i8(size_t(s.in_t * s.in_h * s.in_w * ci), rng);
        const auto w = random_i8(size_t(co * ci * taps), rng, -127, 127);
        std::vector<int8_t> packed;
        std::vector<int32_t> sums;
        pack(w, co, ci, taps, packed, sums);
        QParams p = make_qparams(co, out_n, ci * taps, index++, rng);
        p.q.output_scales = p.q.output_inverse_scales = p.q.output_zero_points = nullptr;
        const std::vector<int8_t> pad_row(size_t(ci), int8_t(p.q.input_zero_point));
        std::vector<float> ref(out_n);
        std::vector<int8_t> untouched(out_n, int8_t(99));
        p.q.float_output = ref.data();
        qconv3d_scalar(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), untouched.data(), 0, s.items());
        CHECK(untouched_ok(untouched));
        std::vector<Named> variants = dense_variants();
        variants.push_back({"table", kernel_table().qconv3d});  // the dispatch entry (AMX routing where present)
        for (const Named& v : variants)
          for (const Conv3dShape& work : {s, s.flatten_pointwise()}) {
            std::vector<float> got(out_n, -7.0f);
            p.q.float_output = got.data();
            v.fn(work, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), untouched.data(), 0, work.items());
            CHECK(close(got, ref));
            CHECK(untouched_ok(untouched));
            ++compared;
          }
      }
  for (int64_t c : {37, 64}) {
    DwConv3dShape s;
    s.batch = 2; s.channels = c; s.in_t = 3; s.in_h = 5; s.in_w = 9;
    s.kernel_t = s.kernel_h = s.kernel_w = 3;
    s.pad_t = s.pad_h = s.pad_w = 1;
    const size_t out_n = size_t(s.rows() * s.out_w() * c);
    const auto x = random_i8(size_t(s.batch * s.in_t * s.in_h * s.in_w * c), rng);
    const auto w = random_i8(size_t(27 * c), rng, -127, 127);
    for (int case_index : {0, 1, 2}) {  // identity, relu with a residual, swish
      QParams p = make_qparams(c, out_n, 27 * 4, case_index, rng);
      p.q.output_scales = p.q.output_inverse_scales = p.q.output_zero_points = nullptr;
      std::vector<float> ref(out_n);
      std::vector<int8_t> untouched(out_n, int8_t(99));
      p.q.float_output = ref.data();
      qdwconv3d_scalar(s, x.data(), w.data(), p.q, untouched.data(), 0, s.rows());
      for (const NamedDw& v : depthwise_variants()) {
        std::vector<float> got(out_n, -7.0f);
        p.q.float_output = got.data();
        v.fn(s, x.data(), w.data(), p.q, untouched.data(), 0, s.rows());
        CHECK(close(got, ref));
        CHECK(untouched_ok(untouched));
        ++compared;
      }
    }
  }
  CHECK(compared > 0);
}

// A range [c0, c1) of a layer's output channels computed alone (Conv3dShape::out_stride = C_out; the weights, weight
// sums, per-channel arrays, residual and outputs offset to c0, as csrc/core/ops.cpp splits matrix-vector products
// between threads) gives the whole layer's bytes in every variant and in the reference, and writes nothing outside
// its channels. Ranges in 16-channel blocks as the op cuts them (two and three groups), plus an unaligned one; shapes
// for the matrix-vector path and for the tiles (multi-tap, folded kernel rows, paired groups of <= 8 channels, large
// weights in parts); float outputs too.
void channel_ranges_equal_layer(std::mt19937& rng) {
  struct Case { int ci, co; int size[3]; int k[3]; int pad[3]; int batch; };
  const Case cases[] = {
      {432, 2048, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1}, {2048, 400, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 2},
      {37, 50, {1, 1, 2}, {1, 1, 1}, {0, 0, 0}, 2},    {3, 40, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 1},
      {24, 54, {2, 3, 7}, {1, 1, 1}, {0, 0, 0}, 1},    {5, 36, {2, 4, 5}, {3, 3, 3}, {1, 1, 1}, 1},
      {3, 24, {1, 6, 7}, {1, 3, 3}, {0, 1, 1}, 1},     {702, 520, {3, 2, 3}, {3, 1, 1}, {1, 0, 0}, 1},
  };
  int index = 0, runs = 0;
  for (const Case& c : cases)
    for (int per_channel = 0; per_channel < 2; ++per_channel)
      for (int float_out = 0; float_out < 2; ++float_out, ++index) {
        Conv3dShape s;
        s.batch = c.batch, s.in_channels = c.ci, s.out_channels = c.co;
        s.in_t = c.size[0], s.in_h = c.size[1], s.in_w = c.size[2];
        s.kernel_t = c.k[0], s.kernel_h = c.k[1], s.kernel_w = c.k[2];
        s.pad_t = c.pad[0], s.pad_h = c.pad[1], s.pad_w = c.pad[2];
        const int64_t taps = s.kernel_t * s.kernel_h * s.kernel_w, Co = s.out_channels;
        const size_t out_n = size_t(s.rows() * s.out_w() * Co);
        const auto x = random_i8(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.in_channels), rng);
        const auto w = random_i8(size_t(Co * s.in_channels * taps), rng, -127, 127);
        std::vector<int8_t> packed;
        std::vector<int32_t> sums;
        pack(w, Co, s.in_channels, taps, packed, sums);
        // index 4 * k + 1: residual; per_channel selects the per-channel output case of make_qparams
        QParams p = make_qparams(Co, out_n, s.in_channels * taps, per_channel ? 4 : 1 + 2 * (index % 2), rng);
        p.q.residual = index % 3 == 0 ? p.residual.data() : nullptr;
        const std::vector<int8_t> pad_row(size_t(s.in_channels), int8_t(p.q.input_zero_point));
        std::vector<Named> variants = dense_variants();
        variants.insert(variants.begin(), Named{"scalar", qconv3d_scalar});
        for (const Named& v : variants) {
          std::vector<int8_t> whole(out_n, int8_t(99));
          std::vector<float> whole_f(out_n, -7.0f);
          Requant q = p.q;
          if (float_out) q.float_output = whole_f.data();
          v.fn(s, x.data(), packed.data(), sums.data(), q, pad_row.data(), whole.data(), 0, s.items());
          const int64_t blocks16 = (Co + 15) / 16;
          std::vector<std::vector<int64_t>> cuts{{0, std::min(Co, 16 * (blocks16 / 2)), Co},
                                                  {0, std::min(Co, 16 * (blocks16 / 3)),
                                                   std::min(Co, 16 * (2 * blocks16 / 3)), Co},
                                                  {0, Co / 2 + 1, Co}};
          for (const auto& cut : cuts) {
            std::vector<int8_t> got(out_n, int8_t(99));
            std::vector<float> got_f(out_n, -7.0f);
            for (size_t g = 0; g + 1 < cut.size(); ++g) {
              const int64_t c0 = cut[g], c1 = cut[g + 1];
              if (c0 == c1) continue;
              Conv3dShape part = s;
              part.out_channels = c1 - c0;
              part.out_stride = Co;
              Requant r = p.q;
              r.bias += c0, r.bias_float += c0, r.dequant_scale += c0;
              if (r.residual) r.residual += c0;
              if (r.per_channel_output())
                r.output_scales += c0, r.output_inverse_scales += c0, r.output_zero_points += c0;
              if (float_out) r.float_output = got_f.data() + c0;
              // each range into a fresh buffer first: it writes exactly its own channels
              std::vector<int8_t> alone(out_n, int8_t(99));
              std::vector<float> alone_f(out_n, -7.0f);
              Requant ra = r;
              if (float_out) ra.float_output = alone_f.data() + c0;
              v.fn(part, x.data(), packed.data() + 4 * c0, sums.data() + c0, ra, pad_row.data(), alone.data() + c0, 0,
                   part.items());
              bool own = true;
              for (size_t i = 0; i < out_n; ++i) {
                const int64_t ch = int64_t(i) % Co;
                const bool mine = ch >= c0 && ch < c1;
                if (float_out)
                  own = own && alone[i] == 99 && (mine ? alone_f[i] == whole_f[i] : alone_f[i] == -7.0f);
                else
                  own = own && (mine ? alone[i] == whole[i] : alone[i] == 99);
              }
              CHECK(own);
              if (!own)
                std::fprintf(stderr, "  %s channels [%ld, %ld) of Ci=%ld Co=%ld k=%ldx%ldx%ld float=%d\n", v.name,
                             long(c0), long(c1), long(s.in_channels), long(Co), long(s.kernel_t), long(s.kernel_h),
                             long(s.kernel_w), float_out);
              v.fn(part, x.data(), packed.data() + 4 * c0, sums.data() + c0, r, pad_row.data(), got.data() + c0, 0,
                   part.items());
            }
            CHECK(got == whole);
            CHECK(std::memcmp(got_f.data(), whole_f.data(), out_n * sizeof(float)) == 0);
            ++runs;
          }
        }
      }
  std::printf("channel ranges: %d cut/variant runs equal to the whole layer\n", runs);
  CHECK(runs >= 3 * 32);
}

// Layers of at most 8 output channels (AVX-512 VNNI: paired groups) give the reference's exact int32 sums: with a
// float output, dequant scale 1 and no activation or residual, each output is float(sum + bias), exact below 2^24.
void narrow_layers_exact_sums(std::mt19937& rng) {
  struct Case { int ci, co; int size[3]; int k[3]; int stride[3]; int pad[3]; };
  const Case cases[] = {
      {3, 8, {5, 9, 20}, {5, 7, 7}, {1, 2, 2}, {2, 3, 3}}, {8, 8, {3, 4, 13}, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}},
      {3, 6, {2, 5, 9}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},  {5, 7, {2, 4, 17}, {1, 1, 5}, {1, 1, 3}, {0, 0, 2}},
      {3, 16, {2, 5, 70}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}}, {2, 24, {2, 6, 9}, {1, 7, 7}, {1, 2, 2}, {0, 3, 3}},
      {12, 2, {2, 3, 4}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
  };
  int compared = 0;
  for (const Case& c : cases) {
    Conv3dShape s;
    s.batch = 2; s.in_channels = c.ci; s.out_channels = c.co;
    set_geometry(s, c.size, c.k, c.stride, c.pad);
    const int64_t taps = s.kernel_t * s.kernel_h * s.kernel_w;
    const size_t out_n = size_t(s.rows() * s.out_w() * s.out_channels);
    const auto x = random_i8(size_t(s.batch * s.in_t * s.in_h * s.in_w * s.in_channels), rng);
    const auto w = random_i8(size_t(s.out_channels * s.in_channels * taps), rng, -127, 127);
    std::vector<int8_t> packed, untouched(out_n, int8_t(99));
    std::vector<int32_t> sums;
    pack(w, s.out_channels, s.in_channels, taps, packed, sums);
    QParams p = make_qparams(s.out_channels, out_n, s.in_channels * taps, 0, rng);  // index 0: identity, no residual
    std::fill(p.dequant.begin(), p.dequant.end(), 1.0f);
    p.q.input_zero_point = -9;
    const std::vector<int8_t> pad_row(size_t(s.in_channels), int8_t(p.q.input_zero_point));
    std::vector<float> ref(out_n);
    p.q.float_output = ref.data();
    qconv3d_scalar(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), untouched.data(), 0, s.items());
    std::vector<Named> variants = dense_variants();
    variants.push_back({"table", kernel_table().qconv3d});
    for (const Named& v : variants)
      for (const auto& bounds : splits(s.items())) {
        std::vector<float> got(out_n, -7.0f);
        p.q.float_output = got.data();
        for (size_t b = 0; b + 1 < bounds.size(); ++b)
          v.fn(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), untouched.data(), bounds[b], bounds[b + 1]);
        CHECK(got == ref);
        if (got != ref)
          std::fprintf(stderr, "  %s narrow Ci=%d Co=%d k=%dx%dx%d: sums differ\n", v.name, c.ci, c.co, c.k[0], c.k[1],
                       c.k[2]);
        ++compared;
      }
    CHECK(std::all_of(untouched.begin(), untouched.end(), [](int8_t b) { return b == 99; }));
  }
  std::printf("narrow layers: %d variant/split runs with the reference's exact sums\n", compared);
  CHECK(compared >= 10);
}

// The depthwise variants give the reference's exact int32 sums (float output, dequant scale 1, identity: each output
// is float(sum + bias), exact below 2^24), also where the widened-float kernels (qdwconv3d_rows.h) are closest to
// losing exactness: 500 taps (ops.cpp's limit) of (-128 - 127) * -127 sum to 16192500, just below 2^24, and must come
// out exact even though they are added in float. Random inputs over every column path (borders, stride 2, kw 1 and 5)
// and uneven position splits too.
void depthwise_exact_sums(std::mt19937& rng) {
  struct Case { int c; int size[3]; int k[3]; int stride[3]; int pad[3]; bool extreme; };
  const Case cases[] = {
      {19, {5, 10, 10}, {5, 10, 10}, {1, 1, 1}, {0, 0, 0}, true},  // one output column of 500 taps, worst sums
      {37, {6, 12, 13}, {5, 10, 10}, {1, 1, 1}, {2, 5, 5}, true},   // 500 taps with padding, extremes
      {54, {4, 9, 21}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, false},
      {40, {3, 11, 17}, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}, false},
      {24, {7, 5, 6}, {5, 1, 1}, {1, 1, 1}, {2, 0, 0}, false},
      {13, {2, 6, 19}, {1, 3, 5}, {1, 1, 2}, {0, 1, 2}, false},
  };
  int compared = 0;
  for (const Case& c : cases) {
    DwConv3dShape s;
    s.batch = 2; s.channels = c.c;
    set_geometry(s, c.size, c.k, c.stride, c.pad);
    const int64_t taps = s.kernel_t * s.kernel_h * s.kernel_w;
    const size_t in_n = size_t(s.batch * s.in_t * s.in_h * s.in_w * s.channels);
    const size_t out_n = size_t(s.rows() * s.out_w() * s.channels);
    const auto x = c.extreme ? std::vector<int8_t>(in_n, int8_t(-128)) : random_i8(in_n, rng);
    const auto w = c.extreme ? std::vector<int8_t>(size_t(taps * s.channels), int8_t(-127))
                             : random_i8(size_t(taps * s.channels), rng, -127, 127);
    QParams p = make_qparams(s.channels, out_n, taps * 4, 0, rng);  // index 0: identity, no residual
    p.q.output_scales = p.q.output_inverse_scales = p.q.output_zero_points = nullptr;
    std::fill(p.dequant.begin(), p.dequant.end(), 1.0f);
    p.q.input_zero_point = c.extreme ? 127 : -9;
    if (c.extreme) {
      std::fill(p.bias.begin(), p.bias.end(), 0);
      std::fill(p.bias_float.begin(), p.bias_float.end(), 0.0f);
    }
    std::vector<float> ref(out_n);
    std::vector<int8_t> untouched(out_n, int8_t(99));
    p.q.float_output = ref.data();
    qdwconv3d_scalar(s, x.data(), w.data(), p.q, untouched.data(), 0, s.rows());
    if (c.extreme && c.pad[0] == 0)  // the single output column: every sum is the worst one
      CHECK(std::all_of(ref.begin(), ref.end(), [](float v) { return v == 16192500.0f; }));
    std::vector<NamedDw> variants = depthwise_variants();
    variants.push_back({"table", kernel_table().qdwconv3d});
    for (const NamedDw& v : variants)
      for (const auto& bounds : splits(s.rows())) {
        std::vector<float> got(out_n, -7.0f);
        p.q.float_output = got.data();
        for (size_t b = 0; b + 1 < bounds.size(); ++b)
          v.fn(s, x.data(), w.data(), p.q, untouched.data(), bounds[b], bounds[b + 1]);
        CHECK(got == ref);
        if (got != ref)
          std::fprintf(stderr, "  %s depthwise C=%d k=%dx%dx%d: sums differ\n", v.name, c.c, c.k[0], c.k[1], c.k[2]);
        ++compared;
      }
    CHECK(std::all_of(untouched.begin(), untouched.end(), [](int8_t b) { return b == 99; }));
  }
  std::printf("depthwise exact sums: %d variant/split runs\n", compared);
  CHECK(compared >= 12);
}

// The int8 squeeze-excitation's SIMD kernels of each level: the apply pass and the channel sums.
struct NamedScale { const char* name; QScaleFn fn; QChannelSumsFn sums; };

std::vector<NamedScale> scale_variants() {
  std::vector<NamedScale> out;
  for (Isa isa : supported_isas()) {
    switch (isa) {
#if defined(__x86_64__)
      case Isa::avx2: out.push_back({"avx2", qscale_avx2, qchannel_sums_avx2}); break;
      case Isa::avx512: out.push_back({"avx512", qscale_avx512, qchannel_sums_avx512}); break;
#endif
#if defined(__aarch64__)
      case Isa::neon: out.push_back({"neon", qscale_neon, qchannel_sums_neon}); break;
#endif
      default: break;
    }
  }
  return out;
}

// Random per-channel scales and output requantization for C channels (the outputs spread over the int8 range:
// |act(v)| up to ~128 * 0.05; zero points c % zp_period - zp_period / 2), and a QScale over them (its input and
// output left to the caller).
struct ChannelScales {
  std::vector<float> scale, out_scale, inverse, zero_point;
  ChannelScales(int64_t C, Activation act, int zp_period, std::mt19937& rng) {
    std::uniform_real_distribution<float> scale_dist(0.002f, 0.05f);
    for (int64_t c = 0; c < C; ++c) {
      scale.push_back(scale_dist(rng));
      out_scale.push_back(act == Activation::sigmoid ? 0.004f : scale_dist(rng) * 1.5f);
      inverse.push_back(1.0f / out_scale.back());
      zero_point.push_back(float(int(c % zp_period) - zp_period / 2));
    }
  }
  QScale qscale(int32_t input_zero_point, Activation act) const {
    QScale q;
    q.channels = int64_t(scale.size());
    q.input_zero_point = input_zero_point;
    q.scale = scale.data();
    q.activation = act;
    q.output_scales = out_scale.data();
    q.output_inverse_scales = inverse.data();
    q.output_zero_points = zero_point.data();
    return q;
  }
};

// The channel-scaled activation (the int8 squeeze-excitation's apply pass): every SIMD variant matches the scalar
// reference within 1 LSB (>= 99% exactly), over channel counts around every vector width and X3D's, every
// activation and uneven row chunks; the reference matches a hand computation; and every variant equals, bit for bit,
// the depthwise variants of its level run as a 1x1x1 conv with unit weights, zero bias and dequant_scale = scale
// (what the SE ran before: the same arithmetic without the integer accumulation).
void channel_scaled_activation(std::mt19937& rng) {
  Diff total;
  const Activation activations[] = {Activation::identity, Activation::relu, Activation::swish, Activation::hswish,
                                    Activation::sigmoid};
  for (int64_t C : {1, 3, 7, 8, 15, 16, 17, 31, 33, 54, 64, 108, 216, 432})
    for (Activation act : activations) {
      const int64_t rows = 1 + (C * 7 + int64_t(act)) % 23;
      const auto x = random_i8(size_t(rows * C), rng);
      const ChannelScales cs(C, act, 11, rng);
      const std::vector<float>&scale = cs.scale, &out_scale = cs.out_scale, &inverse = cs.inverse,
                              &zero_point = cs.zero_point;
      QScale q = cs.qscale(int32_t(C % 9) - 4, act);
      q.input = x.data();
      std::vector<int8_t> ref(size_t(rows * C));
      q.output = ref.data();
      qscale_scalar(q, 0, rows);
      {  // the reference by hand, for one element
        const int64_t i = (rows * C) / 2, c = i % C;
        const float v = float(int(x[size_t(i)]) - q.input_zero_point) * scale[size_t(c)];
        const float y = activate_scalar(v, act) / out_scale[size_t(c)];
        const float r = std::min(127.0f, std::max(-128.0f, std::nearbyint(y) + zero_point[size_t(c)]));
        CHECK(int(ref[size_t(i)]) == int(r));
      }
      // the same per-channel requantization through the depthwise kernels (unit 1x1x1 weights, zero bias)
      DwConv3dShape unit;
      unit.batch = 1; unit.channels = C; unit.in_t = 1; unit.in_h = rows; unit.in_w = 1;
      const std::vector<int8_t> ones(size_t(C), int8_t(1));
      const std::vector<int32_t> zero_bias(size_t(C), 0);
      const std::vector<float> zero_bias_float(size_t(C), 0.0f);
      Requant r;
      r.input_zero_point = q.input_zero_point;
      r.bias = zero_bias.data();
      r.bias_float = zero_bias_float.data();
      r.dequant_scale = scale.data();
      r.activation = act;
      r.output_scales = out_scale.data();
      r.output_inverse_scales = inverse.data();
      r.output_zero_points = zero_point.data();
      for (const NamedScale& v : scale_variants())
        for (const auto& bounds : splits(rows)) {
          std::vector<int8_t> got(size_t(rows * C) + 64, int8_t(99));
          q.output = got.data();
          for (size_t b = 0; b + 1 < bounds.size(); ++b) v.fn(q, bounds[b], bounds[b + 1]);
          bool guard_ok = true;
          for (size_t i = size_t(rows * C); i < got.size(); ++i) guard_ok = guard_ok && got[i] == 99;
          CHECK(guard_ok);
          const Diff d = diff(got, ref, size_t(rows * C));
          CHECK(d.max <= 1);
          accumulate(total, d);
          for (const NamedDw& dw : depthwise_variants()) {
            if (std::string(dw.name) != v.name) continue;  // the same level's float-accumulating variant
            std::vector<int8_t> old(size_t(rows * C));
            dw.fn(unit, x.data(), ones.data(), r, old.data(), 0, rows);
            CHECK(std::equal(old.begin(), old.end(), got.begin()));
          }
        }
      // Float output (QScale::float_output): act(v) unquantized within float rounding of the reference (whose exp is
      // std::exp), the int8 output untouched, for every variant and split; the reference is act(v) by hand.
      std::vector<float> float_ref(size_t(rows * C));
      std::vector<int8_t> untouched(size_t(rows * C), int8_t(99));
      q.output = untouched.data();
      q.float_output = float_ref.data();
      qscale_scalar(q, 0, rows);
      for (int64_t i = 0; i < rows * C; ++i) {
        const float v = float(int(x[size_t(i)]) - q.input_zero_point) * scale[size_t(i % C)];
        CHECK(float_ref[size_t(i)] == activate_scalar(v, act));
      }
      for (const NamedScale& v : scale_variants())
        for (const auto& bounds : splits(rows)) {
          std::vector<float> got(size_t(rows * C) + 16, -7.0f);
          q.float_output = got.data();
          for (size_t b = 0; b + 1 < bounds.size(); ++b) v.fn(q, bounds[b], bounds[b + 1]);
          for (size_t i = 0; i < got.size(); ++i)
            CHECK(i < float_ref.size() ? std::fabs(got[i] - float_ref[i]) <= 2e-5f * std::max(1.0f, std::fabs(float_ref[i]))
                                       : got[i] == -7.0f);
        }
      CHECK(std::all_of(untouched.begin(), untouched.end(), [](int8_t b) { return b == 99; }));
      q.float_output = nullptr;
    }
  std::printf("channel-scaled activation: %ld/%ld outputs off by 1 LSB\n", long(total.inexact), long(total.total));
  CHECK(total.total > 0 && total.inexact * 100 <= total.total);
}

// The apply pass by table (qscale_table + qchannel_lookup, what the squeeze-excitation runs on large volumes) gives,
// bit for bit, what each variant (the scalar reference included) gives running directly on the volume: the premise
// that a variant's arithmetic per element does not depend on the channel count. Every activation, channel counts
// around each vector width and X3D's, every int8 value in every channel, and tables built in two channel ranges.
void channel_lookup_equals_the_apply_pass(std::mt19937& rng) {
  std::vector<NamedScale> variants = scale_variants();
  variants.insert(variants.begin(), NamedScale{"scalar", qscale_scalar, qchannel_sums_scalar});
  int compared = 0;
  for (int64_t C : {1, 5, 8, 9, 16, 17, 33, 54, 108})
    for (Activation act : {Activation::identity, Activation::relu, Activation::swish, Activation::hswish,
                           Activation::sigmoid}) {
      const int64_t rows = 256 + 37;  // rows 0..255: every byte value in every channel; then random rows
      std::vector<int8_t> x = random_i8(size_t(rows * C), rng);
      for (int64_t r = 0; r < 256; ++r)
        for (int64_t c = 0; c < C; ++c) x[size_t(r * C + c)] = int8_t(uint8_t((r + 7 * c) & 255));
      const ChannelScales cs(C, act, 13, rng);
      QScale q = cs.qscale(int32_t(C % 7) - 3, act);
      q.input = x.data();
      for (const NamedScale& v : variants) {
        std::vector<int8_t> direct(size_t(rows * C)), table(size_t(256 * C), int8_t(99));
        q.output = direct.data();
        v.fn(q, 0, rows);
        const int64_t split = C / 3;
        qscale_table(v.fn, q, 0, split, table.data());
        qscale_table(v.fn, q, split, C, table.data());
        std::vector<int8_t> looked_up(size_t(rows * C) + 8, int8_t(99));
        qchannel_lookup(x.data(), C, rows, table.data(), looked_up.data());
        const bool same = std::equal(direct.begin(), direct.end(), looked_up.begin());
        CHECK(same);
        if (!same) std::fprintf(stderr, "  %s lookup C=%ld act=%d differs from the apply pass\n", v.name, long(C),
                                int(act));
        CHECK(std::all_of(looked_up.begin() + rows * C, looked_up.end(), [](int8_t b) { return b == 99; }));
        ++compared;
      }
    }
  std::printf("channel lookup: %d variant runs equal to the direct apply pass\n", compared);
  CHECK(compared >= 45);
}

// The int8 squeeze-excitation's per-channel sums: the scalar reference equals int64 sums by hand, and every SIMD
// variant equals the reference exactly, over channel counts around every vector width and the 64-channel passes
// (X3D's 54 to 432 included), row counts from 1 up, and the largest row count at the int8 extremes (sums of
// -128 * 2^16 and 127 * 2^16: exact float integers below 2^24). Every variant leaves the floats past `channels` alone.
void channel_sums_exact(std::mt19937& rng) {
  const std::vector<NamedScale> variants = scale_variants();
  int compared = 0;
  for (int64_t C : {1, 3, 4, 7, 8, 15, 16, 17, 24, 31, 33, 54, 63, 64, 65, 108, 127, 128, 129, 216, 432})
    for (int64_t rows : {int64_t(1), int64_t(2), int64_t(5), 64 + C % 7, int64_t(300)}) {
      const auto x = random_i8(size_t(rows * C), rng);
      std::vector<float> ref(size_t(C) + 8, -7.0f);
      qchannel_sums_scalar(x.data(), C, rows, ref.data());
      for (int64_t c = 0; c < C; ++c) {
        int64_t sum = 0;
        for (int64_t r = 0; r < rows; ++r) sum += x[size_t(r * C + c)];
        CHECK(ref[size_t(c)] == float(sum));
      }
      CHECK(std::all_of(ref.begin() + C, ref.end(), [](float v) { return v == -7.0f; }));
      for (const auto& v : variants) {
        std::vector<float> got(size_t(C) + 8, -7.0f);
        v.sums(x.data(), C, rows, got.data());
        CHECK(std::equal(ref.begin(), ref.end(), got.begin()));
        ++compared;
      }
    }
  for (int extreme : {-128, 127})
    for (int64_t C : {3, 54}) {
      const int64_t rows = qchannel_sums_max_rows;
      const std::vector<int8_t> x(static_cast<size_t>(rows * C), int8_t(extreme));
      auto all_exact = [&](QChannelSumsFn fn) {
        std::vector<float> got(static_cast<size_t>(C));
        fn(x.data(), C, rows, got.data());
        return std::all_of(got.begin(), got.end(), [&](float v) { return v == float(extreme * rows); });
      };
      CHECK(all_exact(qchannel_sums_scalar));
      for (const auto& v : variants) {
        CHECK(all_exact(v.sums));
        ++compared;
      }
    }
  std::printf("channel sums: %d variant runs equal to the reference\n", compared);
  CHECK(variants.empty() || compared >= 100);
}

#if defined(__x86_64__)
// `content` copied to the end of a mapping whose next page is inaccessible: reading one byte past it faults.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(const std::vector<int8_t>& content) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE)), n = content.size();
    size_ = ((n + page - 1) / page + 1) * page;
    base_ = static_cast<char*>(mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHECK(base_ != MAP_FAILED);
    CHECK(mprotect(base_ + size_ - page, page, PROT_NONE) == 0);
    data_ = reinterpret_cast<int8_t*>(base_ + size_ - page - n);
    std::memcpy(data_, content.data(), n);
  }
  ~GuardedBuffer() { munmap(base_, size_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  const int8_t* data() const { return data_; }

 private:
  char* base_ = nullptr;
  size_t size_ = 0;
  int8_t* data_ = nullptr;
};

// Input and packed weights that end right before an unmapped page, at the shapes whose tiles would read past them
// (C_in not a multiple of 4 or 64, C_out not a multiple of 16, fewer than 32 positions at the end): no fault, and the
// VNNI variant's outputs bit for bit.
void amx_stays_inside_buffers(std::mt19937& rng) {
  int index = 0;
  for (int64_t ci : {1, 3, 24, 54, 64, 66, 108})
    for (int64_t co : {1, 16, 17, 54})
      for (int64_t positions : {1, 7, 45}) {
        Conv3dShape s;
        s.batch = 1; s.in_channels = ci; s.out_channels = co; s.in_t = s.in_h = 1; s.in_w = positions;
        const size_t out_n = size_t(positions * co);
        const auto x = random_i8(size_t(positions * ci), rng);
        const auto w = random_i8(size_t(co * ci), rng, -127, 127);
        std::vector<int8_t> packed;
        std::vector<int32_t> sums;
        pack(w, co, ci, 1, packed, sums);
        const QParams p = make_qparams(co, out_n, ci, index++, rng);
        const std::vector<int8_t> pad_row(size_t(ci), int8_t(p.q.input_zero_point));
        const GuardedBuffer gx(x), gw(packed);
        std::vector<int8_t> got(out_n), vnni(out_n), ref(out_n);
        qconv3d_amx_pointwise(s, gx.data(), gw.data(), sums.data(), p.q, pad_row.data(), got.data(), 0, s.items());
        qconv3d_avx512vnni(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), vnni.data(), 0, s.items());
        qconv3d_scalar(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), ref.data(), 0, s.items());
        CHECK(got == vnni);
        CHECK(diff(got, ref, out_n).max <= 1);
      }
  // The multi-tap kernel reads its weights in place (C_out a multiple of 16, whole K chunks) or from a padded copy:
  // weights that end right before an inaccessible page (the input is copied into the kernel's padded buffer).
  for (int64_t ci : {32, 64, 100})
    for (int64_t co : {16, 17, 48}) {
      Conv3dShape s;
      s.batch = 1; s.in_channels = ci; s.out_channels = co; s.in_t = 2; s.in_h = 3; s.in_w = 5;
      s.kernel_t = 3; s.kernel_h = s.kernel_w = 3; s.pad_t = s.pad_h = s.pad_w = 1;
      const size_t out_n = size_t(s.rows() * s.out_w() * co);
      const auto x = random_i8(size_t(2 * 3 * 5 * ci), rng);
      const auto w = random_i8(size_t(co * ci * 27), rng, -127, 127);
      std::vector<int8_t> packed;
      std::vector<int32_t> sums;
      pack(w, co, ci, 27, packed, sums);
      const QParams p = make_qparams(co, out_n, ci * 27, index++, rng);
      const std::vector<int8_t> pad_row(size_t(ci), int8_t(p.q.input_zero_point));
      const GuardedBuffer gx(x), gw(packed);
      std::vector<int8_t> got(out_n), vnni(out_n);
      qconv3d_amx_multitap(s, gx.data(), gw.data(), sums.data(), p.q, pad_row.data(), got.data(), 0, s.items());
      qconv3d_avx512vnni(s, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), vnni.data(), 0, s.items());
      CHECK(got == vnni);
    }
}

// The table takes AMX at the avx512 level unless PYVIDEO_AMX=0 (read at every fill); the AMX entry routes
// non-pointwise shapes to VNNI (compare_dense runs it on every shape).
void amx_dispatch() {
  const char* saved = std::getenv("PYVIDEO_AMX");
  const std::string restore = saved ? saved : "";
  setenv("PYVIDEO_AMX", "0", 1);
  select_isa(Isa::avx512);
  CHECK(std::string(kernel_table().qconv3d_name) == "avx512vnni");
  CHECK(kernel_table().qconv3d == qconv3d_avx512vnni);
  setenv("PYVIDEO_AMX", "1", 1);
  select_isa(Isa::avx512);
  CHECK(std::string(kernel_table().qconv3d_name) == "amx+avx512vnni");
  CHECK(kernel_table().qconv3d == qconv3d_amx);
  Conv3dShape layer;  // X3D-XS's s1 c (54->24 on 4x40x40) takes AMX; the same on 8 positions, or 3x3, does not
  layer.batch = 1; layer.in_channels = 54; layer.out_channels = 24; layer.in_t = 4; layer.in_h = layer.in_w = 40;
  CHECK(amx_pays(layer.flatten_pointwise()));
  Conv3dShape few = layer;
  few.in_t = few.in_h = 1; few.in_w = 8;
  CHECK(!amx_pays(few));
  Conv3dShape spatial = layer;
  spatial.kernel_h = spatial.kernel_w = 3;
  CHECK(!amx_pays(spatial));
  if (saved) setenv("PYVIDEO_AMX", restore.c_str(), 1);
  else unsetenv("PYVIDEO_AMX");
  select_isa(best_isa());
}
#endif

}  // namespace

int main() {
  std::mt19937 rng(99);
  std::printf("int8 dense variants:");
  for (const Named& v : dense_variants()) std::printf(" %s", v.name);
  std::printf("\n");

  // Hand-checked reference: one column, 5 input channels (a K tail), x = [1..5], zero point 2, weights all 1 for
  // output 0 and [1,-1,1,-1,1] for output 1, bias [10, 0], dequant 0.5, output scale 1, zp 0:
  // acc0 = 10 + (-1+0+1+2+3) = 15 -> 7.5 -> 8 (half to even); acc1 = (-1-0+1-2+3) = 1 -> 0.5 -> 0 (half to even).
  {
    Conv3dShape s;
    s.batch = 1; s.in_channels = 5; s.out_channels = 2; s.in_t = s.in_h = s.in_w = 1;
    const std::vector<int8_t> x = {1, 2, 3, 4, 5};
    const std::vector<int8_t> w = {1, 1, 1, 1, 1, 1, -1, 1, -1, 1};
    std::vector<int8_t> packed;
    std::vector<int32_t> sums;
    pack(w, 2, 5, 1, packed, sums);
    const int32_t bias[2] = {10, 0};
    const float bias_f[2] = {10, 0}, dq[2] = {0.5f, 0.5f};
    Requant q;
    q.input_zero_point = 2; q.bias = bias; q.bias_float = bias_f; q.dequant_scale = dq;
    const std::vector<int8_t> pad_row(5, 2);
    int8_t y[2] = {0, 0};
    qconv3d_scalar(s, x.data(), packed.data(), sums.data(), q, pad_row.data(), y, 0, s.items());
    CHECK(y[0] == 8);
    CHECK(y[1] == 0);
    for (const Named& v : dense_variants()) {
      int8_t z[2] = {0, 0};
      v.fn(s, x.data(), packed.data(), sums.data(), q, pad_row.data(), z, 0, s.items());
      CHECK(z[0] == 8 && z[1] == 0);
    }
    // Per channel: scales [2, 0.25], zero points [-1, 5]: 7.5 / 2 = 3.75 -> 4 - 1 = 3; 0.5 / 0.25 = 2 -> 2 + 5 = 7.
    const float out_scales[2] = {2.0f, 0.25f}, out_inverse[2] = {0.5f, 4.0f}, out_zps[2] = {-1.0f, 5.0f};
    q.output_scales = out_scales;
    q.output_inverse_scales = out_inverse;
    q.output_zero_points = out_zps;
    qconv3d_scalar(s, x.data(), packed.data(), sums.data(), q, pad_row.data(), y, 0, s.items());
    CHECK(y[0] == 3 && y[1] == 7);
    for (const Named& v : dense_variants()) {
      int8_t z[2] = {0, 0};
      v.fn(s, x.data(), packed.data(), sums.data(), q, pad_row.data(), z, 0, s.items());
      CHECK(z[0] == 3 && z[1] == 7);
    }
  }
  // The same per-channel requantization through the depthwise kernels on a squeeze-excitation-like 1x1x1 layer (the
  // weights are a gate of 1, the dequant scale carries it): 3 channels, x = [6, -3, 100], zero point 1, dequant
  // [0.5, 2, 0.01], scales [0.5, 3, 0.125], zero points [2, -4, 100]: 2.5 / 0.5 = 5 -> 7; -8 / 3 = -2.67 -> -3 - 4 =
  // -7; 0.99 / 0.125 = 7.92 -> 8 + 100 = 108.
  {
    DwConv3dShape s;
    s.batch = 1; s.channels = 3; s.in_t = s.in_h = s.in_w = 1;
    const int8_t x[3] = {6, -3, 100}, w[3] = {1, 1, 1};
    const int32_t bias[3] = {0, 0, 0};
    const float bias_f[3] = {0, 0, 0}, dq[3] = {0.5f, 2.0f, 0.01f};
    const float out_scales[3] = {0.5f, 3.0f, 0.125f}, out_inverse[3] = {2.0f, 1.0f / 3.0f, 8.0f};
    const float out_zps[3] = {2.0f, -4.0f, 100.0f};
    Requant q;
    q.input_zero_point = 1; q.bias = bias; q.bias_float = bias_f; q.dequant_scale = dq;
    q.output_scales = out_scales; q.output_inverse_scales = out_inverse; q.output_zero_points = out_zps;
    int8_t y[3] = {0, 0, 0};
    qdwconv3d_scalar(s, x, w, q, y, 0, s.rows());
    CHECK(y[0] == 7 && y[1] == -7 && y[2] == 108);
    for (const NamedDw& v : depthwise_variants()) {
      int8_t z[3] = {0, 0, 0};
      v.fn(s, x, w, q, z, 0, s.rows());
      CHECK(z[0] == 7 && z[1] == -7 && z[2] == 108);
    }
  }

  // Quotients beyond the int32 range (an output scale of 1e-30, per tensor and per channel): every output saturates,
  // 127 for a positive value and -128 for a negative one (the zero point for an exact zero), in every variant as in
  // the reference. A float -> int32 conversion of such a quotient gives INT_MIN, so a kernel that clamps only the low
  // end, or narrows with saturation alone, stores -128 for the positive ones.
  {
    std::mt19937 sat_rng(5);
    Conv3dShape ds;
    ds.batch = 1; ds.in_channels = 24; ds.out_channels = 54;
    set_geometry(ds, {2, 3, 9}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0});
    DwConv3dShape ws;
    ws.batch = 1; ws.channels = 54;
    set_geometry(ws, {2, 4, 9}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1});
    // both layers have 54 output channels
    const std::vector<float> scales(54, 1e-30f), inverse(54, 1e30f), zps(54, -2.0f);
    for (int per_channel = 0; per_channel < 2; ++per_channel)
      for (Activation act : {Activation::identity, Activation::relu, Activation::swish}) {
        // no residual, this activation, every quotient beyond int32 (per tensor, or per channel)
        auto saturating = [&](Requant& q) {
          q.residual = nullptr;
          q.activation = act;
          q.output_scale = 1e-30f;
          q.output_zero_point = 3;
          if (per_channel) {
            q.output_scales = scales.data();
            q.output_inverse_scales = inverse.data();
            q.output_zero_points = zps.data();
          }
        };
        // dense pointwise
        const size_t out_n = size_t(ds.rows() * ds.out_w() * ds.out_channels);
        const auto x = random_i8(size_t(ds.in_t * ds.in_h * ds.in_w * ds.in_channels), sat_rng);
        const auto w = random_i8(size_t(ds.out_channels * ds.in_channels), sat_rng, -127, 127);
        std::vector<int8_t> packed;
        std::vector<int32_t> sums;
        pack(w, ds.out_channels, ds.in_channels, 1, packed, sums);
        QParams p = make_qparams(ds.out_channels, out_n, ds.in_channels, 0, sat_rng);
        saturating(p.q);
        const std::vector<int8_t> pad_row(size_t(ds.in_channels), int8_t(p.q.input_zero_point));
        std::vector<int8_t> ref(out_n);
        qconv3d_scalar(ds, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), ref.data(), 0, ds.items());
        int top = 0;
        for (int8_t v : ref) top += v == 127;
        CHECK(top > int(out_n) / 4);  // the positive ones (relu takes the negative ones to the zero point)
        for (const Named& v : dense_variants()) {
          std::vector<int8_t> got(out_n, int8_t(99));
          v.fn(ds, x.data(), packed.data(), sums.data(), p.q, pad_row.data(), got.data(), 0, ds.items());
          CHECK(got == ref);
          if (got != ref) std::fprintf(stderr, "  %s saturation, per channel %d, act %d\n", v.name, per_channel, int(act));
        }
        // depthwise 3x3x3
        const size_t dw_n = size_t(ws.rows() * ws.out_w() * ws.channels);
        const auto dx = random_i8(size_t(ws.in_t * ws.in_h * ws.in_w * ws.channels), sat_rng);
        const auto dw = random_i8(size_t(27 * ws.channels), sat_rng, -127, 127);
        QParams dp = make_qparams(ws.channels, dw_n, 27 * 4, 0, sat_rng);
        saturating(dp.q);
        std::vector<int8_t> dref(dw_n);
        qdwconv3d_scalar(ws, dx.data(), dw.data(), dp.q, dref.data(), 0, ws.rows());
        for (const NamedDw& v : depthwise_variants()) {
          std::vector<int8_t> got(dw_n, int8_t(99));
          v.fn(ws, dx.data(), dw.data(), dp.q, got.data(), 0, ws.rows());
          CHECK(got == dref);
          if (got != dref)
            std::fprintf(stderr, "  %s depthwise saturation, per channel %d, act %d\n", v.name, per_channel, int(act));
        }
      }
  }

  struct Case { int ci, co; int size[3]; int k[3]; int stride[3]; int pad[3]; };
  const Case dense[] = {
      {24, 54, {2, 5, 7}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {54, 24, {1, 3, 70}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {17, 33, {3, 4, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {1, 1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {64, 48, {1, 2, 9}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {12, 9, {3, 6, 6}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}},
      {3, 24, {2, 9, 11}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}},
      {5, 7, {3, 5, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
      {6, 5, {2, 4, 4}, {1, 1, 1}, {1, 1, 1}, {0, 1, 2}},
      {30, 3, {1, 3, 23}, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}},
      // the RGB stem (folded kernel rows, border columns on both sides) and other C_in not a multiple of 4
      {3, 24, {2, 10, 21}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}},
      {3, 24, {1, 7, 8}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      {5, 9, {2, 5, 9}, {1, 3, 3}, {1, 2, 1}, {0, 0, 2}},
      {7, 16, {3, 4, 11}, {3, 3, 3}, {2, 1, 2}, {1, 1, 1}},
      // C_in 1-3 (plain AVX2: the fp32 kernel on widened input windows where C_out fills whole vectors,
      // qconv3d_widened.h), rows of more than one 64-column item (item ranges that start and end inside rows),
      // `make demo`'s 3x3x3 stem, a temporal stride, a 1x7x7 stem, and C_out 12 (the dot kernel)
      {3, 16, {3, 4, 140}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
      {3, 24, {2, 5, 150}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}},
      {1, 8, {4, 6, 7}, {3, 3, 3}, {2, 1, 1}, {1, 1, 1}},
      {2, 32, {2, 5, 9}, {1, 5, 5}, {1, 1, 2}, {0, 2, 2}},
      {3, 64, {1, 9, 20}, {1, 7, 7}, {1, 2, 2}, {0, 3, 3}},
      {2, 12, {2, 5, 9}, {1, 5, 5}, {1, 1, 2}, {0, 2, 2}},
      {54, 24, {1, 2, 13}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {6, 17, {2, 6, 7}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}},
      // X3D widths: remainder tiles of every size after the full ones
      {24, 48, {2, 4, 5}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}},
      {8, 108, {1, 3, 9}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {12, 216, {1, 2, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {16, 432, {1, 1, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {4, 96, {1, 3, 7}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}},
      // pointwise at X3D widths (AMX: K in several chunks, C_out tails, positions not a multiple of 32)
      {108, 48, {2, 3, 13}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {216, 96, {1, 4, 9}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {432, 192, {1, 2, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {96, 216, {1, 2, 7}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {66, 31, {1, 3, 11}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {130, 17, {1, 1, 37}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      // multi-tap stride-1 convs for the AMX tap kernel: ResNet's 1x3x3 and 3x1x1 at small sizes, several K chunks
      // (C_in 100, 260), C_out tails, padding wider than the kernel, rows of more than 64 columns, short rows
      // several per 32-position panel
      {64, 64, {2, 7, 7}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      {100, 40, {4, 5, 6}, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}},
      {260, 48, {2, 3, 4}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      {33, 17, {3, 4, 5}, {3, 3, 3}, {1, 1, 1}, {1, 2, 1}},
      {32, 100, {1, 2, 70}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      {48, 16, {2, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0}},
      // strided ones for the gathered-rows path: a stage's first 1x3x3 (stride 2), strided projections, odd strides
      {64, 32, {2, 9, 11}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}},
      {100, 64, {2, 7, 8}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}},
      {40, 20, {5, 6, 7}, {3, 3, 3}, {2, 3, 1}, {1, 1, 2}},
      // int8 weights between presplit_max_weight_bytes and 1 MB (plain AVX2: the unsplit weights, the last tile moved
      // back to whole vectors; every other layer here splits them): 1x3x3, 702 KB, a C_out tail
      {300, 260, {1, 3, 6}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      // int8 weights above 1 MB (qconv3d_simd's grouped items and, on x86, reductions in parts; few positions to
      // keep the scalar reference cheap): a temporal conv with C_in not a multiple of 4 and a C_out tail, a spatial
      // one on rows of 4 columns, a strided projection whose reduction is two full parts and a short one
      {702, 520, {3, 2, 3}, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}},
      {256, 500, {1, 3, 4}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      {1040, 1040, {1, 5, 5}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}},
      // at most 8 output channels (AVX-512: paired groups): SlowFast's fast stem (3 -> 8, 5x7x7, 6 groups a line)
      // and 8-channel convs, odd group counts (3, 5 and 7 a line: a zero-weight group reads the spare bytes), one
      // group, rows wider than a tile
      {3, 8, {6, 12, 14}, {5, 7, 7}, {1, 2, 2}, {2, 3, 3}},
      {8, 8, {4, 5, 9}, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}},
      {8, 8, {2, 6, 9}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      {32, 8, {2, 4, 9}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {3, 5, {2, 7, 9}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},
      {5, 3, {2, 5, 11}, {1, 3, 4}, {1, 2, 2}, {0, 1, 2}},
      {7, 8, {3, 4, 11}, {3, 3, 4}, {2, 1, 2}, {1, 1, 1}},
      {4, 1, {2, 3, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {16, 8, {1, 3, 90}, {1, 3, 3}, {1, 1, 2}, {0, 1, 1}},
      // matrix-vector products (qconv3d_is_gemv: pointwise, at most 4 positions with the batch): X3D's head
      // 432 -> 2048 and a 2048 -> 400 classifier (panels of 8 groups and channel tails), C_in not a multiple of 4 or of
      // the panel, at most 8 output channels, 2 and 4 positions
      {432, 2048, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {2048, 400, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {37, 50, {1, 1, 2}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {130, 7, {1, 2, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
      {3, 17, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
  };
  int index = 0;
  for (const Case& c : dense)
    for (int v = 0; v < 5; ++v, ++index) {
      Conv3dShape s;
      s.batch = 1 + index % 2; s.in_channels = c.ci; s.out_channels = c.co;
      set_geometry(s, c.size, c.k, c.stride, c.pad);
      compare_dense(s, index, rng);
    }
  // Random narrow layers (C_in 1-3: plain AVX2's widened path where the sums stay exact, the dot kernel beyond):
  // kernels up to 5x5x7, strides up to 3, any padding below the kernel, rows up to 150 columns, batches of 1-2.
  {
    std::uniform_int_distribution<int> ci_dist(1, 3), co_dist(1, 40), k_dist(1, 5), stride_dist(1, 3);
    for (int r = 0; r < 24; ++r, ++index) {
      Conv3dShape s;
      s.batch = 1 + r % 2; s.in_channels = ci_dist(rng);
      s.out_channels = r % 3 ? 8 * (1 + co_dist(rng) % 5) : co_dist(rng);  // mostly whole vectors (widened path)
      int size[3], k[3] = {k_dist(rng), k_dist(rng), k_dist(rng) + r % 3}, stride[3], pad[3];
      for (int d = 0; d < 3; ++d) {
        pad[d] = std::uniform_int_distribution<int>(0, k[d] - 1)(rng);
        stride[d] = stride_dist(rng);
        const int lo = std::max(1, k[d] - 2 * pad[d]);  // at least one output
        size[d] = std::uniform_int_distribution<int>(lo, d == 2 ? lo + 140 : lo + 6)(rng);
      }
      if (k[0] * k[1] * k[2] == 1) k[2] = 2, size[2] = std::max(size[2], 2);  // not pointwise
      set_geometry(s, size, k, stride, pad);
      compare_dense(s, index, rng);
    }
  }
  const int dw_kernels[][3] = {{3, 3, 3}, {5, 1, 1}, {1, 3, 3}, {1, 1, 1}};
  const int dw_channels[] = {1, 8, 17, 54};
  for (auto& k : dw_kernels)
    for (int c : dw_channels)
      for (int stride = 1; stride <= 2; ++stride, ++index) {
        DwConv3dShape s;
        s.batch = 1; s.channels = c; s.in_t = 3; s.in_h = 7; s.in_w = 9;
        s.kernel_t = k[0]; s.kernel_h = k[1]; s.kernel_w = k[2];
        s.stride_h = s.stride_w = stride;
        s.pad_t = k[0] / 2; s.pad_h = k[1] / 2; s.pad_w = k[2] / 2;
        compare_depthwise(s, index, rng);
      }
  // Depthwise at X3D widths and shapes, plus kernels 2 and 4 wide, uneven pads and strides, odd output widths (every
  // register block size, 1 to 17 columns), batches of 2.
  struct DwCase { int c; int size[3]; int k[3]; int stride[3]; int pad[3]; int batch; };
  const DwCase dw_cases[] = {
      {54, {4, 8, 8}, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}, 1},
      {54, {4, 6, 10}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 2},
      {108, {3, 5, 5}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 1},
      {216, {2, 4, 9}, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}, 1},
      {24, {5, 3, 17}, {5, 1, 1}, {1, 1, 1}, {2, 0, 0}, 1},
      {33, {3, 4, 3}, {2, 2, 2}, {1, 1, 1}, {1, 0, 1}, 2},
      {17, {2, 3, 12}, {1, 3, 4}, {1, 1, 3}, {0, 1, 2}, 1},
      {40, {6, 3, 2}, {3, 3, 3}, {2, 1, 1}, {1, 1, 1}, 1},
      {70, {2, 2, 19}, {1, 1, 3}, {1, 1, 1}, {0, 0, 0}, 1},
      {5, {3, 5, 7}, {3, 3, 3}, {1, 2, 2}, {0, 2, 2}, 1},
      {20, {2, 3, 9}, {1, 3, 5}, {1, 1, 2}, {0, 1, 2}, 1},
      {16, {1, 1, 1}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 1},
      // temporal-only kernels (kt x 1 x 1, the dot kernels' flat rows with tiled weights): X3D's 5x1x1 stem conv with
      // a batch, a strided 3x1x1, an unpadded 2x1x1 whose channel period outgrows a row
      {24, {4, 6, 7}, {5, 1, 1}, {1, 1, 1}, {2, 0, 0}, 2},
      {40, {6, 2, 3}, {3, 1, 1}, {2, 1, 1}, {1, 0, 0}, 1},
      {33, {3, 2, 5}, {2, 1, 1}, {1, 1, 1}, {0, 0, 0}, 2},
      // more output planes than the dot kernel takes in one pass
      {8, {19, 2, 3}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 1},
      {4, {40, 2, 2}, {3, 1, 3}, {2, 1, 1}, {1, 0, 1}, 2},
  };
  for (const DwCase& c : dw_cases)
    for (int v = 0; v < 2; ++v, ++index) {
      DwConv3dShape s;
      s.batch = c.batch; s.channels = c.c + v;  // and one more channel: another tail
      set_geometry(s, c.size, c.k, c.stride, c.pad);
      compare_depthwise(s, index, rng);
    }
  for (int w = 1; w <= 17; ++w, ++index) {
    DwConv3dShape s;
    s.batch = 1; s.channels = 16 * (1 + w % 3) + w % 5; s.in_t = 2; s.in_h = 3; s.in_w = w;
    s.kernel_t = s.kernel_h = s.kernel_w = 3;
    s.pad_t = s.pad_h = s.pad_w = 1;
    compare_depthwise(s, index, rng);
  }
  depthwise_positions_are_line_order(rng);
  equal_channels_equal_per_tensor(rng);
  channel_scaled_activation(rng);
  channel_sums_exact(rng);
  channel_lookup_equals_the_apply_pass(rng);
  float_outputs(rng);
  narrow_layers_exact_sums(rng);
  depthwise_exact_sums(rng);
  channel_ranges_equal_layer(rng);
#if defined(__x86_64__)
  if (amx_usable()) {
    amx_stays_inside_buffers(rng);
    amx_dispatch();
    std::printf("amx pointwise: %d shape/split runs equal to avx512vnni\n", amx_pointwise_checks);
    CHECK(amx_pointwise_checks > 100);
    std::printf("amx multi-tap: %d shape/split runs equal to avx512vnni\n", amx_multitap_checks);
    CHECK(amx_multitap_checks > 50);
    std::printf("amx narrow lines: %d shape/split runs equal to avx512vnni\n", amx_lines_checks);
    CHECK(amx_lines_checks > 30);
    Conv3dShape routed;  // a ResNet-like strided 1x3x3 conv takes AMX; the RGB stem (C_in = 3) stays on VNNI
    routed.batch = 1, routed.in_channels = 64, routed.out_channels = 64, routed.in_t = 8, routed.in_h = 16;
    routed.in_w = 16, routed.kernel_h = routed.kernel_w = 3, routed.stride_h = routed.stride_w = 2;
    routed.pad_h = routed.pad_w = 1;
    CHECK(amx_taps_pays(routed) && !amx_pays(routed));
    routed.in_channels = 3, routed.in_h = routed.in_w = 32;
    CHECK(!amx_taps_pays(routed) && !amx_lines_pays(routed));  // an RGB stem of 3 lines at 64 channels: VNNI
    routed.out_channels = 24;                                   // ... at 24 (X3D's), or of 15 lines: AMX
    CHECK(amx_lines_pays(routed));
    routed.out_channels = 64, routed.kernel_t = 5, routed.kernel_h = routed.kernel_w = 7, routed.pad_t = 2;
    routed.pad_h = routed.pad_w = 3;
    CHECK(amx_lines_pays(routed));
    routed.kernel_w = 1, routed.pad_w = 0;  // one column: nothing to fold
    CHECK(!amx_lines_pays(routed));
  } else {
    std::printf("amx: not available here (cpu features: %s), its checks skipped\n", cpu_features().to_string().c_str());
  }
#endif
  std::printf("dense: %ld/%ld outputs off by 1 LSB; depthwise: %ld/%ld\n", long(total_dense.inexact),
              long(total_dense.total), long(total_dw.inexact), long(total_dw.total));
  std::printf("per-channel outputs (within the above): %ld/%ld off by 1 LSB\n", long(total_per_channel.inexact),
              long(total_per_channel.total));
  CHECK(total_per_channel.total > 0 && total_per_channel.inexact * 100 <= total_per_channel.total);
  CHECK(total_dense.inexact * 100 <= total_dense.total);
  CHECK(total_dw.inexact * 100 <= total_dw.total);
  return check::finish("test_kernels_qconv3d");
}
