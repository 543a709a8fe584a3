// avx512 variant of the int8 Linear's dot products: 32 int16 products per vpmaddwd, four outputs per centered load.
#include <immintrin.h>

#include "qlinear.h"

namespace pyvideo::kernels {

void qlinear_dot_avx512(const int16_t* centered, int64_t K, const int8_t* w, int64_t m_begin, int64_t m_end,
                        int32_t* acc) {
  detail::qlinear_dot_groups<32>(centered, K, w, m_begin, m_end, acc, [&](int64_t m, int64_t k_end, int32_t* s) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;  // named: GCC keeps arrays of vectors on the stack
    const int8_t* w0 = w + m * K;
    for (int64_t k = 0; k < k_end; k += 32) {
      const __m512i c = _mm512_loadu_si512(centered + k);
      auto product = [&](int j) {
        const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + j * K + k));
        return _mm512_madd_epi16(c, _mm512_cvtepi8_epi16(bytes));
      };
      s0 = _mm512_add_epi32(s0, product(0));
      s1 = _mm512_add_epi32(s1, product(1));
      s2 = _mm512_add_epi32(s2, product(2));
      s3 = _mm512_add_epi32(s3, product(3));
    }
    // lanes added in scalar code (_mm512_reduce_add_epi32 trips GCC 12's -Wuninitialized on its own intrinsics)
    alignas(64) int32_t lanes[4][16];
    _mm512_store_si512(lanes[0], s0), _mm512_store_si512(lanes[1], s1);
    _mm512_store_si512(lanes[2], s2), _mm512_store_si512(lanes[3], s3);
    for (int j = 0; j < 4; ++j) {
      s[j] = 0;
      for (int i = 0; i < 16; ++i) s[j] += lanes[j][i];
    }
  });
}

}  // namespace pyvideo::kernels
