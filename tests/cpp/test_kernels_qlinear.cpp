// The int8 Linear's dot products (kernels/cpu/int8/qlinear.h): the scalar reference and every SIMD variant of this CPU
// against a naive int64 sum, over row lengths around every vector width (and X3D's 2048), output ranges that start
// and end anywhere (groups of four and their tails), the extreme products (255 * 128 at K = 4099, the largest sums
// the step allows scaled down), and untouched outputs outside the range.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/int8/qlinear.h"

using namespace pyvideo::kernels;

namespace {

struct Variant {
  const char* name;
  QLinearDotFn fn;
};

std::vector<Variant> variants() {
  std::vector<Variant> out = {{"scalar", qlinear_dot_scalar}};
  for (Isa isa : supported_isas()) {
    switch (isa) {
#if defined(__x86_64__)
      case Isa::avx2: out.push_back({"avx2", qlinear_dot_avx2}); break;
      case Isa::avx512: out.push_back({"avx512", qlinear_dot_avx512}); break;
#endif
#if defined(__aarch64__)
      case Isa::neon: out.push_back({"neon", qlinear_dot_neon}); break;
#endif
      default: break;
    }
  }
  return out;
}

// Runs `v` on outputs [m_begin, m_end) and counts wrong or disturbed entries.
int64_t errors(const Variant& v, const std::vector<int16_t>& x, const std::vector<int8_t>& w, int64_t M,
               int64_t m_begin, int64_t m_end) {
  const int64_t K = int64_t(x.size());
  std::vector<int32_t> acc(static_cast<size_t>(M), 0x5a5a5a5a);
  v.fn(x.data(), K, w.data(), m_begin, m_end, acc.data());
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    int64_t want = 0x5a5a5a5a;
    if (m >= m_begin && m < m_end) {
      want = 0;
      for (int64_t k = 0; k < K; ++k) want += int64_t(x[size_t(k)]) * int64_t(w[size_t(m * K + k)]);
    }
    bad += acc[size_t(m)] != want;
  }
  if (bad) std::fprintf(stderr, "  %s: K %lld, outputs [%lld, %lld) of %lld: %lld wrong\n", v.name, (long long)K,
                        (long long)m_begin, (long long)m_end, (long long)M, (long long)bad);
  return bad;
}

}  // namespace

int main() {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> centered(-255, 255), byte(-128, 127);
  const std::vector<Variant> all = variants();
  std::printf("qlinear variants:");
  for (const Variant& v : all) std::printf(" %s", v.name);
  std::printf("\n");
  for (int64_t K : {1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 432, 2048, 4099}) {
    for (int64_t M : {1, 3, 4, 5, 8, 13}) {
      std::vector<int16_t> x(static_cast<size_t>(K));
      std::vector<int8_t> w(static_cast<size_t>(M * K));
      for (auto& e : x) e = int16_t(centered(rng));
      for (auto& e : w) e = int8_t(byte(rng));
      for (const Variant& v : all) {
        CHECK(errors(v, x, w, M, 0, M) == 0);
        if (M > 2) CHECK(errors(v, x, w, M, 1, M - 1) == 0);
      }
    }
  }
  // Extremes: every product 255 * -128 (and its negation) at the longest row here.
  for (int sign : {1, -1}) {
    const int64_t K = 4099, M = 6;
    std::vector<int16_t> x(static_cast<size_t>(K), int16_t(255 * sign));
    std::vector<int8_t> w(static_cast<size_t>(M * K), int8_t(-128));
    for (const Variant& v : all) CHECK(errors(v, x, w, M, 0, M) == 0);
  }
  CHECK(kernel_table().qlinear_dot != nullptr);
  return check::finish("test_kernels_qlinear");
}
