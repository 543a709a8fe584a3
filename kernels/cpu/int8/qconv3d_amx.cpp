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
#include <stdexcept>
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

// The requantization of qconv3d_simd's tiles, on one stored block whose row i goes to output position out_pos[i]
// (nowhere when out_pos[i] < 0: a multi-tap panel's grid positions past a row's end). Everything the loop reads is
// copied into locals first: the int8 output stores may alias any memory, so through pointers the compiler reloaded
// (and re-converted) the parameters after every store.
void amx_requantize_rows(const AmxCall& c, const Block& acc, const int64_t* out_pos, int rows, int64_t n0, int nb) {
  const Requant q = *c.q;
  const int64_t Co = c.Co;
  int8_t* const output = c.output;
  const float* const linear_scale = c.linear_scale;
  const bool relu = q.activation == Activation::relu;
  const detail::Requantizer<F> requantizer(q);
  for (int j = 0; j < nb; ++j) {
    const int64_t ch = n0 + 16 * j;
    const int lanes = int(std::min<int64_t>(16, Co - ch));
    auto sum = [&](int i) { return _mm512_cvtepi32_ps(_mm512_load_si512(&acc[i][16 * j])); };
    if (linear_scale) {
      for (int i = 0; i < rows; ++i)
        if (out_pos[i] >= 0)
          detail::requantize_linear_store<F>(sum(i), linear_scale + ch, out_pos[i] * Co + ch, lanes, relu, q, output);
    } else {
      for (int i = 0; i < rows; ++i)
        if (out_pos[i] >= 0) requantizer.store(sum(i), ch, out_pos[i] * Co + ch, lanes, output);
    }
  }
}

// A pointwise block: rows at the consecutive positions p0 + [0, rows). Its own loop, not amx_requantize_rows with
// out_pos = p0 + i: the position table and its check per row made X3D-XS's int8 programs 2.5-7% slower
// (bench/int8_dynamic.py, both orders).
void amx_requantize(const AmxCall& c, const Block& acc, const Placement& at) {
  const Requant q = *c.q;
  const int64_t Co = c.Co, p0 = at.p0;
  const int rows = at.rows;
  int8_t* const output = c.output;
  const float* const linear_scale = c.linear_scale;
  const bool relu = q.activation == Activation::relu;
  const detail::Requantizer<F> requantizer(q);
  for (int j = 0; j < at.nb; ++j) {
    const int64_t ch = at.n0 + 16 * j;
    const int lanes = int(std::min<int64_t>(16, Co - ch));
    auto sum = [&](int i) { return _mm512_cvtepi32_ps(_mm512_load_si512(&acc[i][16 * j])); };
    if (linear_scale)
      for (int i = 0; i < rows; ++i)
        detail::requantize_linear_store<F>(sum(i), linear_scale + ch, (p0 + i) * Co + ch, lanes, relu, q, output);
    else
      for (int i = 0; i < rows; ++i) requantizer.store(sum(i), ch, (p0 + i) * Co + ch, lanes, output);
  }
}

// LDTILECFG from `config`. GCC (14) does not treat the instruction as reading its 64-byte operand: with the
// configuration in a local that nothing else reads, dead-store elimination dropped the rows / colsb stores and kept
// only the zeroing and the palette, so every tile had 0 rows and the first tileloadd raised SIGILL (seen in this
// file's first multi-tap version; objdump showed `vmovdqa64 zmm0 (zeros), movb $1, ldtilecfg`). The empty asm with
// a memory clobber makes the stores happen first.
void load_tile_config(const TileConfig& config) {
  __asm__ volatile("" : : "r"(&config) : "memory");
  _tile_loadconfig(&config);
}

// Shared by the pointwise and multi-tap entries: the per-call tables (zero-point correction, linear requantization
// factors) and the tile configuration for K chunks of kc groups, which the callers load right before their tile
// instructions.
struct AmxSetup {
  int64_t K4, chunks, kc, n_blocks, padded_co, row_bytes;
  TileConfig config;
};

