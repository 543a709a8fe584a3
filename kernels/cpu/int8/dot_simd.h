// Integer dot-product vector wrappers shared by the int8 kernels: x86 VNNI vpdpbusd (AVX512-VNNI, AVX-VNNI), its exact
// emulation on plain AVX2 and on AVX-512 without VNNI (two vpmaddwd), ARM sdot and its exact emulation on ARMv8.0
// NEON (widening multiplies). Each is visible only in translation units compiled for its ISA (the file suffix picks
// the flags).
//   ireg            int32 lanes; width: lanes per register; F: the float wrapper (simd.h) of the same width
//   dot(acc, a, b)  acc[l] += sum over k < 4 of a.byte[4l + k] * b.byte[4l + k]; a holds the inputs (unsigned on x86:
//                   fed as x + input_offset), b the signed weights. No saturation: the int32 sum is exact.
//   input_offset    what the inputs are shifted by to fit dot's first operand (128 on x86, 0 for sdot)
//   quads(p)        p: 4 * width bytes, 4 columns of `width` channel bytes each (column k at p + k * width);
//                   returns the register whose lane c holds bytes (col0[c], col1[c], col2[c], col3[c]): the four
//                   columns of channel c as the four bytes dot multiplies together with one lane's weights
//   mask(n), load_w(p, m)  a "first n lanes" mask and a masked 4-byte-per-lane load of weights (the rest zero), as dot
//                   takes them; load_w(p): every lane. costly_partial_loads: load_w(p, m) costs more than load_w(p)
//                   (ARM: a branch on the lane count; AVX2: vpmaskmovd, its mask register reloaded per load), so
//                   kernels run their all-lanes case separately
//   broadcast4(p)   4 input bytes (offset applied) repeated in every lane; broadcast_partial: the first `bytes` (< 4);
//                   broadcast_raw(p): 4 bytes that already carry the offset
//   splat(b)        byte b in every byte;  copy_flipped(d, x): `width` input bytes from x to d, offset applied;
//                   copy_flipped_n(d, x, n, fill): the first n of them, then `fill` (an input value) up to `width`
//   widen(p, m)     the int8 at p (lanes of mask m, the rest zero) sign-extended to int32 lanes; widen(p): all lanes
//   madd16(acc, x, w), weight16(w): acc += x * w per lane for x from widen and w packed by weight16 (x86: vpdpwssd
//                   on the int16 halves, w as (w, 0) so the sign half of x meets a zero); for the depthwise dot
//                   kernel, so not in Avx512Dot (its CPUs run the float depthwise nest)
//   pairs_groups    AVX-512 only (qconv3d_simd.h's layers of at most 8 output channels): broadcast_pair(p), the 8
//                   bytes at p in every 64-bit lane (lanes 2c and 2c + 1 get two consecutive 4-byte groups), and
//                   sum_pairs(v), lanes 2c + 2c + 1 added into lane c for c < 8 (lanes 8-15 zero)
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_* temporaries that -Wuninitialized flags once inlined deeply
// enough (simd.h silences the -Wmaybe-uninitialized form of the same false positive); must precede immintrin.h.
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "../simd.h"

namespace pyvideo::kernels::simd {

// The first `bytes` (1 to 3) bytes at p in the low bytes of an int32, the rest zero. Spelled out rather than a
// memcpy of runtime length, which compiles to a library call that makes the kernels spill their accumulators.
inline int32_t partial_bytes(const int8_t* p, int bytes) {
  uint32_t v = uint8_t(p[0]);
  if (bytes > 1) v |= uint32_t(uint8_t(p[1])) << 8;
  if (bytes > 2) v |= uint32_t(uint8_t(p[2])) << 16;
  return int32_t(v);
}

// The byte broadcasts every dot wrapper D derives from its D::set1 (one int32 in every lane) and D::input_offset:
// from_bytes applies the offset to 4 bytes held in an int32.
template <class D>
struct ByteBroadcasts {
  static constexpr bool presplit = false;  // Avx2Dot: split_weights / dot_split
  static auto from_bytes(int32_t v) { return D::set1(D::input_offset ? v ^ int32_t(0x80808080u) : v); }
  static auto broadcast_raw(const int8_t* p) { return D::set1(load4(p)); }  // bytes that already carry the offset
  static auto broadcast4(const int8_t* p) { return from_bytes(load4(p)); }
  static auto broadcast_partial(const int8_t* p, int bytes) {
    return from_bytes(partial_bytes(p, bytes));  // missing bytes become the offset; their weights are zero
  }

