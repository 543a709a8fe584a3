// AMX-INT8 variant of the int8 dense conv3d (x86-64 only; kernels/cpu/int8/qconv3d_amx.cpp).
#pragma once
#include "qconv3d.h"

namespace pyvideo::kernels {

#if defined(__x86_64__) || defined(_M_X64)
// Pointwise stride-1 unpadded shapes only (Conv3dShape::is_pointwise()): the flattened GEMM of positions x C_in
// by C_in x C_out on AMX tiles, then the AVX-512 requantization epilogue of qconv3d_avx512vnni, so its outputs are
// bit-identical to that variant's. The caller must have checked cpu_features().amx_int8.
void qconv3d_amx_pointwise(PYVIDEO_QCONV3D_ARGS);
// The dispatch entry: qconv3d_amx_pointwise for the shapes where it pays (amx_pays), qconv3d_avx512vnni otherwise.
void qconv3d_amx(PYVIDEO_QCONV3D_ARGS);
// Whether qconv3d_amx takes the AMX path for this (work) shape.
bool amx_pays(const Conv3dShape& s);
// Every other dense shape on AMX tiles (ResNet's 1x3x3 and 3x1x1 convs, strided ones and strided shortcut
// projections): each tap a GEMM, stride 1 over a zero-point-padded copy of the input planes the call reads, other
// strides over rows gathered per tap; the same int32 sums and epilogue as qconv3d_avx512vnni, so bit-identical
// outputs. qconv3d_amx routes a shape here when amx_taps_pays (and not amx_pays).
void qconv3d_amx_multitap(PYVIDEO_QCONV3D_ARGS);
bool amx_taps_pays(const Conv3dShape& s);
// Narrow kernel rows (kernel_w * C_in <= 64 bytes: RGB stems, 8-channel convs): each kernel line (kt, kh) one tap of
// K = kernel_w * C_in bytes read in place from per-row copies of the input lines; the VNNI variant's outputs.
// qconv3d_amx routes a shape here when amx_lines_pays (and not amx_pays). Throws std::invalid_argument otherwise.
void qconv3d_amx_narrow_lines(PYVIDEO_QCONV3D_ARGS);
bool amx_lines_pays(const Conv3dShape& s);
#endif

}  // namespace pyvideo::kernels