AmxSetup amx_setup(const Conv3dShape& s, const int32_t* weight_sum, const Requant& q, std::vector<int32_t>& correction,
                   std::vector<float>& linear_scale, AmxCall& call) {
  AmxSetup u;
  const int64_t Ci = s.in_channels, Co = s.out_channels;
  u.K4 = (Ci + 3) / 4;
  u.chunks = (u.K4 + 15) / 16;
  u.kc = (u.K4 + u.chunks - 1) / u.chunks;
  u.n_blocks = (Co + 15) / 16;
  u.padded_co = u.n_blocks * 16;
  u.row_bytes = 4 * u.kc * u.chunks;  // what the A tiles read of each position
  correction.assign(size_t(u.padded_co), 0);
  for (int64_t c = 0; c < Co; ++c) correction[size_t(c)] = q.bias[c] - q.input_zero_point * weight_sum[c];
  call.correction = correction.data();
  call.linear_scale = nullptr;
  if (detail::linear_requant(q)) {  // as qconv3d_simd computes it, for the same bits
    linear_scale.resize(size_t(u.padded_co));
    detail::linear_scales(q, Co, u.padded_co, linear_scale.data());
    call.linear_scale = linear_scale.data();
  }
  for (int t = 0; t < 4; ++t) u.config.rows[t] = 16, u.config.colsb[t] = 64;
  for (int t = 4; t < 6; ++t) u.config.rows[t] = 16, u.config.colsb[t] = uint16_t(4 * u.kc);
  for (int t = 6; t < 8; ++t) u.config.rows[t] = uint8_t(u.kc), u.config.colsb[t] = 64;
  return u;
}

// One 32-position panel x one or two 16-channel blocks from n0 of a multi-tap conv: the C tiles start as the
// correction, accumulate every tap's and K chunk's dot products (tap t's A rows at a + a_tap[t], a_stride bytes
// apart; its B at weights + t * tap_b, b_cols * 4 bytes per row) and are stored to acc.
struct TapPanels {
  const int8_t* weights;
  int64_t tap_b, b_cols, a_stride;
  const int64_t* a_tap;  // [taps] byte offsets of each tap's rows
  int64_t taps;
  const AmxSetup* u;
  const int32_t* correction;
};

void amx_tap_panel(const TapPanels& c, const int8_t* a, int64_t n0, bool two, Block& acc) {
  _tile_loadd(0, c.correction + n0, 0);
  _tile_loadd(2, c.correction + n0, 0);
  if (two) {
    _tile_loadd(1, c.correction + n0 + 16, 0);
    _tile_loadd(3, c.correction + n0 + 16, 0);
  }
  const int64_t kc = c.u->kc, b_stride = c.b_cols * 4;
  for (int64_t t = 0; t < c.taps; ++t) {
    const int8_t* at = a + c.a_tap[t];
    const int8_t* bt = c.weights + t * c.tap_b + n0 * 4;
    for (int64_t k = 0; k < c.u->chunks; ++k) {
      const int8_t* ak = at + k * 4 * kc;
      const int8_t* b = bt + k * kc * b_stride;
      _tile_loadd(4, ak, c.a_stride);
      _tile_loadd(6, b, b_stride);
      _tile_loadd(5, ak + 16 * c.a_stride, c.a_stride);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(2, 5, 6);
      if (two) {
        _tile_loadd(7, b + 64, b_stride);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(3, 5, 7);
      }
    }
  }
  _tile_stored(0, &acc[0][0], 128);
  _tile_stored(2, &acc[16][0], 128);
  if (two) {
    _tile_stored(1, &acc[0][16], 128);
    _tile_stored(3, &acc[16][16], 128);
  }
}

// 32 output positions and where each row's result goes (out_pos[i] < 0: computed, not stored).
struct Panel {
  int64_t start;  // the padded-grid path: grid position of its first row (the gathered path indexes its panels)
  int rows;
  int64_t out_pos[32];
};

// Panels in groups of about 512 KB of A rows (`panel_bytes` each), channel pairs outside the panels of a group: a
// pair's weights (taps x C_in x 32 channels) stay in L2 while the group's panels read them, and the group's input
// stays in L2 across the pairs (pairs outside all panels re-read a large input from memory per pair; panels outside
// pairs re-read all the weights per panel). a_of(panel index) gives a panel's A rows.
template <class AOf>
void amx_panel_groups(const AmxCall& call, const TapPanels& c, const Panel* panels, size_t count, int64_t panel_bytes,
                      AOf a_of) {
  alignas(64) Block acc;
  const size_t group = size_t(std::max<int64_t>(1, (int64_t(512) << 10) / std::max<int64_t>(1, panel_bytes)));
  for (size_t first = 0; first < count; first += group)
    for (int64_t nb = 0; nb < c.u->n_blocks; nb += 2) {
      const int64_t n0 = nb * 16;
      const bool two = nb + 2 <= c.u->n_blocks;
      for (size_t pi = first; pi < std::min(count, first + group); ++pi) {
        amx_tap_panel(c, a_of(pi), n0, two, acc);
        amx_requantize_rows(call, acc, panels[pi].out_pos, panels[pi].rows, n0, two ? 2 : 1);
      }
    }
}