 private:
  static int32_t load4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
};

#if defined(__AVX512BW__) && defined(__AVX512VL__)
// The 16-lane byte handling both AVX-512 dot wrappers share (AVX-512 F / BW / VL); D adds dot.
template <class D>
struct Avx512Bytes : ByteBroadcasts<D> {
  using ireg = __m512i;
  using F = Avx512F32;
  static constexpr int width = 16;
  static constexpr int registers = 32;
  static constexpr int32_t input_offset = 128;  // vpdpbusd's first operand is unsigned: x ^ 0x80 == x + 128
  static constexpr bool pairs_groups = true;
  static constexpr bool costly_partial_loads = false;  // a k-mask: free
  static ireg zero() { return _mm512_setzero_si512(); }
  static ireg broadcast_pair(const int8_t* p) {
    int64_t v;
    std::memcpy(&v, p, 8);
    return _mm512_set1_epi64(v);
  }
  static ireg sum_pairs(ireg v) {
    return _mm512_zextsi256_si512(_mm512_cvtepi64_epi32(_mm512_add_epi32(v, _mm512_srli_epi64(v, 32))));
  }
  using mask_t = __mmask16;
  static mask_t mask(int lanes) { return F::mask(lanes); }
  static ireg load_w(const int8_t* p, mask_t m) { return _mm512_maskz_loadu_epi32(m, p); }
  static ireg load_w(const int8_t* p) { return _mm512_loadu_si512(p); }
  static ireg set1(int32_t v) { return _mm512_set1_epi32(v); }
  static ireg splat(uint8_t b) { return _mm512_set1_epi8(char(b)); }
  static ireg widen(const int8_t* p, mask_t m) { return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)); }
  static ireg widen(const int8_t* p) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static int32_t weight16(int8_t w) { return int32_t(uint16_t(int16_t(w))); }  // (w, 0) as int16 halves
  static void copy_flipped(uint8_t* d, const int8_t* x) {  // `width` bytes with the input offset applied
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm_xor_si128(v, _mm_set1_epi8(char(0x80))));
  }
  static void copy_flipped_n(uint8_t* d, const int8_t* x, int n, int8_t fill) {  // the rest of the column: fill
    const __m128i v = _mm_mask_loadu_epi8(_mm_set1_epi8(fill), static_cast<__mmask16>((1u << n) - 1u), x);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm_xor_si128(v, _mm_set1_epi8(char(0x80))));
  }
  static ireg add(ireg a, ireg b) { return _mm512_add_epi32(a, b); }
  static ireg sub(ireg a, ireg b) { return _mm512_sub_epi32(a, b); }
  static ireg load(const void* p) { return _mm512_loadu_si512(p); }
  static void store(void* p, ireg v) { _mm512_storeu_si512(p, v); }
  static ireg load_i32(const int32_t* p) { return load(p); }
  static void store_i32(int32_t* p, ireg v) { store(p, v); }
  static F::reg to_float(ireg v) { return _mm512_cvtepi32_ps(v); }
  static ireg quads(const uint8_t* p) {
    // lane (128 bits) k = column k, dword g of it = channels 4g..4g+3: gather dword g of every column into lane g,
    // then transpose the 4x4 bytes inside each lane
    const __m512i by_group = _mm512_permutexvar_epi32(
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), _mm512_loadu_si512(p));
    const __m128i t = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_shuffle_epi8(by_group, _mm512_broadcast_i32x4(t));
  }
};

