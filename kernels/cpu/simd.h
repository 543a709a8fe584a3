// Thin fp32 vector wrappers so one kernel template serves every ISA. Each wrapper is only visible in translation
// units compiled for its ISA (the build gives *_avx2.cpp, *_avx512.cpp and *_neon.cpp their target flags).
//   width           lanes per register;  registers: architectural vector registers (sizes register blocking)
//   load/store      full registers;  load_n/store_n: the first n lanes (n < width), the rest read as zero / untouched
//   fmadd(a, b, c)  a * b + c;  fnmadd(a, b, c): c - a * b;  fnmsub(a, b, c): -(a * b) - c (each rounded once)
//   set1, add, sub, mul, div, min, max      elementwise arithmetic
//   clamp_low(x, lo) x where x > lo, else lo (NaN x gives lo);  clamp_high(x, hi): x where x < hi, else hi
//   relu(x)         torch's relu: 0 where x < 0, else x (a NaN stays NaN, -0 stays -0)
//   round(x)        to the nearest integer, ties to even;  pow2i(n): 2^n for integer-valued n in [-126, 127]
//   scale2(p, n)    p * 2^n for integer-valued n in [-126, 127] where the result is a normal float (then exact, so
//                   every ISA gives the same bits): AVX-512 vscalefps, elsewhere mul(p, pow2i(n))
//   rcp(x)          1/x to ~1 ulp: the hardware estimate refined by Newton-Raphson (a division costs 3-10x more)
//   mask(n)         a precomputed "first n lanes" mask for load_m/store_m (hoisted out of inner loops)
//   load_tail(p, m) load_m for a vector at the end of a row: AVX-512 reads a mask of at most 8 lanes with a 256-bit
//                   load (a 512-bit masked load whose unused lanes cross into the next cache line costs a split
//                   access); elsewhere the same as load_m
//   load_i8(p, n)   the first n int8 values at p as floats (the rest zero); store_i8(p, v, n): integral values in
//                   [-128, 127] stored as n int8
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
// GCC 12's AVX-512 intrinsic headers trip -Wmaybe-uninitialized (and, inlined deeply enough, -Wuninitialized) on
// their own _mm512_undefined_* temporaries (`__m512 __Y = __Y;`, the pass-through operand of unmasked min / max).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
namespace pyvideo::kernels::simd {
struct Avx512F32 {
  using reg = __m512;
  static constexpr int width = 16;
  static constexpr int registers = 32;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static reg load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_n(float* p, reg v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static reg load_m(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static reg load_tail(const float* p, __mmask16 m) {
    return m <= 0xFF ? _mm512_zextps256_ps512(_mm256_maskz_loadu_ps(static_cast<__mmask8>(m), p))
                     : _mm512_maskz_loadu_ps(m, p);
  }
  static reg rcp(reg x) {
    const reg r = _mm512_rcp14_ps(x);  // 14 bits; one Newton step: r * (2 - x * r)
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
  }
  static void store_m(float* p, reg v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }
  static reg fnmsub(reg a, reg b, reg c) { return _mm512_fnmsub_ps(a, b, c); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg clamp_low(reg x, reg lo) { return _mm512_max_ps(x, lo); }  // maxps: the second operand unless x > lo
  static reg relu(reg x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }  // NaN or a zero: the second operand
  static reg clamp_high(reg x, reg hi) { return _mm512_min_ps(x, hi); }
  static reg scale2(reg p, reg n) { return _mm512_scalef_ps(p, n); }
  static reg round(reg x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg pow2i(reg n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  static reg load_i8(const int8_t* p, int n) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(static_cast<__mmask16>(mask(n)), p)));
  }
  static void store_i8(int8_t* p, reg v, int n) {
    _mm_mask_storeu_epi8(p, mask(n), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
  }
};
}  // namespace pyvideo::kernels::simd
#endif

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
namespace pyvideo::kernels::simd {
struct Avx2F32 {
  using reg = __m256;
  static constexpr int width = 8;
  static constexpr int registers = 16;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int n) {
    // lane i is enabled when i < n
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_n(float* p, reg v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static reg load_m(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static reg load_tail(const float* p, __m256i m) { return load_m(p, m); }
  static reg rcp(reg x) {
    const reg r = _mm256_rcp_ps(x);  // 12 bits; one Newton step: r * (2 - x * r)
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(x, r, _mm256_set1_ps(2.0f)));
  }
  static void store_m(float* p, reg v, __m256i m) { _mm256_maskstore_ps(p, m, v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_ps(a, b, c); }
  static reg fnmsub(reg a, reg b, reg c) { return _mm256_fnmsub_ps(a, b, c); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg clamp_low(reg x, reg lo) { return _mm256_max_ps(x, lo); }  // maxps: the second operand unless x > lo
  static reg relu(reg x) { return _mm256_max_ps(_mm256_setzero_ps(), x); }  // NaN or a zero: the second operand
  static reg clamp_high(reg x, reg hi) { return _mm256_min_ps(x, hi); }
  static reg scale2(reg p, reg n) { return _mm256_mul_ps(p, pow2i(n)); }
  static reg round(reg x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg pow2i(reg n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static reg load_i8(const int8_t* p, int n) {
    int64_t bytes = 0;
    std::memcpy(&bytes, p, size_t(n));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(bytes)));
  }
  static void store_i8(int8_t* p, reg v, int n) {
    const __m256i q = _mm256_cvtps_epi32(v);
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    // The packs saturate: a value outside [-128, 127] (or INT_MIN, what an out-of-range or NaN float converts to)
    // is stored as -128 or 127. clamp_store<Avx2F32> (int8/requant_simd.h) relies on it.
    const __m128i bytes = _mm_packs_epi16(words, words);
    if (n == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p), bytes);
    } else {
      alignas(16) int8_t b[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(b), bytes);
      std::memcpy(p, b, size_t(n));
    }
  }
};
}  // namespace pyvideo::kernels::simd
#endif

#if defined(__ARM_NEON)
#include <arm_neon.h>
namespace pyvideo::kernels::simd {
struct NeonF32 {
  using reg = float32x4_t;
  static constexpr int width = 4;
  static constexpr int registers = 32;
  static reg zero() { return vdupq_n_f32(0.0f); }
  static reg load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, reg v) { vst1q_f32(p, v); }
  static reg load_n(const float* p, int n) {
    float tmp[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; ++i) tmp[i] = p[i];
    return vld1q_f32(tmp);
  }
  static void store_n(float* p, reg v, int n) {
    float tmp[4];
    vst1q_f32(tmp, v);
    for (int i = 0; i < n; ++i) p[i] = tmp[i];
  }
  static int mask(int n) { return n; }
  static reg rcp(reg x) {
    reg r = vrecpeq_f32(x);  // 8 bits; two Newton steps
    r = vmulq_f32(r, vrecpsq_f32(x, r));
    return vmulq_f32(r, vrecpsq_f32(x, r));
  }
  static reg load_m(const float* p, int n) { return load_n(p, n); }
  static reg load_tail(const float* p, int n) { return load_n(p, n); }
  static void store_m(float* p, reg v, int n) { store_n(p, v, n); }
  static reg fmadd(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  static reg fnmadd(reg a, reg b, reg c) { return vfmsq_f32(c, a, b); }
  static reg fnmsub(reg a, reg b, reg c) { return vnegq_f32(vfmaq_f32(c, a, b)); }  // -(c + a*b): the same rounding
  static reg set1(float x) { return vdupq_n_f32(x); }
  static reg add(reg a, reg b) { return vaddq_f32(a, b); }
  static reg sub(reg a, reg b) { return vsubq_f32(a, b); }
  static reg mul(reg a, reg b) { return vmulq_f32(a, b); }
  static reg div(reg a, reg b) { return vdivq_f32(a, b); }
  static reg min(reg a, reg b) { return vminq_f32(a, b); }
  static reg max(reg a, reg b) { return vmaxq_f32(a, b); }
  static reg clamp_low(reg x, reg lo) { return vbslq_f32(vcgtq_f32(x, lo), x, lo); }  // vmaxq would keep a NaN
  // A compare and a select: vmaxq would give +0 for -0 (x86 and the scalar reference keep -0).
  static reg relu(reg x) { return vbslq_f32(vcltq_f32(x, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), x); }
  static reg clamp_high(reg x, reg hi) { return vbslq_f32(vcltq_f32(x, hi), x, hi); }
  static reg scale2(reg p, reg n) { return vmulq_f32(p, pow2i(n)); }
  static reg round(reg x) { return vrndnq_f32(x); }
  static reg pow2i(reg n) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23));
  }
  static reg load_i8(const int8_t* p, int n) {
    int8_t b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(b, p, size_t(n));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(b)))));
  }
  static void store_i8(int8_t* p, reg v, int n) {
    const int16x4_t words = vqmovn_s32(vcvtnq_s32_f32(v));  // values in range already: no saturation
    const int8x8_t bytes = vqmovn_s16(vcombine_s16(words, words));
    int8_t b[8];
    vst1_s8(b, bytes);
    std::memcpy(p, b, size_t(n));
  }
};
}  // namespace pyvideo::kernels::simd
#endif