// The weights of a multi-tap call as the tiles read them: in place ([tap][K4][Co][4], each tap's B exactly the
// pointwise layout), or, when a tile would read past a tap's groups or channels, every tap from a zero-padded copy
// [tap][chunks * kc][padded_co][4].
TapPanels tap_weights(const AmxSetup& u, const int8_t* packed_weight, int64_t Co, int64_t taps,
                      std::vector<int8_t>& b_copy) {
  TapPanels c{};
  const bool copied = Co < 16 || u.chunks * u.kc > u.K4 || Co % 16 != 0;
  const int64_t tap_groups = copied ? u.chunks * u.kc : u.K4;
  c.b_cols = copied ? u.padded_co : Co;
  c.tap_b = tap_groups * c.b_cols * 4;
  if (copied) {
    b_copy.assign(size_t(taps * tap_groups * u.padded_co * 4), 0);
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t g = 0; g < u.K4; ++g)
        std::memcpy(b_copy.data() + (t * tap_groups + g) * u.padded_co * 4, packed_weight + (t * u.K4 + g) * Co * 4,
                    size_t(Co * 4));
  }
  c.weights = copied ? b_copy.data() : packed_weight;
  c.taps = taps;
  c.u = &u;
  return c;
}

// Multi-tap stride-1 convs: every tap (kt, kh, kw) is a pointwise GEMM of the same output positions over shifted
// input positions. The input planes a call reads are first copied into a buffer padded in T, H and W with the zero
// point (which the correction cancels, as for the VNNI kernel's padding taps), so every tap of every output lies
// inside it. In that padded grid, output (ot, oh, ow) and tap (kt, kh, kw) read position
// ((ot - ot0 + kt) * Hp + oh + kh) * Wp + ow + kw: consecutive outputs of a row are consecutive positions, and the
// rows of a plane are Wp apart, so a 32-position A panel (stride C_in) covers several short rows at once (7x7 planes:
// 61 grid positions for 49 outputs instead of 7 panels); the Wp - Wo positions between rows are computed and not
// stored. The C tiles accumulate every tap and K chunk before one store, so the int32 sums are the VNNI kernel's.
void qconv3d_amx_grid(const Conv3dShape& s, const int8_t* input, const Requant& q, const AmxCall& call,
                      const AmxSetup& u, TapPanels c, std::vector<Panel>& panels, int64_t item_begin,
                      int64_t item_end) {
  const int64_t Ci = s.in_channels;
  const int64_t To = s.out_t(), Ho = s.out_h(), Wo = s.out_w(), blocks = s.column_blocks(), item_w = s.item_width();
  const int64_t KT = s.kernel_t, KH = s.kernel_h, KW = s.kernel_w;
  const int64_t Hp = s.in_h + 2 * s.pad_h, Wp = s.in_w + 2 * s.pad_w;
  thread_local std::vector<int8_t> padded;
  std::vector<int64_t> a_tap;  // byte offsets in the padded grid
  for (int64_t kt = 0; kt < KT; ++kt)
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) a_tap.push_back(((kt * Hp + kh) * Wp + kw) * Ci);
  c.a_tap = a_tap.data();
  c.a_stride = Ci;

  const int64_t first_row = item_begin / blocks, last_row = (item_end - 1) / blocks;
  const int64_t first_col = item_begin % blocks * item_w;
  const int64_t last_col_end = std::min(Wo, (item_end - 1) % blocks * item_w + item_w);
  // One sample's output planes at a time: [ot0, ot1] of sample n (rows first_row .. last_row).
  for (int64_t row = first_row; row <= last_row;) {
    const int64_t n = row / (To * Ho), ot0 = row / Ho % To;
    const int64_t sample_last_row = std::min(last_row, (n + 1) * To * Ho - 1);
    const int64_t ot1 = sample_last_row / Ho % To;
    // The padded planes ot0 .. ot1 + KT - 1 (padded-T indices; input plane = index - pad_t).
    const int64_t planes = ot1 - ot0 + KT, plane = Hp * Wp;
    padded.assign(size_t((planes * plane + 32) * Ci + u.row_bytes + 64), int8_t(q.input_zero_point));
    for (int64_t j = 0; j < planes; ++j) {
      const int64_t it = ot0 + j - s.pad_t;
      if (it < 0 || it >= s.in_t) continue;
      for (int64_t ih = 0; ih < s.in_h; ++ih)
        std::memcpy(padded.data() + ((j * Hp + ih + s.pad_h) * Wp + s.pad_w) * Ci,
                    input + (((n * s.in_t + it) * s.in_h + ih) * s.in_w) * Ci, size_t(s.in_w * Ci));
    }
    panels.clear();
    for (int64_t ot = ot0; ot <= ot1; ++ot) {
      const int64_t plane_row0 = (n * To + ot) * Ho;  // output row of (n, ot, 0)
      const int64_t r0 = std::max(row, plane_row0), r1 = std::min(sample_last_row, plane_row0 + Ho - 1);
      const int64_t base = (ot - ot0) * plane;
      const int64_t g_begin = base + (r0 - plane_row0) * Wp + (r0 == first_row ? first_col : 0);
      const int64_t g_end = base + (r1 - plane_row0) * Wp + (r1 == last_row ? last_col_end : Wo);
      for (int64_t g0 = g_begin; g0 < g_end; g0 += 32) {
        Panel panel;
        panel.start = g0;
        panel.rows = int(std::min<int64_t>(32, g_end - g0));
        for (int i = 0; i < panel.rows; ++i) {
          const int64_t g = g0 + i - base, oh = g / Wp, ow = g % Wp;
          panel.out_pos[i] = ow < Wo ? (plane_row0 + oh) * Wo + ow : -1;
        }
        panels.push_back(panel);
      }
    }
    load_tile_config(u.config);
    amx_panel_groups(call, c, panels.data(), panels.size(), 32 * Ci,
                     [&](size_t pi) { return padded.data() + panels[pi].start * Ci; });
    row = sample_last_row + 1;
  }
}

