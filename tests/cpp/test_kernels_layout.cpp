// The channels-last row copy (kernels/cpu/layout/channels_last.h): the scalar reference against values by hand, and
// every SIMD variant of this CPU (qemu: NEON) against it bit for bit (NaN payloads and signed zeros included), for
// 1-5 channels (3, RGB, takes the vector shuffles), row widths 0-70 (full vector groups and every tail), planes
// further apart than a row, misaligned starts, and guard values after the output that must stay untouched.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/layout/channels_last.h"

using namespace pyvideo::kernels;

namespace {

struct Variant {
  const char* name;
  ChannelsLastRowFn fn;
};

std::vector<Variant> simd_variants() {
  std::vector<Variant> out;
  for (Isa isa : supported_isas()) {
    switch (isa) {
#if defined(__x86_64__)
      case Isa::avx2: out.push_back({"avx2", channels_last_row_avx2}); break;
      case Isa::avx512: out.push_back({"avx512", channels_last_row_avx512}); break;
#endif
#if defined(__aarch64__)
      case Isa::neon: out.push_back({"neon", channels_last_row_neon}); break;
#endif
      default: break;
    }
  }
  return out;
}

void reference_by_hand() {
  // planes 5 apart, rows of 2: R = 1 2, G = 10 20, B = 100 200 -> 1 10 100 2 20 200
  const float src[15] = {1, 2, -1, -1, -1, 10, 20, -1, -1, -1, 100, 200, -1, -1, -1};
  float dst[7];
  dst[6] = 7.0f;
  channels_last_row_scalar(src, 5, 3, 2, dst);
  const float want[7] = {1, 10, 100, 2, 20, 200, 7};
  for (int i = 0; i < 7; ++i) CHECK(dst[i] == want[i]);
}

int64_t mismatches(const Variant& v, int64_t C, int64_t W, int64_t plane, int offset, std::mt19937& rng) {
  std::uniform_int_distribution<uint32_t> bits;
  std::vector<float> src(size_t(C * plane + offset + 1));
  for (float& x : src) {
    const uint32_t b = bits(rng);  // any bit pattern: NaNs with payloads, infinities, subnormals, -0
    std::memcpy(&x, &b, sizeof x);
  }
  const size_t n = size_t(W * C);
  std::vector<uint32_t> want(n + 20, 0xdeadbeefu), got(n + 20 + offset, 0xdeadbeefu);
  channels_last_row_scalar(src.data() + offset, plane, C, W, reinterpret_cast<float*>(want.data()));
  v.fn(src.data() + offset, plane, C, W, reinterpret_cast<float*>(got.data()) + offset);
  int64_t bad = 0;
  for (size_t i = 0; i < n + 20; ++i) bad += got[size_t(offset) + i] != want[i];
  for (int i = 0; i < offset; ++i) bad += got[size_t(i)] != 0xdeadbeefu;
  // the reference against the definition
  for (int64_t c = 0; c < C; ++c)
    for (int64_t w = 0; w < W; ++w) {
      uint32_t x;
      std::memcpy(&x, &src[size_t(offset + c * plane + w)], sizeof x);
      bad += want[size_t(w * C + c)] != x;
    }
  if (bad)
    std::fprintf(stderr, "  %s: C=%lld W=%lld plane=%lld offset=%d: %lld values differ\n", v.name, (long long)C,
                 (long long)W, (long long)plane, offset, (long long)bad);
  return bad;
}

}  // namespace

int main() {
  reference_by_hand();
  std::mt19937 rng(3);
  const std::vector<Variant> variants = simd_variants();
  std::printf("channels-last variants:");
  for (const Variant& v : variants) std::printf(" %s", v.name);
  std::printf("\n");
  int64_t cases = 0;
  for (const Variant& v : variants)
    for (int64_t C = 1; C <= 5; ++C)
      for (int64_t W = 0; W <= 70; ++W)
        for (int64_t extra : {int64_t(0), int64_t(13)})
          for (int offset = 0; offset < 3; offset += 2) {
            CHECK(mismatches(v, C, W, W + extra, offset, rng) == 0);
            ++cases;
          }
  std::printf("compared %lld rows\n", (long long)cases);
  CHECK(kernel_table().channels_last_row != nullptr);
  return check::finish("test_kernels_layout");
}