// AVX-512 without VNNI (Skylake-SP / -X; the dense conv only): vpdpbusd's exact result from two vpmaddwd on the
// even and odd bytes widened to int16, as Avx2Dot does on 8 lanes, with the weights split ahead of time for small
// layers (dot_split). Twice Avx2Dot's lanes per instruction, and 32 registers: larger tiles without spilling.
struct Avx512Dot : Avx512Bytes<Avx512Dot> {
  static ireg dot(ireg acc, ireg a, ireg b) {
    const __m512i a_even = _mm512_and_si512(a, _mm512_set1_epi16(0x00FF));  // bytes 0, 2 of each lane, zero-extended
    const __m512i a_odd = _mm512_srli_epi16(a, 8);                           // bytes 1, 3
    const __m512i b_even = _mm512_srai_epi16(_mm512_slli_epi16(b, 8), 8);   // sign-extended
    const __m512i b_odd = _mm512_srai_epi16(b, 8);
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(a_even, b_even));
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a_odd, b_odd));
  }
  // split_weights(p, m, w): the lanes of mask m (the rest zero) as w[0, 32) = (w0, w2) and w[32, 64) = (w1, w3) of
  // each lane, as int16; dot_split(acc, a, w) = dot(acc, a, b) for the weights b split into w (see Avx2Dot).
  static constexpr bool presplit = true;
  static constexpr int64_t split_size = 64;  // int16 values per split weight vector
  // Every layer up to 1 MB of int8 weights splits (larger ones take qconv3d_simd's reduction in parts, unsplit).
  // Unlike Avx2Dot's tiles, these gained on Slow-R50's 393-786 KB layers too (Zen 4, 1 MB L2, one thread: 1.1-1.2x
  // against a 256 KB limit; bench/conv3d_layers.py --int8, PYVIDEO_VNNI=0).
  static constexpr int64_t presplit_max_bytes = int64_t(1) << 20;
  static void split_weights(const int8_t* p, mask_t m, int16_t* w) {
    const __m512i b = _mm512_maskz_loadu_epi32(m, p);
    _mm512_storeu_si512(w, _mm512_srai_epi16(_mm512_slli_epi16(b, 8), 8));
    _mm512_storeu_si512(w + 32, _mm512_srai_epi16(b, 8));
  }
  static ireg dot_split(ireg acc, ireg a, const int16_t* w) {
    const __m512i a_even = _mm512_and_si512(a, _mm512_set1_epi16(0x00FF));
    const __m512i a_odd = _mm512_srli_epi16(a, 8);
    const __m512i even = _mm512_madd_epi16(a_even, _mm512_loadu_si512(w));
    const __m512i odd = _mm512_madd_epi16(a_odd, _mm512_loadu_si512(w + 32));
    return _mm512_add_epi32(acc, _mm512_add_epi32(even, odd));
  }
};
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
struct Avx512Vnni : Avx512Bytes<Avx512Vnni> {
  static ireg dot(ireg acc, ireg a, ireg b) {
    // as inline asm: with the builtin, GCC copies loop-carried accumulators through other registers at every step
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
  }
  static ireg madd16(ireg acc, ireg x, ireg w) {
    __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));  // inline asm: see dot
    return acc;
  }
};
#endif