// Strided convs (a ResNet stage's first 1x3x3 conv_b and its strided shortcut projection, one tap): positions a
// stride apart have no common stride across rows, so each group of panels first gathers its rows: for every output
// position and tap the C_in input bytes (the zero point where the tap falls in the padding), row_bytes apart, into
// [panel][tap][32 rows]. The dot products and the epilogue are the grid path's.
void qconv3d_amx_gathered(const Conv3dShape& s, const int8_t* input, const Requant& q, const AmxCall& call,
                          const AmxSetup& u, TapPanels c, std::vector<Panel>& panels, int64_t item_begin,
                          int64_t item_end) {
  const int64_t Ci = s.in_channels;
  const int64_t To = s.out_t(), Ho = s.out_h(), Wo = s.out_w();
  const int64_t KT = s.kernel_t, KH = s.kernel_h, KW = s.kernel_w, taps = c.taps;
  thread_local std::vector<int8_t> gathered;
  const int64_t rb = u.row_bytes, panel_bytes = taps * 32 * rb;
  std::vector<int64_t> a_tap;
  for (int64_t t = 0; t < taps; ++t) a_tap.push_back(t * 32 * rb);
  c.a_tap = a_tap.data();
  c.a_stride = rb;

  // The call's output positions, 32 per panel, in order.
  panels.clear();
  Panel panel;
  panel.rows = 0;
  s.for_each_row_span(item_begin, item_end, [&](int64_t row, int64_t ow0, int64_t ow1) {
    for (int64_t ow = ow0; ow < ow1; ++ow) {
      panel.out_pos[panel.rows++] = row * Wo + ow;
      if (panel.rows == 32) {
        panels.push_back(panel);
        panel.rows = 0;
      }
    }
  });
  if (panel.rows) panels.push_back(panel);

  const size_t group = size_t(std::max<int64_t>(1, (int64_t(512) << 10) / panel_bytes));
  for (size_t first = 0; first < panels.size(); first += group) {
    const size_t count = std::min(panels.size() - first, group);
    gathered.assign(size_t(int64_t(count) * panel_bytes + 64), int8_t(q.input_zero_point));
    for (size_t pi = 0; pi < count; ++pi) {
      const Panel& p = panels[first + pi];
      for (int i = 0; i < p.rows; ++i) {
        const int64_t r = p.out_pos[i] / Wo, ow = p.out_pos[i] % Wo;
        const int64_t n = r / (To * Ho), ot = r / Ho % To, oh = r % Ho;
        int64_t t = 0;
        for (int64_t kt = 0; kt < KT; ++kt)
          for (int64_t kh = 0; kh < KH; ++kh)
            for (int64_t kw = 0; kw < KW; ++kw, ++t) {
              const int64_t it = ot * s.stride_t - s.pad_t + kt, ih = oh * s.stride_h - s.pad_h + kh;
              const int64_t iw = ow * s.stride_w - s.pad_w + kw;
              if (it < 0 || it >= s.in_t || ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) continue;
              std::memcpy(gathered.data() + int64_t(pi) * panel_bytes + (t * 32 + i) * rb,
                          input + (((n * s.in_t + it) * s.in_h + ih) * s.in_w + iw) * Ci, size_t(Ci));
            }
      }
    }
    load_tile_config(u.config);  // the panels just gathered are one group
    amx_panel_groups(call, c, panels.data() + first, count, panel_bytes,
                     [&](size_t pi) { return gathered.data() + int64_t(pi) * panel_bytes; });
  }
}

