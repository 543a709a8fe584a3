// Per-channel parameters for flat runs over channels-last values.
//
// A run over positions x C channels (consecutive positions of a channels-last tensor) can be processed in full vectors
// of W lanes whatever C is, if every lane finds its channel's parameter: the lane at flat index f of the run belongs to
// channel f mod C. The parameters are read through copies tiled with a period P that is a multiple of C and at least W
// (value i is channel i mod C's) and P + W long, so the vector at f reads its lanes' values at [p, p + W) with
// p = f mod P, which steps by W with one subtraction. Per position (C lanes, then a masked remainder) C = 54 fills 54
// of every 64 lanes, and each position's short loop leaves dependent activation chains little to overlap.
#pragma once
#include <cstdint>

namespace pyvideo::kernels::detail {

inline int64_t channel_period(int64_t channels, int width) { return channels * ((width + channels - 1) / channels); }

// out[i] = value(i mod channels) for i < length (channel by channel, no division per entry: the tiles are rebuilt
// on every kernel call).
template <class T, class Value>
void tile_channels(int64_t channels, int64_t length, Value value, T* out) {
  for (int64_t i = 0; i < length;)
    for (int64_t c = 0; c < channels && i < length; ++c, ++i) out[i] = T(value(c));
}

// The next vector's offset into the tiled copies: p + width, less the period when it reaches it.
inline int64_t next_tile_offset(int64_t p, int width, int64_t period) {
  p += width;
  return p >= period ? p - period : p;
}

// A flat run of n values in vectors of `width` lanes, starting at channel 0 (tile offset 0): group(f, at) for each U
// consecutive full vectors from value f (at[u]: vector u's tile offset), so the caller can interleave their chains of
// dependent operations, then one(f, p, lanes) for each remaining vector, the last one partial where n ends inside it.
template <int U, class Group, class One>
[[gnu::always_inline]] inline void for_each_tile_vector(int64_t n, int width, int64_t period, Group&& group,
                                                        One&& one) {
  int64_t f = 0, p = 0;
  for (; f + U * width <= n; f += U * width) {
    int64_t at[U];
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      at[u] = p;
      p = next_tile_offset(p, width, period);
    }
    group(f, at);
  }
  for (; f < n; f += width, p = next_tile_offset(p, width, period)) one(f, p, int(n - f < width ? n - f : width));
}

}  // namespace pyvideo::kernels::detail
