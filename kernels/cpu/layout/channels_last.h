// One row of an [N, C, T, H, W] float tensor into channels-last order: dst[w * C + c] = src[c * plane + w] for w < W,
// c < C (plane: the distance between the C planes' rows). Programs given torch's layout copy their input this way
// (fp32) or through an L1 scratch before quantizing it (int8). The SIMD variants interleave three channels (RGB, the
// input of every video model) with vector shuffles, four to sixteen pixels at a time; other channel counts and the
// row's last pixels take the scalar loop. A copy: every variant gives the same bits.
#pragma once
#include <cstdint>

namespace pyvideo::kernels {

using ChannelsLastRowFn = void (*)(const float* src, int64_t plane, int64_t C, int64_t W, float* dst);

void channels_last_row_scalar(const float* src, int64_t plane, int64_t C, int64_t W, float* dst);
#if defined(__x86_64__) || defined(_M_X64)
void channels_last_row_avx2(const float* src, int64_t plane, int64_t C, int64_t W, float* dst);
void channels_last_row_avx512(const float* src, int64_t plane, int64_t C, int64_t W, float* dst);
#endif
#if defined(__aarch64__)
void channels_last_row_neon(const float* src, int64_t plane, int64_t C, int64_t W, float* dst);
#endif

namespace detail {
// Pixels [w0, W) of the row, one value at a time (the reference, and the SIMD variants' tail).
inline void channels_last_tail(const float* src, int64_t plane, int64_t C, int64_t w0, int64_t W, float* dst) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t w = w0; w < W; ++w) dst[w * C + c] = src[c * plane + w];
}
}  // namespace detail

}  // namespace pyvideo::kernels