// Convs whose kernel rows are narrow (kernel_w * C_in <= 64 bytes: RGB stems, 3 -> 64 channels 1x7x7 or 5x7x7, and
// SlowFast's 8-channel fast pathway): one tap per C_in would fill a quarter of a 64-byte A row or less, and gathering
// whole windows per position cost more than VNNI's conv (8th session: 5.8 -> 8.75 ms on Slow-R50's stem). Instead each
// kernel line (kt, kh) is one tap whose K is its kernel_w * C_in contiguous bytes, as the VNNI kernel folds them:
// per output row (n, ot, oh) its kt * kh input lines are copied once over the row's window, the padding as the zero
// point, and a 32-column panel's A tile reads each line in place with a row stride of stride_w * C_in bytes (6 for a
// stem: consecutive rows overlap). The bytes past a row's kernel_w * C_in meet zero weights. B per line is the folded
// weights [line][groups][padded_co][4]. The C tiles accumulate every line before one store, so the int32 sums are the
// VNNI kernel's and the shared epilogue gives its outputs bit for bit.
void qconv3d_amx_lines(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight,
                       const int32_t* weight_sum, const Requant& q, int8_t* output, int64_t item_begin,
                       int64_t item_end) {
  const int64_t Ci = s.in_channels, Co = s.out_channels, Wo = s.out_w();
  const int64_t KT = s.kernel_t, KH = s.kernel_h, KW = s.kernel_w, SW = s.stride_w, lines = KT * KH;
  thread_local std::vector<int32_t> correction;
  thread_local std::vector<float> linear_scale;
  thread_local std::vector<int8_t> folded, prepped;
  thread_local std::vector<Panel> panels;
  AmxCall call{Co, 0, 0, packed_weight, nullptr, 0, 0, nullptr, nullptr, &q, output};
  AmxSetup u = amx_setup(s, weight_sum, q, correction, linear_scale, call);
  // One K chunk of `groups` 4-byte groups per line.
  const int64_t groups = (KW * Ci + 3) / 4;
  u.K4 = u.kc = groups;
  u.chunks = 1;
  u.row_bytes = 4 * groups;
  for (int t = 4; t < 6; ++t) u.config.colsb[t] = uint16_t(4 * groups);
  for (int t = 6; t < 8; ++t) u.config.rows[t] = uint8_t(groups);
  fold_kernel_lines(s, packed_weight, u.padded_co, folded);
  TapPanels c{};
  c.weights = folded.data();
  c.b_cols = u.padded_co;
  c.tap_b = groups * u.padded_co * 4;
  c.taps = lines;
  c.u = &u;
  c.correction = call.correction;
  c.a_stride = SW * Ci;
  const int8_t zero_point = int8_t(q.input_zero_point);
  std::vector<int64_t> a_tap(static_cast<size_t>(lines), 0);
  load_tile_config(u.config);
  s.for_each_row_span(item_begin, item_end, [&](int64_t row, int64_t ow0, int64_t ow1) {
    const int64_t To = s.out_t(), Ho = s.out_h();
    const int64_t n = row / (To * Ho), ot = row / Ho % To, oh = row % Ho;
    const int64_t count = (ow1 - ow0 + 31) / 32;
    // Each line holds the input columns iw0 + [0, width): every A row of the span's panels (32 per panel, including
    // rows past ow1, computed and not stored) reads 4 * groups bytes from column (ow - ow0) * SW.
    const int64_t iw0 = ow0 * SW - s.pad_w, width = (count * 32 - 1) * SW + KW;
    const int64_t line_bytes = width * Ci + 4 * groups + 64;
    prepped.assign(size_t(lines * line_bytes), zero_point);
    const int64_t lo = std::clamp<int64_t>(-iw0, 0, width), hi = std::clamp<int64_t>(s.in_w - iw0, lo, width);
    for (int64_t kt = 0; kt < KT; ++kt)
      for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t it = ot * s.stride_t - s.pad_t + kt, ih = oh * s.stride_h - s.pad_h + kh;
        a_tap[size_t(kt * KH + kh)] = (kt * KH + kh) * line_bytes;
        if (it < 0 || it >= s.in_t || ih < 0 || ih >= s.in_h || lo >= hi) continue;
        std::memcpy(prepped.data() + (kt * KH + kh) * line_bytes + lo * Ci,
                    input + (((n * s.in_t + it) * s.in_h + ih) * s.in_w + iw0 + lo) * Ci, size_t((hi - lo) * Ci));
      }
    c.a_tap = a_tap.data();
    panels.clear();
    for (int64_t p = 0; p < count; ++p) {
      Panel panel;
      panel.start = p * 32;
      panel.rows = 32;
      for (int i = 0; i < 32; ++i) {
        const int64_t ow = ow0 + p * 32 + i;
        panel.out_pos[i] = ow < ow1 ? row * Wo + ow : -1;
      }
      panels.push_back(panel);
    }
    amx_panel_groups(call, c, panels.data(), panels.size(), 32 * SW * Ci,
                     [&](size_t pi) { return prepped.data() + panels[pi].start * SW * Ci; });
  });
}

}  // namespace

