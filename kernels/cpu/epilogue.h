// What a convolution does to its accumulators before storing them: add the (BatchNorm-folded) bias, add an optional
// residual tensor laid out like the output, then apply an activation. Fusing this into the kernel's store saves one
// full pass over the output per fused op.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace pyvideo::kernels {

enum class Activation : int32_t { identity = 0, relu = 1, swish = 2, hswish = 3, sigmoid = 4 };

// A per-sample channel scale and activation applied to a conv's input as it is read:
// x[n, t, h, w, k] -> activation(x[n, t, h, w, k] * scale[n * C_in + k]). A squeeze-excitation (gate = scale, followed
// by its activation) fused into the pointwise conv that reads its output, so that output is never stored.
struct InputScale {
  const float* scale = nullptr;  // [N, C_in]
  int64_t positions = 0;         // T * H * W of one sample: input row r (of N*T*H*W) belongs to sample r / positions
  Activation activation = Activation::identity;
};

struct Epilogue {
  const float* bias = nullptr;      // [C_out] or nullptr (zero)
  const float* residual = nullptr;  // same layout and size as the output, or nullptr
  Activation activation = Activation::identity;
  // Depthwise kernels only (the dense ones require nullptr): [rows, C] where each output row (n, ot, oh) adds the sum
  // over its columns of the values it stores, i.e. after residual and activation. The caller zeroes it; rows are
  // disjoint between threads, so row ranges run concurrently without races and the result does not depend on how
  // rows were split. A squeeze-excitation reads its channel means from here instead of re-reading the output.
  float* row_sums = nullptr;
  // Dense kernels only, and only for pointwise stride-1 shapes (1x1x1 kernel, no padding; flattened or not): the
  // input transform above, or nullptr.
  const InputScale* input_scale = nullptr;
};

// The reference definitions (std::exp): swish x*sigmoid(x), hswish x*relu6(x+3)/6.
inline float activate_scalar(float x, Activation act) {
  switch (act) {
    case Activation::identity: return x;
    case Activation::relu: return x < 0.0f ? 0.0f : x;  // as torch.relu: a NaN stays NaN, -0 stays -0
    case Activation::swish: return x / (1.0f + std::exp(-x));
    case Activation::hswish: return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case Activation::sigmoid: return 1.0f / (1.0f + std::exp(-x));
  }
  return x;
}

namespace detail {

// exp(-x) for vectors, x already in [-80, 80] (sigmoid and swish need only that): Cody-Waite range reduction
// -x = n*ln2 + r, a degree-6 polynomial for e^r (near-minimax, 4e-9 relative in exact arithmetic), then p * 2^n.
// The clamp keeps results and their reciprocals normal floats (denormals cost microcode assists; scale2 is exact
// there, so every ISA scales alike); beyond it sigmoid/swish are 0 to 1e-33. n comes from one FMA that adds
// 1.5 * 2^23 (the sum's rounding is the rounding to an integer) and one subtraction; the negation is folded into the
// constants and the reduction's fused multiply-adds (fnmsub gives -x - n*ln2_hi in one rounding). With the clamp,
// 14 vector ops on AVX-512 (vscalefps for the scaling) where exp(0 - x) with a separate negation, roundscale,
// degree-7 polynomial and integer 2^n took 21 (swish: ~0.75x the time per element, same maximum error, one-off
// timing loop).
// On U vectors at once, each step applied to all U before the next (see activate_n); activate() runs it with U = 1.
template <class V, int U>
[[gnu::always_inline]] inline void exp_neg_clamped(const typename V::reg (&x)[U], typename V::reg (&e)[U]) {
  using reg = typename V::reg;
  const reg round_bias = V::set1(12582912.0f);  // 1.5 * 2^23
  reg n[U], r[U];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) n[u] = V::sub(V::fmadd(x[u], V::set1(-1.44269504088896341f), round_bias), round_bias);
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u)  // -x - n*ln2_hi: the product is exact (ln2_hi has 9 bits)
    r[u] = V::fnmsub(n[u], V::set1(0.693359375f), x[u]);
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) r[u] = V::fnmadd(n[u], V::set1(-2.12194440e-4f), r[u]);  // ... - n*ln2_lo
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) e[u] = V::fmadd(V::set1(1.3753952e-3f), r[u], V::set1(8.3689103e-3f));
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) e[u] = V::fmadd(e[u], r[u], V::set1(4.1669488e-2f));
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) e[u] = V::fmadd(e[u], r[u], V::set1(1.6666518e-1f));
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) e[u] = V::fmadd(e[u], r[u], V::set1(4.9999988e-1f));
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) e[u] = V::fmadd(V::mul(e[u], r[u]), r[u], V::add(r[u], V::set1(1.0f)));
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) e[u] = V::scale2(e[u], n[u]);
}

// sigmoid(y), or with Swish y * sigmoid(y), on U vectors in place. Swish raises y to -80 in both factors: below -80
// the result is -1.4e-33 instead of y * 1.8e-35, which is far from 0 for huge |y|. The constants go first in min / max:
// x86 min/max return the second operand on NaN, so a NaN y stays NaN.
template <class V, int U, bool Swish>
[[gnu::always_inline]] inline void sigmoid_family(typename V::reg (&y)[U]) {
  using reg = typename V::reg;
  reg low[U], clamped[U], e[U];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) low[u] = V::max(V::set1(-80.0f), y[u]);
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) clamped[u] = V::min(V::set1(80.0f), low[u]);
  exp_neg_clamped<V, U>(clamped, e);
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) e[u] = V::rcp(V::add(V::set1(1.0f), e[u]));
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) y[u] = Swish ? V::mul(low[u], e[u]) : e[u];
}

// Always inlined: with a runtime `act` in a kernel's per-vector epilogue, GCC otherwise kept it an out-of-line call
// (through the PLT, the template being an exported symbol), which spilled the caller's registers on every vector.
template <class V>
[[gnu::always_inline]] inline typename V::reg activate(typename V::reg x, Activation act) {
  switch (act) {
    case Activation::identity: return x;
    case Activation::relu: return V::relu(x);
    case Activation::swish: {
      typename V::reg y[1] = {x};
      sigmoid_family<V, 1, true>(y);
      return y[0];
    }
    case Activation::hswish: {
      const auto relu6 = V::min(V::max(V::add(x, V::set1(3.0f)), V::zero()), V::set1(6.0f));
      return V::mul(V::mul(x, relu6), V::set1(1.0f / 6.0f));
    }
    case Activation::sigmoid: {
      typename V::reg y[1] = {x};
      sigmoid_family<V, 1, false>(y);
      return y[0];
    }
  }
  return x;
}

// activate() on U vectors at once, each step of the sigmoid / swish applied to all U before the next: the same
// operations per element, so the same bits. Written as `for u: y[u] = activate(y[u])`, GCC emits the U chains one
// after another (x86 GCC schedules nothing before register allocation), and each chain's ~25 dependent operations
// keep the FP units waiting: on a Zen 1 core a swish took 1.49 ns per element that way and 1.16 ns interleaved, four
// AVX2 vectors at a time (one-off microbenchmark, bit-identical outputs). In-order ARM cores cannot overlap the
// chains by themselves at all.
template <class V, int U, Activation A>
[[gnu::always_inline]] inline void activate_n(typename V::reg (&y)[U]) {
  if constexpr (A == Activation::swish || A == Activation::sigmoid) {
    sigmoid_family<V, U, A == Activation::swish>(y);
  } else {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) y[u] = activate<V>(y[u], A);
  }
}

}  // namespace detail
}  // namespace pyvideo::kernels
