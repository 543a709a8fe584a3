// AMX-INT8 variant of the int8 pointwise conv: TDPBSSD on 16x16 int32 tiles, 32 positions x 32 output channels per
// step (four C tiles fed by two A and two B tiles: every tile loaded once per step serves two dot products).
//
// A pointwise stride-1 unpadded conv is a GEMM: position p's C_in input bytes (row p of A, stride C_in in
// channels-last memory) against the packed weights [ceil(Ci/4)][Co][4], which already are AMX's B layout: a B tile
// is kc groups of four input channels (rows, stride Co * 4 bytes) by 16 output channels (64 bytes). Signed by signed
// (TDPBSSD) needs no +128 input offset: acc = bias - zero_point * sum(w) + sum x * w, the exact int32 sum the VNNI
// kernel gets from its offset inputs, then the same requant_simd.h epilogue on AVX-512 -- outputs are bit-identical to
// qconv3d_avx512vnni's.
//
// K goes in `chunks` equal steps of kc <= 16 groups (A tiles 4 * kc bytes wide, B tiles kc rows), so no step needs
// another tile shape. Tiles read whole rows and columns; what they read past the data is harmless or copied:
//  - an A row past C_in reads the next position's bytes against zero weights (input channels past C_in are zero in
//    the packing, the groups past ceil(Ci/4) zero in the B tail below);
//  - A rows past the work range read other positions, whose sums are not stored;
//  - a B tile of the last, partial block of 16 channels reads the next groups' weights into unstored columns;
// only at the end of a buffer would a read leave it: the last chunk of B (groups past ceil(Ci/4) or channels past
// C_out) then comes from a zero-padded copy (all of B when C_out < 16: a 64-byte row then spans several groups),
// and the last positions of the input (32 rows whose last one would read past it) from a zero-padded copy too.
//
// Tile state: each call (one per thread and work range) loads its configuration and releases the tiles at the end,
// so threads never depend on another call's configuration.
#include "qconv3d_amx.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "requant_simd.h"