#if defined(__AVX2__)
// The 8-lane byte handling every AVX2-width dot wrapper shares (all AVX2 instructions); D adds dot and madd16.
template <class D>
struct Avx2Bytes : ByteBroadcasts<D> {
  using ireg = __m256i;
  using F = Avx2F32;
  static constexpr int width = 8;
  static constexpr int registers = 16;
  static constexpr int32_t input_offset = 128;  // vpdpbusd's first operand is unsigned: x ^ 0x80 == x + 128
  static constexpr bool pairs_groups = false;
  static constexpr bool costly_partial_loads = true;
  static ireg zero() { return _mm256_setzero_si256(); }
  using mask_t = __m256i;
  static mask_t mask(int lanes) { return F::mask(lanes); }
  static ireg load_w(const int8_t* p, mask_t m) { return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), m); }
  static ireg load_w(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static ireg set1(int32_t v) { return _mm256_set1_epi32(v); }
  static ireg splat(uint8_t b) { return _mm256_set1_epi8(char(b)); }
  static ireg widen(const int8_t* p, const mask_t& m) {
    int64_t bytes = 0;
    if (_mm256_movemask_epi8(m) == -1)
      std::memcpy(&bytes, p, 8);
    else
      std::memcpy(&bytes, p, size_t(__builtin_popcount(unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(m))))));
    return _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(bytes));
  }
  static ireg widen(const int8_t* p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static int32_t weight16(int8_t w) { return int32_t(uint16_t(int16_t(w))); }  // (w, 0) as int16 halves
  static void copy_flipped(uint8_t* d, const int8_t* x) {  // `width` bytes with the input offset applied
    uint64_t v;
    std::memcpy(&v, x, 8);
    v ^= 0x8080808080808080ull;
    std::memcpy(d, &v, 8);
  }
  static void copy_flipped_n(uint8_t* d, const int8_t* x, int n, int8_t fill) {  // the rest of the column: fill
    int8_t column[width];
    std::memset(column, fill, sizeof column);
    std::memcpy(column, x, size_t(n));
    copy_flipped(d, column);
  }
  static ireg add(ireg a, ireg b) { return _mm256_add_epi32(a, b); }
  static ireg sub(ireg a, ireg b) { return _mm256_sub_epi32(a, b); }
  static ireg load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static void store(void* p, ireg v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
  static ireg load_i32(const int32_t* p) { return load(p); }
  static void store_i32(int32_t* p, ireg v) { store(p, v); }
  static F::reg to_float(ireg v) { return _mm256_cvtepi32_ps(v); }
  static ireg quads(const uint8_t* p) {
    // dword 2k + g = channels 4g..4g+3 of column k: gather group g of every column into lane g, then transpose the
    // 4x4 bytes inside each lane
    const __m256i by_group = _mm256_permutevar8x32_epi32(load(p), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    const __m128i t = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm256_shuffle_epi8(by_group, _mm256_broadcastsi128_si256(t));
  }
};

// Plain AVX2 (no VNNI: Haswell to Skylake client, Zen 1-3): vpdpbusd's exact result from two vpmaddwd on the even
// and odd bytes widened to int16 (unsigned inputs, signed weights). vpmaddubsw would take one instruction less but
// saturates its int16 pair sums (255 * 127 * 2 > 32767), which the int32 sums must not.
struct Avx2Dot : Avx2Bytes<Avx2Dot> {
  static ireg dot(ireg acc, ireg a, ireg b) {
    const __m256i a_even = _mm256_and_si256(a, _mm256_set1_epi16(0x00FF));  // bytes 0, 2 of each lane, zero-extended
    const __m256i a_odd = _mm256_srli_epi16(a, 8);                           // bytes 1, 3
    const __m256i b_even = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8);   // sign-extended
    const __m256i b_odd = _mm256_srai_epi16(b, 8);
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(a_even, b_even));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a_odd, b_odd));
  }
  static ireg madd16(ireg acc, ireg x, ireg w) { return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w)); }
  // The same dot against weights split ahead of time (qconv3d_simd.h's QSource::prepped_split, small layers): the
  // three shifts per weight vector leave the reduction loop and the weights become vpmaddwd's memory operands, which
  // frees the registers they held. split_weights(p, m, w) stores the lanes of mask m (the rest zero) as
  // w[0, 16) = (w0, w2) and w[16, 32) = (w1, w3) of each lane, as int16; dot_split(acc, a, w) = dot(acc, a, b) for
  // the weights b split into w. X3D-XS's int8 pointwise layers: 34.8 -> 32.3 ms at one thread (Zen 1; twenty-fifth
  // session, native_kernels.md).
  static constexpr bool presplit = true;
  static constexpr int64_t split_size = 32;  // int16 values per split weight vector
  // Layers of at most 256 KB of int8 weights split: twice the bytes pays while they stay in L2. Slow-R50's layers
  // (bench/conv3d_layers.py --int8 --baseline, Zen 1 with a 512 KB L2, one thread): 1.07-1.12x at 4-262 KB,
  // 0.99-1.03x at 393-524 KB, 0.81-0.96x from 590 KB (the 1x3x3 convs of res4 / res5, the 3x1x1 ones of 1024 and
  // 2048 channels). On a Zen 4 (1 MB L2) splitting up to 1 MB lost there too: 393-786 KB layers 0.76-0.94x (one run).
  static constexpr int64_t presplit_max_bytes = int64_t(256) << 10;
  static void split_weights(const int8_t* p, mask_t m, int16_t* w) {
    const __m256i b = _mm256_maskload_epi32(reinterpret_cast<const int*>(p), m);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w), _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w + 16), _mm256_srai_epi16(b, 8));
  }
  static ireg dot_split(ireg acc, ireg a, const int16_t* w) {
    const __m256i a_even = _mm256_and_si256(a, _mm256_set1_epi16(0x00FF));
    const __m256i a_odd = _mm256_srli_epi16(a, 8);
    const __m256i even = _mm256_madd_epi16(a_even, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
    const __m256i odd = _mm256_madd_epi16(a_odd, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16)));
    return _mm256_add_epi32(acc, _mm256_add_epi32(even, odd));
  }
};
#endif

