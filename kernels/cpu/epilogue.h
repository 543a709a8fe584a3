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
    case Activation::relu: return x > 0.0f ? x : 0.0f;
    case Activation::swish: return x / (1.0f + std::exp(-x));
    case Activation::hswish: return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case Activation::sigmoid: return 1.0f / (1.0f + std::exp(-x));
  }
  return x;
}

namespace detail {

// exp(x) for vectors: Cody-Waite range reduction x = n*ln2 + r, a degree-6 polynomial for e^r (relative error
// ~2 ulp), then scaling by 2^n through the exponent bits. Inputs are clamped to [-80, 80]: results and their
// reciprocals stay normal floats (denormals cost microcode assists); beyond that sigmoid/swish are 0 to 1e-34.
template <class V>
typename V::reg exp_approx(typename V::reg x) {
  using reg = typename V::reg;
  x = V::min(V::max(x, V::set1(-80.0f)), V::set1(80.0f));
  const reg n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  reg r = V::sub(x, V::mul(n, V::set1(0.693359375f)));
  r = V::sub(r, V::mul(n, V::set1(-2.12194440e-4f)));
  reg p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(V::mul(p, r), r, V::add(r, V::set1(1.0f)));
  return V::mul(p, V::pow2i(n));
}

template <class V>
typename V::reg activate(typename V::reg x, Activation act) {
  switch (act) {
    case Activation::identity: return x;
    case Activation::relu: return V::max(x, V::zero());
    case Activation::swish:
      return V::mul(x, V::rcp(V::add(V::set1(1.0f), exp_approx<V>(V::sub(V::zero(), x)))));
    case Activation::hswish: {
      const auto relu6 = V::min(V::max(V::add(x, V::set1(3.0f)), V::zero()), V::set1(6.0f));
      return V::mul(V::mul(x, relu6), V::set1(1.0f / 6.0f));
    }
    case Activation::sigmoid:
      return V::rcp(V::add(V::set1(1.0f), exp_approx<V>(V::sub(V::zero(), x))));
  }
  return x;
}

}  // namespace detail
}  // namespace pyvideo::kernels
