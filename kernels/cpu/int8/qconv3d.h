// int8 3-D convolutions, channels-last (NDHWC), with fused requantization.
//
// Conventions (docs/notes/accelerator_interface.md): activations are per-tensor asymmetric int8,
// real = scale * (q - zero_point); weights are per-output-channel symmetric int8; accumulation is int32:
//   acc[c] = bias[c] + sum (x_q - input_zero_point) * w[c, ...]        (zero padding reads input_zero_point)
//   v      = float(acc[c]) * dequant_scale[c]  (+ float(r_q - residual_zero_point) * residual_scale)
//   out_q  = clamp(round_half_even(act(v) / output_scale) + output_zero_point, -128, 127)
// or, with per-channel output quantization (a squeeze-excitation output), output_scales[c] / output_zero_points[c]
// in place of output_scale / output_zero_point.
// The SIMD variants match the scalar references within 1 LSB (their exp() is a polynomial, they multiply by
// 1 / output_scale (per channel: output_inverse_scales) instead of dividing, and may scale by dequant_scale /
// output_scale in one FMA, the float-accumulating depthwise variants may round the bias
// differently); the int32 accumulators are exact and almost all outputs are bit-identical.
//
// Dense (groups = 1) conv: input [N,T,H,W,Ci] int8, packed weight [kt*kh*kw][ceil(Ci/4)][Co][4] int8 (four
// consecutive input channels of one output channel are adjacent: the operand layout of VNNI vpdpbusd and ARM sdot;
// input channels past Ci are zero), weight_sum[Co] = sum of each output channel's weights (for the zero-point
// correction), pad_row = Ci bytes of input_zero_point (what taps in the padding read). Work items as in Conv3dShape.
// Depthwise conv: input [N,T,H,W,C], weight [kt,kh,kw,C] int8; a call computes the output rows at positions
// [begin, end) of the line order, as the fp32 variants do (dwconv3d.h). The dot-product variants
// (qdwconv3d_avx512vnni, _avxvnni, _neondot, and _avx2 / _neon with the dot emulated; qdwconv3d_dot.h) repack the
// weights themselves on every call and ignore bias_float; the float-accumulating one (qdwconv3d_avx512, AVX-512
// without VNNI) reads it.
#pragma once
#include <cstdint>
#include <vector>

#include "../conv3d/conv3d.h"
#include "../dwconv3d/dwconv3d.h"
#include "../epilogue.h"

namespace pyvideo::kernels {

struct Requant {
  int32_t input_zero_point = 0;
  const int32_t* bias = nullptr;        // [C_out] int32 (required)
  const float* bias_float = nullptr;    // [C_out] float(bias), for the variants that accumulate in float
  const float* dequant_scale = nullptr; // [C_out]
  const int8_t* residual = nullptr;     // like the output, or nullptr
  float residual_scale = 1.0f;
  int32_t residual_zero_point = 0;
  Activation activation = Activation::identity;
  float output_scale = 1.0f;
  int32_t output_zero_point = 0;
  // Per-channel output quantization: all three set ([C_out] each; output_scale / output_zero_point are then unused)
  // or all null. output_inverse_scales[c] = 1.0f / output_scales[c] (float32): the SIMD kernels multiply by it, like
  // the per-tensor path by 1 / output_scale, instead of dividing (a division per vector made the int8 SE ~12% slower),
  // while the scalar reference divides. The zero points are the int32 ones as float (integers in [-128, 127]), so
  // every ISA's float vector wrapper loads them directly.
  const float* output_scales = nullptr;
  const float* output_inverse_scales = nullptr;
  const float* output_zero_points = nullptr;

  // Float output instead (an int8 conv read only by float code, e.g. a network's last layer): when set, the kernels
  // store act(v) as float32 here, at the offsets the int8 output would have, and do not write the int8 output.
  float* float_output = nullptr;