#if defined(__AVXVNNI__)
struct AvxVnni : Avx2Bytes<AvxVnni> {
  static ireg dot(ireg acc, ireg a, ireg b) {
    // as inline asm for the same reason as Avx512Vnni::dot; {vex} keeps the AVX-VNNI encoding
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
    return acc;
  }
  static ireg madd16(ireg acc, ireg x, ireg w) {
    __asm__("%{vex%} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(x), "x"(w));  // inline asm: see dot
    return acc;
  }
};
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)
// The 4-lane byte handling both ARM dot wrappers share (all ARMv8.0 NEON); D adds dot.
template <class D>
struct NeonBytes : ByteBroadcasts<D> {
  using ireg = int32x4_t;
  using F = NeonF32;
  static constexpr int width = 4;
  static constexpr int registers = 32;
  static constexpr int32_t input_offset = 0;  // sdot multiplies signed by signed: no offset
  static constexpr bool pairs_groups = false;
  static constexpr bool costly_partial_loads = true;  // see load_w
  static ireg zero() { return vdupq_n_s32(0); }
  using mask_t = int;
  static mask_t mask(int lanes) { return lanes; }
  static ireg load_w(const int8_t* p, mask_t lanes) {
    if (lanes == width) return vreinterpretq_s32_s8(vld1q_s8(p));
    int8_t b[16] = {};
    std::memcpy(b, p, size_t(lanes) * 4);
    return vreinterpretq_s32_s8(vld1q_s8(b));
  }
  static ireg load_w(const int8_t* p) { return vreinterpretq_s32_s8(vld1q_s8(p)); }
  static ireg set1(int32_t v) { return vdupq_n_s32(v); }
  static ireg splat(uint8_t b) { return vreinterpretq_s32_u8(vdupq_n_u8(b)); }
  static ireg widen(const int8_t* p, mask_t lanes) {
    int8_t b[8] = {};
    std::memcpy(b, p, size_t(lanes));
    return vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(b))));
  }
  static ireg widen(const int8_t* p) { return widen(p, width); }
  static int32_t weight16(int8_t w) { return w; }
  static ireg madd16(ireg acc, ireg x, ireg w) { return vmlaq_s32(acc, x, w); }
  static void copy_flipped(uint8_t* d, const int8_t* x) { std::memcpy(d, x, 4); }  // no offset on ARM
  static void copy_flipped_n(uint8_t* d, const int8_t* x, int n, int8_t fill) {  // the rest of the column: fill
    std::memset(d, fill, width);
    std::memcpy(d, x, size_t(n));
  }
  static ireg add(ireg a, ireg b) { return vaddq_s32(a, b); }
  static ireg sub(ireg a, ireg b) { return vsubq_s32(a, b); }
  static ireg load(const void* p) { return vreinterpretq_s32_u8(vld1q_u8(static_cast<const uint8_t*>(p))); }
  static void store(void* p, ireg v) { vst1q_u8(static_cast<uint8_t*>(p), vreinterpretq_u8_s32(v)); }
  static ireg load_i32(const int32_t* p) { return vld1q_s32(p); }
  static void store_i32(int32_t* p, ireg v) { vst1q_s32(p, v); }
  static F::reg to_float(ireg v) { return vcvtq_f32_s32(v); }
  static ireg quads(const uint8_t* p) {
    // byte 4k + c (column k, channel c) goes to 4c + k: one table lookup
    static const uint8_t transpose[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    return vreinterpretq_s32_u8(vqtbl1q_u8(vld1q_u8(p), vld1q_u8(transpose)));
  }
};

