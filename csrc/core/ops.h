// Validated, multi-threaded entry points over the kernel dispatch table: what the Python bindings and the C API call.
#pragma once
#include "../../kernels/cpu/conv3d/conv3d.h"
#include "../../kernels/cpu/dwconv3d/dwconv3d.h"

namespace pyvideo {

// Depthwise conv3d on channels-last fp32 buffers (layouts in kernels/cpu/dwconv3d/dwconv3d.h), with the fused
// epilogue (bias, residual, activation). num_threads <= 0 means one thread. Throws std::invalid_argument on
// inconsistent shapes or null pointers.
void dwconv3d_f32(const kernels::DwConv3dShape& shape, const float* input, const float* weight,
                  const kernels::Epilogue& epilogue, float* output, int num_threads);

// The bias-only form (the C API's).
void dwconv3d_f32(const kernels::DwConv3dShape& shape, const float* input, const float* weight, const float* bias,
                  float* output, int num_threads);

// Dense (groups = 1) conv3d on channels-last fp32 buffers (layouts in kernels/cpu/conv3d/conv3d.h), fused epilogue.
void conv3d_f32(const kernels::Conv3dShape& shape, const float* input, const float* weight,
                const kernels::Epilogue& epilogue, float* output, int num_threads);

}  // namespace pyvideo
