// avx2 variant of the int8 Linear's dot products: 16 int16 products per vpmaddwd, four outputs per centered load.
#include <immintrin.h>

#include "qlinear.h"

namespace pyvideo::kernels {

void qlinear_dot_avx2(const int16_t* centered, int64_t K, const int8_t* w, int64_t m_begin, int64_t m_end,
                      int32_t* acc) {
  detail::qlinear_dot_groups<16>(centered, K, w, m_begin, m_end, acc, [&](int64_t m, int64_t k_end, int32_t* s) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;  // named: GCC keeps arrays of vectors on the stack
    const int8_t* w0 = w + m * K;
    for (int64_t k = 0; k < k_end; k += 16) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(centered + k));
      auto product = [&](int j) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w0 + j * K + k));
        return _mm256_madd_epi16(c, _mm256_cvtepi8_epi16(bytes));
      };
      s0 = _mm256_add_epi32(s0, product(0));
      s1 = _mm256_add_epi32(s1, product(1));
      s2 = _mm256_add_epi32(s2, product(2));
      s3 = _mm256_add_epi32(s3, product(3));
    }
    alignas(32) int32_t lanes[4][8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[0]), s0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[1]), s1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[2]), s2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[3]), s3);
    for (int j = 0; j < 4; ++j) {
      s[j] = 0;
      for (int i = 0; i < 8; ++i) s[j] += lanes[j][i];
    }
  });
}

}  // namespace pyvideo::kernels
