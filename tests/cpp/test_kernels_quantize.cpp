// The float32 -> int8 span quantization and the range pass (kernels/cpu/int8/quantize.h): the scalar reference
// against hand-computed bytes, and every SIMD variant of this CPU against the reference, byte for byte: random
// values at several magnitudes, rounding ties of x / scale and their neighbours, a strided sweep over every float
// bit pattern (NaN, infinities, subnormals, huge values), scales outside the reciprocal route, unaligned spans of
// every tail length with guard bytes; the ranges exactly, with NaN and infinities reported, and so by the quantize
// pass (its return value) wherever in the span they are.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/int8/quantize.h"

using namespace pyvideo::kernels;

namespace {

struct Variant {
  const char* name;
  QuantizeF32Fn quantize;
  RangeF32Fn range;
};

std::vector<Variant> simd_variants() {
  std::vector<Variant> out;
  for (Isa isa : supported_isas()) {
    switch (isa) {
#if defined(__x86_64__)
      case Isa::avx2: out.push_back({"avx2", quantize_f32_avx2, range_f32_avx2}); break;
      case Isa::avx512: out.push_back({"avx512", quantize_f32_avx512, range_f32_avx512}); break;
#endif
#if defined(__aarch64__)
      case Isa::neon: out.push_back({"neon", quantize_f32_neon, range_f32_neon}); break;
#endif
      default: break;
    }
  }
  return out;
}

const float kScales[] = {0.0123456f, 1.0f, 0.1f, 1.99999988f, 3.0f, 1e-8f, 7.3e-5f, 0.5f, 85.0f, 0.007843137f,
                         1.0f / 255.0f, 4.2e-3f, 0.99999994f, 1e20f};
const float kZeroPoints[] = {-128.0f, -7.0f, 0.0f, 77.0f, 127.0f};

// Quantizes `x` with the reference and with `v` (from a few misaligned starts, guard bytes after the span) and
// counts the differing bytes; the guard bytes must stay untouched.
int64_t mismatches(const Variant& v, const std::vector<float>& x, float scale, float zp, int offset = 0) {
  const int64_t n = int64_t(x.size());
  std::vector<float> src(static_cast<size_t>(n + 4));
  if (n > 0) std::memcpy(src.data() + offset, x.data(), x.size() * sizeof(float));
  std::vector<int8_t> want(static_cast<size_t>(n)), got(static_cast<size_t>(n + 40), int8_t(0x5a));
  const float want_flag = quantize_f32_scalar(x.data(), want.data(), n, scale, zp);
  const float got_flag = v.quantize(src.data() + offset, got.data() + offset, n, scale, zp);
  int64_t bad = 0;
  // The non-finite report: 0 for finite spans, NaN for the others, as the reference says.
  if (!(want_flag == 0.0f || std::isnan(want_flag)) || std::isnan(want_flag) != std::isnan(got_flag)) {
    std::fprintf(stderr, "  %s: non-finite report %g, reference %g\n", v.name, double(got_flag), double(want_flag));
    ++bad;
  }
  for (int64_t k = 0; k < n; ++k) bad += got[size_t(offset + k)] != want[size_t(k)];
  for (int64_t k = 0; k < offset; ++k) bad += got[size_t(k)] != int8_t(0x5a);
  for (int64_t k = offset + n; k < n + 40; ++k) bad += got[size_t(k)] != int8_t(0x5a);
  if (bad) std::fprintf(stderr, "  %s: %lld of %lld bytes differ (scale %a, zp %g)\n", v.name, (long long)bad,
                        (long long)n, double(scale), double(zp));
  return bad;
}

void reference_by_hand() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // scale 0.5, zero point 3: 0.25 -> 0.5 -> 0 (half to even) -> 3; 0.75 -> 1.5 -> 2 -> 5; -0.25 -> -0.5 -> -0 -> 3;
  // 1.25 -> 2.5 -> 2 -> 5; 63 -> 126 + 3 -> 127 (saturated); huge, NaN and infinities saturate (NaN low).
  const float x[] = {0.25f, 0.75f, -0.25f, 1.25f, 63.0f, -70.0f, 1e30f, -1e30f, nan, inf, -inf, 2.0f};
  const int8_t want[] = {3, 5, 3, 5, 127, -128, 127, -128, -128, 127, -128, 7};
  int8_t got[12];
  CHECK(std::isnan(quantize_f32_scalar(x, got, 12, 0.5f, 3.0f)));  // NaN and infinities are reported
  for (int i = 0; i < 12; ++i) CHECK(got[i] == want[i]);
  CHECK(quantize_f32_scalar(x, got, 8, 0.5f, 3.0f) == 0.0f);  // 1e30 is finite
  CHECK(std::isnan(quantize_f32_scalar(x + 8, got, 1, 0.5f, 3.0f)));
  CHECK(std::isnan(quantize_f32_scalar(x + 9, got, 1, 0.5f, 3.0f)));
  CHECK(std::isnan(quantize_f32_scalar(x + 10, got, 1, 0.5f, 3.0f)));
  const QuantRange r = range_f32_scalar(x, 6);
  CHECK(r.lo == -70.0f && r.hi == 63.0f && r.non_finite == 0.0f);
  const float positive[] = {1.0f, 2.0f}, negative[] = {-1.0f, -2.0f};
  CHECK(range_f32_scalar(positive, 2).lo == 0.0f);
  CHECK(range_f32_scalar(negative, 2).hi == 0.0f);
  CHECK(std::isnan(range_f32_scalar(x + 8, 1).non_finite));
  CHECK(std::isnan(range_f32_scalar(x + 9, 1).non_finite));
}