void qconv3d_amx_pointwise(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight,
                           const int32_t* weight_sum, const Requant& q, const int8_t* /*pad_row*/, int8_t* output,
                           int64_t item_begin, int64_t item_end) {
  if (item_begin >= item_end) return;
  const int64_t Ci = s.in_channels, Co = s.out_channels, K4 = (Ci + 3) / 4;
  const int64_t Wo = s.out_w(), blocks = s.column_blocks(), item_w = s.item_width();
  // Items run row by row and cover whole rows, so a range of items is one range of positions (input and output
  // positions coincide in a pointwise stride-1 unpadded conv).
  const int64_t last = item_end - 1;
  const int64_t p_begin = (item_begin / blocks) * Wo + (item_begin % blocks) * item_w;
  const int64_t p_end = (last / blocks) * Wo + std::min(Wo, (last % blocks) * item_w + item_w);
  const int64_t positions = s.rows() * Wo;

  thread_local std::vector<int32_t> correction;
  thread_local std::vector<float> linear_scale;
  thread_local std::vector<int8_t> b_copy, a_copy;
  AmxCall call{Co, 0, 0, packed_weight, nullptr, 0, 0, nullptr, nullptr, &q, output};
  const AmxSetup u = amx_setup(s, weight_sum, q, correction, linear_scale, call);
  const int64_t chunks = u.chunks, kc = u.kc, n_blocks = u.n_blocks, padded_co = u.padded_co, row_bytes = u.row_bytes;
  call.kc = kc;
  call.chunks = call.copied_from = chunks;
  call.padded_co = padded_co;
  if (Co < 16 || chunks * kc > K4 || Co % 16 != 0) {
    call.copied_from = Co < 16 ? 0 : chunks - 1;
    const int64_t g0 = call.copied_from * kc, groups = (chunks - call.copied_from) * kc;
    b_copy.assign(size_t(groups * padded_co * 4), 0);
    for (int64_t g = 0; g < groups && g0 + g < K4; ++g)
      std::memcpy(b_copy.data() + g * padded_co * 4, packed_weight + (g0 + g) * Co * 4, size_t(Co * 4));
    call.b_copy = b_copy.data();
  }
  load_tile_config(u.config);
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

// Measured (one thread, in-process A/B against AVX512-VNNI, 7 alternating rounds): 5x7x7 RGB stems 2.84x (3 -> 64,
// 35 lines) and 1.36x (3 -> 8, against VNNI's paired groups), X3D's 1x3x3 stem (3 -> 24, 3 lines) 1.33x, an 8 -> 8
// 1x3x3 conv 1.48x; but Slow-R50's 1x7x7 stem (3 -> 64, 7 lines) 0.93x: with few lines the tile dot products do not
// outweigh what each 32 x 32 block costs besides them, and at a multiple of 16 channels VNNI idles no lanes. Hence:
// many lines, or C_out not a multiple of 16.
bool amx_lines_pays(const Conv3dShape& s) {
  const int64_t taps = s.kernel_t * s.kernel_h * s.kernel_w, positions = s.rows() * s.out_w();
  const bool many_lines = s.kernel_t * s.kernel_h >= 15, idle_lanes = s.out_channels % 16 != 0;
  return !s.is_pointwise() && s.kernel_w > 1 && s.kernel_w * s.in_channels <= 64 && (many_lines || idle_lanes) &&
         positions >= 16 && positions * taps * s.in_channels * s.out_channels >= (int64_t(1) << 20);
}

bool amx_taps_pays(const Conv3dShape& s) {
  const int64_t taps = s.kernel_t * s.kernel_h * s.kernel_w, positions = s.rows() * s.out_w();
  return !s.is_pointwise() && s.in_channels >= 32 && s.out_channels >= 16 && positions >= 16 &&
         positions * taps * s.in_channels * s.out_channels >= (int64_t(1) << 20);
}

// The multi-tap entry: the padded-grid path for stride 1, gathered rows otherwise.
void qconv3d_amx_multitap(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight,
                          const int32_t* weight_sum, const Requant& q, const int8_t* /*pad_row*/, int8_t* output,
                          int64_t item_begin, int64_t item_end) {
  if (item_begin >= item_end) return;
  thread_local std::vector<int32_t> correction;
  thread_local std::vector<float> linear_scale;
  thread_local std::vector<int8_t> b_copy;
  thread_local std::vector<Panel> panels;
  AmxCall call{s.out_channels, 0, 0, packed_weight, nullptr, 0, 0, nullptr, nullptr, &q, output};
  const AmxSetup u = amx_setup(s, weight_sum, q, correction, linear_scale, call);
  TapPanels c = tap_weights(u, packed_weight, s.out_channels, s.kernel_t * s.kernel_h * s.kernel_w, b_copy);
  c.correction = call.correction;
  if (s.stride_t == 1 && s.stride_h == 1 && s.stride_w == 1)
    qconv3d_amx_grid(s, input, q, call, u, c, panels, item_begin, item_end);
  else
    qconv3d_amx_gathered(s, input, q, call, u, c, panels, item_begin, item_end);
  _tile_release();
}


// The narrow-line entry (qconv3d_amx_lines): shapes with kernel_w * C_in <= 64 bytes.
void qconv3d_amx_narrow_lines(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight,
                              const int32_t* weight_sum, const Requant& q, const int8_t* /*pad_row*/, int8_t* output,
                              int64_t item_begin, int64_t item_end) {
  if (item_begin >= item_end) return;
  if (s.kernel_w * s.in_channels > 64)
    throw std::invalid_argument("qconv3d_amx_narrow_lines: kernel_w * C_in must be at most 64 bytes");
  qconv3d_amx_lines(s, input, packed_weight, weight_sum, q, output, item_begin, item_end);
  _tile_release();
}

void qconv3d_amx(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight, const int32_t* weight_sum,
                 const Requant& q, const int8_t* pad_row, int8_t* output, int64_t item_begin, int64_t item_end) {
  if (s.co_stride() != s.out_channels)  // a channel range of a wider layer: the AMX paths lay out whole layers
    qconv3d_avx512vnni(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
  else if (amx_pays(s))
    qconv3d_amx_pointwise(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
  else if (amx_lines_pays(s))
    qconv3d_amx_narrow_lines(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
  else if (amx_taps_pays(s))
    qconv3d_amx_multitap(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
  else
    qconv3d_avx512vnni(s, input, packed_weight, weight_sum, q, pad_row, output, item_begin, item_end);
}

}  // namespace pyvideo::kernels