// ARMv8.0 without the dot-product extension (Cortex-A53/A57/A72/A73): sdot's exact sums from widening byte multiplies
// and pairwise widening accumulates. The bytes of both operands are reordered so that each accumulate lands in its
// lane: the low 8 bytes hold the first two of each lane's four (lane 0's, then lane 1's, ...), the high 8 bytes the
// last two. smull / smull2 multiply the halves into int16 (each product fits, -128 * -128 included) and two sadalp add
// adjacent products into the int32 lanes: four instructions per dot against sdot's one. Adding int16 products in
// pairs before widening would save one but wraps at (-128) * (-128) * 2. load_w, the broadcasts and quads (both
// operands of the depthwise kernel's dots) apply the order; splat's bytes are all equal.
struct NeonMull : NeonBytes<NeonMull> {
  static ireg dot(ireg acc, ireg a, ireg b) {
    const int8x16_t a8 = vreinterpretq_s8_s32(a), b8 = vreinterpretq_s8_s32(b);
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a8), vget_low_s8(b8)));
    return vpadalq_s16(acc, vmull_high_s8(a8, b8));
  }
  static ireg load_w(const int8_t* p, mask_t lanes) { return pair_order(NeonBytes::load_w(p, lanes)); }
  static ireg load_w(const int8_t* p) { return pair_order(NeonBytes::load_w(p)); }
  static ireg broadcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return broadcast_bytes(v);
  }
  static ireg broadcast_raw(const int8_t* p) { return broadcast4(p); }  // no offset on ARM
  static ireg broadcast_partial(const int8_t* p, int bytes) { return broadcast_bytes(partial_bytes(p, bytes)); }
  static ireg quads(const uint8_t* p) {
    // byte 4k + c (column k, channel c) straight to the pair order: k < 2 ? 2c + k : 8 + 2c + k - 2
    static const uint8_t transpose[16] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
    return vreinterpretq_s32_u8(vqtbl1q_u8(vld1q_u8(p), vld1q_u8(transpose)));
  }

 private:
  static ireg pair_order(ireg w) {  // byte 4l + k to k < 2 ? 2l + k : 8 + 2l + k - 2
    static const uint8_t order[16] = {0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15};
    return vreinterpretq_s32_u8(vqtbl1q_u8(vreinterpretq_u8_s32(w), vld1q_u8(order)));
  }
  static ireg broadcast_bytes(int32_t v) {  // the 4 bytes of v in every lane, in the pair order
    // v in lane 0 and zeros (what a 4-byte load to a vector register gives, no extra instruction)
    const int32x4_t bytes = vcombine_s32(vcreate_s32(uint64_t(uint32_t(v))), vcreate_s32(0));
    static const uint8_t spread[16] = {0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3};
    return vreinterpretq_s32_u8(vqtbl1q_u8(vreinterpretq_u8_s32(bytes), vld1q_u8(spread)));
  }
};
#endif

#if defined(__ARM_FEATURE_DOTPROD)
struct NeonDot : NeonBytes<NeonDot> {
  static ireg dot(ireg acc, ireg a, ireg b) { return vdotq_s32(acc, vreinterpretq_s8_s32(a), vreinterpretq_s8_s32(b)); }
};
#endif

}  // namespace pyvideo::kernels::simd