namespace pyvideo::kernels {
namespace {

using F = simd::Avx512F32;

// The palette-1 tile configuration (64 bytes, the layout LDTILECFG reads). Tiles 0-3: C (16 rows x 16 int32);
// 4, 5: A (16 positions x 4 * kc bytes); 6, 7: B (kc groups x 64 bytes).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG reads 64 bytes");

struct AmxCall {
  int64_t Co, kc, chunks;
  const int8_t* weight;      // [ceil(Ci/4)][Co][4]
  const int8_t* b_copy;      // chunks [copied_from, chunks) as [kc][padded_co][4], zero-padded
  int64_t copied_from;       // the first chunk read from b_copy (chunks: none)
  int64_t padded_co;         // Co rounded up to 16
  const int32_t* correction; // [padded_co] bias - zero_point * weight_sum
  const float* linear_scale; // [padded_co] when linear_requant(q), else nullptr
  const Requant* q;
  int8_t* output;
};

// C tiles += the dot products of 32 positions (A tile rows from `a`, stride a_stride) and channels n0 + [0, 16 * NB).
// The C tiles start as the zero-point correction of their channels (stride 0: every row the same 64 bytes), so the
// epilogue gets the finished int32 sums (addition mod 2^32 in either order: the same bits as qconv3d_simd's).
template <int NB>
void amx_dots(const AmxCall& c, const int8_t* a, int64_t a_stride, int64_t n0) {
  _tile_loadd(0, c.correction + n0, 0);
  _tile_loadd(2, c.correction + n0, 0);
  if constexpr (NB == 2) {
    _tile_loadd(1, c.correction + n0 + 16, 0);
    _tile_loadd(3, c.correction + n0 + 16, 0);
  }
  for (int64_t k = 0; k < c.chunks; ++k) {
    const int8_t* ak = a + k * 4 * c.kc;
    const bool copied = k >= c.copied_from;
    const int8_t* b = copied ? c.b_copy + ((k - c.copied_from) * c.kc * c.padded_co + n0) * 4
                             : c.weight + (k * c.kc * c.Co + n0) * 4;
    const int64_t b_stride = (copied ? c.padded_co : c.Co) * 4;
    _tile_loadd(4, ak, a_stride);
    _tile_loadd(6, b, b_stride);
    _tile_loadd(5, ak + 16 * a_stride, a_stride);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(2, 5, 6);
    if constexpr (NB == 2) {
      _tile_loadd(7, b + 64, b_stride);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(3, 5, 7);
    }
  }
}

using Block = int32_t[32][32];  // C tiles in memory: [position][channel]

template <int NB>
void amx_store(Block& acc) {
  _tile_stored(0, &acc[0][0], 128);
  _tile_stored(2, &acc[16][0], 128);
  if constexpr (NB == 2) {
    _tile_stored(1, &acc[0][16], 128);
    _tile_stored(3, &acc[16][16], 128);
  }
}

// Where a stored block goes: positions p0 + [0, rows), channels n0 + [0, 16 * nb).
struct Placement {
  int64_t p0 = 0, n0 = 0;
  int rows = 0, nb = 0;
};

// The requantization of qconv3d_simd's tiles, on one stored block. Everything the loop
// reads is copied into locals first: the int8 output stores may alias any memory, so through pointers the compiler
// reloaded (and re-converted) the parameters after every store.
void amx_requantize(const AmxCall& c, const Block& acc, const Placement& at) {
  const Requant q = *c.q;
  const int64_t Co = c.Co, p0 = at.p0;
  const int rows = at.rows;
  int8_t* const output = c.output;
  const float* const linear_scale = c.linear_scale;
  const bool relu = q.activation == Activation::relu;
  for (int j = 0; j < at.nb; ++j) {
    const int64_t ch = at.n0 + 16 * j;
    const int lanes = int(std::min<int64_t>(16, Co - ch));
    auto sum = [&](int i) { return _mm512_cvtepi32_ps(_mm512_load_si512(&acc[i][16 * j])); };
    if (linear_scale)
      for (int i = 0; i < rows; ++i)
        detail::requantize_linear_store<F>(sum(i), linear_scale + ch, (p0 + i) * Co + ch, lanes, relu, q, output);
    else
      for (int i = 0; i < rows; ++i) detail::requantize_store<F>(sum(i), ch, (p0 + i) * Co + ch, lanes, q, output);
  }
}

}  // namespace

void qconv3d_amx_pointwise(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight,
                           const int32_t* weight_sum, const Requant& q, const int8_t* /*pad_row*/, int8_t* output,
                           int64_t item_begin, int64_t item_end) {
  if (item_begin >= item_end) return;
  const int64_t Ci = s.in_channels, Co = s.out_channels, K4 = (Ci + 3) / 4;
  const int64_t Wo = s.out_w(), blocks = s.column_blocks(), tile_w = Conv3dShape::tile_w;
  // Items run row by row and cover whole rows, so a range of items is one range of positions (input and output
  // positions coincide in a pointwise stride-1 unpadded conv).
  const int64_t last = item_end - 1;
  const int64_t p_begin = (item_begin / blocks) * Wo + (item_begin % blocks) * tile_w;
  const int64_t p_end = (last / blocks) * Wo + std::min(Wo, (last % blocks) * tile_w + tile_w);
  const int64_t positions = s.rows() * Wo;

  const int64_t chunks = (K4 + 15) / 16, kc = (K4 + chunks - 1) / chunks;
  const int64_t n_blocks = (Co + 15) / 16, padded_co = n_blocks * 16;
  const int64_t row_bytes = 4 * kc * chunks;  // what the A tiles read of each position

  thread_local std::vector<int32_t> correction;
  thread_local std::vector<float> linear_scale;
  thread_local std::vector<int8_t> b_copy, a_copy;
  correction.assign(size_t(padded_co), 0);
  for (int64_t c = 0; c < Co; ++c) correction[size_t(c)] = q.bias[c] - q.input_zero_point * weight_sum[c];
  AmxCall call{Co, kc, chunks, packed_weight, nullptr, chunks, padded_co, correction.data(), nullptr, &q, output};
  if (detail::linear_requant(q)) {  // as qconv3d_simd computes it, for the same bits
    linear_scale.resize(size_t(padded_co));
    detail::linear_scales(q, Co, padded_co, linear_scale.data());
    call.linear_scale = linear_scale.data();
  }
  if (Co < 16 || chunks * kc > K4 || Co % 16 != 0) {
    call.copied_from = Co < 16 ? 0 : chunks - 1;
    const int64_t g0 = call.copied_from * kc, groups = (chunks - call.copied_from) * kc;
    b_copy.assign(size_t(groups * padded_co * 4), 0);
    for (int64_t g = 0; g < groups && g0 + g < K4; ++g)
      std::memcpy(b_copy.data() + g * padded_co * 4, packed_weight + (g0 + g) * Co * 4, size_t(Co * 4));
    call.b_copy = b_copy.data();
  }

  TileConfig config;
  for (int t = 0; t < 4; ++t) config.rows[t] = 16, config.colsb[t] = 64;
  for (int t = 4; t < 6; ++t) config.rows[t] = 16, config.colsb[t] = uint16_t(4 * kc);
  for (int t = 6; t < 8; ++t) config.rows[t] = uint8_t(kc), config.colsb[t] = 64;
  _tile_loadconfig(&config);
  // Software pipeline: a block's requantization runs while the next block's dot products are in flight (the tile
  // stores wait for them), double-buffered. Measured against requantizing right after the stores: 0-10% faster per
  // X3D pointwise layer (most on the K = 24-108 ones), never slower beyond the noise.
  alignas(64) Block acc[2];
  int current = 0;
  Placement pending;
  auto step = [&](auto nb, const int8_t* a, int64_t a_stride, const Placement& at) {
    amx_dots<decltype(nb)::value>(call, a, a_stride, at.n0);
    if (pending.rows) amx_requantize(call, acc[1 - current], pending);
    amx_store<decltype(nb)::value>(acc[current]);
    pending = at;
    current = 1 - current;
  };
  for (int64_t p0 = p_begin; p0 < p_end; p0 += 32) {
    const int rows = int(std::min<int64_t>(32, p_end - p0));
    const int8_t* a = input + p0 * Ci;
    int64_t a_stride = Ci;
    if ((p0 + 31) * Ci + row_bytes > positions * Ci) {
      a_copy.assign(size_t(32 * row_bytes), 0);
      for (int64_t r = 0; r < std::min<int64_t>(32, positions - p0); ++r)
        std::memcpy(a_copy.data() + r * row_bytes, input + (p0 + r) * Ci, size_t(Ci));
      a = a_copy.data();
      a_stride = row_bytes;
    }
    int64_t nb = 0;
    for (; nb + 2 <= n_blocks; nb += 2) step(std::integral_constant<int, 2>{}, a, a_stride, {p0, nb * 16, rows, 2});
    if (nb < n_blocks) step(std::integral_constant<int, 1>{}, a, a_stride, {p0, nb * 16, rows, 1});
  }
  if (pending.rows) amx_requantize(call, acc[1 - current], pending);
  _tile_release();
}

// Measured (bench/int8_kernels.py --amx and small-M runs, Sapphire Rapids, 1 thread): AMX is 1.2-1.8x faster than
// VNNI on every X3D pointwise layer, but up to ~10% slower below 16 positions (the head's 432->2048 on one position:
// a 32-row panel of mostly padding, the zero-padded B tail copied for it) and on tiny layers, where its fixed costs
// (tile configuration, padded copies) exceed the dot products.
bool amx_pays(const Conv3dShape& s) {
  const int64_t positions = s.rows() * s.out_w();
  return s.is_pointwise() && positions >= 16 && positions * s.in_channels * s.out_channels >= (int64_t(1) << 18);
}

void qconv3d_amx(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                 const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end) {
  if (amx_pays(s))
    qconv3d_amx_pointwise(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
  else
    qconv3d_avx512vnni(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
}

}  // namespace pyvideo::kernels