void quantize_matches_reference(const Variant& v, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Random values at several magnitudes, every tail length, misaligned starts.
  for (float scale : kScales)
    for (float magnitude : {1e-3f, 1.0f, 300.0f})
      for (int offset = 0; offset < 4; ++offset) {
        std::vector<float> x(size_t(1000 + offset * 37));
        for (float& e : x) e = normal(rng) * magnitude * scale * 40.0f;
        CHECK(mismatches(v, x, scale, kZeroPoints[size_t(offset) % 5], offset) == 0);
      }
  for (int64_t n = 0; n <= 80; ++n) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& e : x) e = normal(rng) * 2.0f;
    CHECK(mismatches(v, x, 0.0123456f, -3.0f, int(n % 4)) == 0);
  }
  // Rounding ties of x / scale (x = (k + 1/2) * scale as computed in float) and their neighbours within 3 ulps.
  for (float scale : kScales) {
    std::vector<float> x;
    for (int k = -300; k <= 300; ++k) {
      float t = (float(k) + 0.5f) * scale;
      x.push_back(t);
      float up = t, down = t;
      for (int j = 0; j < 3; ++j) {
        up = std::nextafter(up, std::numeric_limits<float>::infinity());
        down = std::nextafter(down, -std::numeric_limits<float>::infinity());
        x.push_back(up);
        x.push_back(down);
      }
    }
    for (float zp : kZeroPoints) CHECK(mismatches(v, x, scale, zp) == 0);
  }
  // Every 4099th float bit pattern (about a million): NaNs, infinities, subnormals, zeros of both signs, huge values.
  for (float scale : {0.0123456f, 1.0f, 3.0f, 7.3e-5f}) {
    std::vector<float> x;
    for (uint64_t bits = 0; bits < (uint64_t(1) << 32); bits += 4099) {
      const uint32_t b = uint32_t(bits);
      float f;
      std::memcpy(&f, &b, sizeof f);
      x.push_back(f);
    }
    CHECK(mismatches(v, x, scale, 11.0f) == 0);
  }
  // Scales outside the reciprocal route (they divide) and at its ends.
  for (float scale : {1e-25f, 0x1p-60f, 0x1p60f, 1e25f, std::numeric_limits<float>::denorm_min() * 8.0f}) {
    std::vector<float> x(300);
    for (float& e : x) e = normal(rng) * scale * 50.0f;
    CHECK(mismatches(v, x, scale, 0.0f) == 0);
  }
}

void range_matches_reference(const Variant& v, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n = 0; n <= 300; n += (n < 80 ? 1 : 37)) {
    for (int offset = 0; offset < 4; offset += 3) {
      std::vector<float> buffer(static_cast<size_t>(n + offset));
      for (float& e : buffer) e = normal(rng) * 5.0f;
      const float* x = buffer.data() + offset;
      const QuantRange want = range_f32_scalar(x, n), got = v.range(x, n);
      CHECK(got.lo == want.lo && got.hi == want.hi && got.non_finite == 0.0f);
      // one-signed spans: the range still holds 0
      std::vector<float> positive(static_cast<size_t>(n));
      for (float& e : positive) e = std::fabs(normal(rng)) + 0.5f;
      CHECK(v.range(positive.data(), n).lo == 0.0f);
      if (n == 0) continue;
      // a NaN or an infinity anywhere is reported
      for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()}) {
        std::vector<float> y(x, x + n);
        y[size_t(std::uniform_int_distribution<int64_t>(0, n - 1)(rng))] = bad;
        CHECK(std::isnan(v.range(y.data(), n).non_finite));
        std::vector<int8_t> q(static_cast<size_t>(n));
        CHECK(std::isnan(v.quantize(y.data(), q.data(), n, 0.05f, 0.0f)));
        CHECK(std::isnan(v.quantize(y.data(), q.data(), n, 1e-25f, 0.0f)));  // the dividing route
      }
      std::vector<int8_t> q(static_cast<size_t>(n));
      CHECK(v.quantize(x, q.data(), n, 0.05f, 0.0f) == 0.0f);
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(5);
  reference_by_hand();
  const std::vector<Variant> variants = simd_variants();
  std::printf("quantize variants:");
  for (const Variant& v : variants) std::printf(" %s", v.name);
  std::printf("\n");
  for (const Variant& v : variants) {
    quantize_matches_reference(v, rng);
    range_matches_reference(v, rng);
  }
  // The dispatch table's entries are this level's.
  CHECK(kernel_table().quantize_f32 != nullptr && kernel_table().range_f32 != nullptr);
  return check::finish("test_kernels_quantize");
}