  bool per_channel_output() const { return output_scales != nullptr; }
};

// act(dequantized accumulator [+ residual]) of output channel c at output offset o: the value the reference
// requantizes (or, with Requant::float_output, stores).
inline float dequantize_activate_scalar(int32_t acc, int64_t c, int64_t o, const Requant& q) {
  float v = float(acc) * q.dequant_scale[c];
  if (q.residual) v += float(int32_t(q.residual[o]) - q.residual_zero_point) * q.residual_scale;
  return activate_scalar(v, q.activation);
}

// The reference requantization of one accumulator of output channel c at output offset o.
inline int8_t requantize_scalar(int32_t acc, int64_t c, int64_t o, const Requant& q) {
  const float y = dequantize_activate_scalar(acc, c, o, q);
  const bool per_channel = q.per_channel_output();
  const float scale = per_channel ? q.output_scales[c] : q.output_scale;
  const float zero_point = per_channel ? q.output_zero_points[c] : float(q.output_zero_point);
  const float r = std::nearbyint(y / scale) + zero_point;
  return int8_t(std::min(127.0f, std::max(-128.0f, r)));
}

// The reference epilogue's store: the requantized int8 value, or the float one with Requant::float_output.
inline void store_scalar(int32_t acc, int64_t c, int64_t o, const Requant& q, int8_t* output) {
  if (q.float_output)
    q.float_output[o] = dequantize_activate_scalar(acc, c, o, q);
  else
    output[o] = requantize_scalar(acc, c, o, q);
}

// Channel-scaled activation of int8 rows (the apply pass of the int8 squeeze-excitation): for each of the rows
// (positions) [row_begin, row_end) of `channels` values,
//   out[r, c] = clamp(round_half_even(act((x[r, c] - input_zero_point) * scale[c]) / output_scale[c]) + zp[c])
// with the SIMD variants multiplying by output_inverse_scales[c] (within 1 LSB of the division, as the convs).
struct QScale {
  const int8_t* input = nullptr;
  int8_t* output = nullptr;
  int64_t channels = 0;
  int32_t input_zero_point = 0;
  const float* scale = nullptr;                  // [channels]
  Activation activation = Activation::identity;
  const float* output_scales = nullptr;          // [channels] (the scalar reference divides by these)
  const float* output_inverse_scales = nullptr;  // [channels]
  const float* output_zero_points = nullptr;     // [channels], integral values in [-128, 127]
  // Float output instead (a squeeze-excitation whose readers quantize it per sample): when set, act(v) is stored here
  // as float32 at the int8 output's offsets, `output` is not written and the output_* fields are unused.
  float* float_output = nullptr;
};
using QScaleFn = void (*)(const QScale& s, int64_t row_begin, int64_t row_end);
void qscale_scalar(const QScale&, int64_t, int64_t);
#if defined(__x86_64__) || defined(_M_X64)
void qscale_avx2(const QScale&, int64_t, int64_t);
void qscale_avx512(const QScale&, int64_t, int64_t);
#endif
#if defined(__aarch64__)
void qscale_neon(const QScale&, int64_t, int64_t);
#endif

// The apply pass by table, for volumes much larger than 256 positions: a channel's output depends only on its int8
// input value, so the squeeze-excitation computes the 256 outputs of every channel once and looks each element up.
// qscale_table: channels [c_begin, c_end) of that table, table[c * 256 + uint8(v)] = what `apply` gives a value v of
// channel c; each channel's 256 values go through `apply` as 256 rows of one channel with that channel's scale and
// requantization (s.float_output is ignored). A variant's arithmetic per element does not depend on the
// channel count, so the table holds what `apply` computes on the whole volume, bit for bit
// (tests/cpp/test_kernels_qconv3d.cpp checks every variant).
// qchannel_lookup: out[r * channels + c] = table[c * 256 + uint8(x[r * channels + c])] for rows [0, rows); one portable
// loop (a byte load, a table load and a store per element: no variant's gathers would beat it).
void qscale_table(QScaleFn apply, const QScale& s, int64_t c_begin, int64_t c_end, int8_t* table);
void qchannel_lookup(const int8_t* x, int64_t channels, int64_t rows, const int8_t* table, int8_t* out);

// Per-channel sums of int8 rows (the pooling pass of the int8 squeeze-excitation): sums[c] = the sum over rows
// [0, rows) of x[r * channels + c], as floats. Every variant's sums are exact integers (the adds are exact while a sum
// stays below 2^24 in magnitude), so at most qchannel_sums_max_rows rows per call.
constexpr int64_t qchannel_sums_max_rows = int64_t(1) << 16;
using QChannelSumsFn = void (*)(const int8_t* x, int64_t channels, int64_t rows, float* sums);
void qchannel_sums_scalar(const int8_t*, int64_t, int64_t, float*);
#if defined(__x86_64__) || defined(_M_X64)
void qchannel_sums_avx2(const int8_t*, int64_t, int64_t, float*);
void qchannel_sums_avx512(const int8_t*, int64_t, int64_t, float*);
#endif
#if defined(__aarch64__)
void qchannel_sums_neon(const int8_t*, int64_t, int64_t, float*);
#endif

using QConv3dFn = void (*)(const Conv3dShape& s, const int8_t* input, const int8_t* packed_weight,
                           const int32_t* weight_sum, const Requant& q, const int8_t* pad_row, int8_t* output,
                           int64_t item_begin, int64_t item_end);
using QDwConv3dFn = void (*)(const DwConv3dShape& s, const int8_t* input, const int8_t* weight, const Requant& q,
                             int8_t* output, int64_t begin, int64_t end);  // positions in line order

#define PYVIDEO_QCONV3D_ARGS \
  const Conv3dShape&, const int8_t*, const int8_t*, const int32_t*, const Requant&, const int8_t*, int8_t*, int64_t, int64_t
#define PYVIDEO_QDWCONV3D_ARGS \
  const DwConv3dShape&, const int8_t*, const int8_t*, const Requant&, int8_t*, int64_t, int64_t

// Pointwise layers over at most qconv3d_gemv_max_positions output positions (a network's head after its global pool)
// run as matrix-vector products in the dot-product kernels (qconv3d_simd.h); csrc/core/ops.cpp splits them between
// threads by output channels (Conv3dShape::out_stride, which every int8 dense kernel takes; the AMX entry hands such
// calls to its VNNI kernel).
constexpr int64_t qconv3d_gemv_max_positions = 4;
inline bool qconv3d_is_gemv(const Conv3dShape& s) {
  return s.is_pointwise() && s.rows() * s.out_w() <= qconv3d_gemv_max_positions;
}

void qconv3d_scalar(PYVIDEO_QCONV3D_ARGS);
// The packed weights [tap][ceil(C_in / 4)][C_out][4] with each kernel line's (kt, kh) kernel_w taps folded into one run
// of kernel_w * C_in bytes, as channels-last input holds them: [line][ceil(kernel_w * C_in / 4)][co_stride][4], zero
// past C_out (co_stride >= C_out) and past each run. For the kernels that read a kernel line as one run (the dot
// kernels' folded and prepped tiles, AMX narrow lines); baseline code, in qconv3d_scalar.cpp.
void fold_kernel_lines(const Conv3dShape& s, const int8_t* packed_weight, int64_t co_stride,
                       std::vector<int8_t>& folded);
void qdwconv3d_scalar(PYVIDEO_QDWCONV3D_ARGS);
#if defined(__x86_64__) || defined(_M_X64)
void qconv3d_avx512vnni(PYVIDEO_QCONV3D_ARGS);
void qconv3d_avxvnni(PYVIDEO_QCONV3D_ARGS);
void qconv3d_avx2(PYVIDEO_QCONV3D_ARGS);  // no VNNI: the dot emulated with vpmaddwd
void qconv3d_avx512(PYVIDEO_QCONV3D_ARGS);  // AVX-512 without VNNI: the same on 16 lanes
void qdwconv3d_avx2(PYVIDEO_QDWCONV3D_ARGS);
void qdwconv3d_avx512(PYVIDEO_QDWCONV3D_ARGS);
void qdwconv3d_avx512vnni(PYVIDEO_QDWCONV3D_ARGS);
void qdwconv3d_avxvnni(PYVIDEO_QDWCONV3D_ARGS);
#endif
#if defined(__aarch64__)
void qconv3d_neon(PYVIDEO_QCONV3D_ARGS);  // no dotprod: the dot emulated with widening multiplies
void qconv3d_neondot(PYVIDEO_QCONV3D_ARGS);
void qdwconv3d_neon(PYVIDEO_QDWCONV3D_ARGS);
void qdwconv3d_neondot(PYVIDEO_QDWCONV3D_ARGS);
#endif

}  // namespace pyvideo::kernels
