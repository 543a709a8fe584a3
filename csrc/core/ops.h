// Validated, multi-threaded entry points over the kernel dispatch table: what the Python bindings and the C API call.
#pragma once
#include "../../kernels/cpu/conv3d/conv3d.h"
#include "../../kernels/cpu/dwconv3d/dwconv3d.h"
#include "../../kernels/cpu/int8/qconv3d.h"

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
// Threads split the work by columns, and also by output channels when there are too few columns for them
// (conv3d_channel_groups); results do not depend on the split.
void conv3d_f32(const kernels::Conv3dShape& shape, const float* input, const float* weight,
                const kernels::Epilogue& epilogue, float* output, int num_threads);
// How many channel groups conv3d_f32 splits `work` (a flattened shape) into on num_threads threads.
int64_t conv3d_channel_groups(const kernels::Conv3dShape& work, int num_threads);

// int8 dense conv3d (layouts and arithmetic in kernels/cpu/int8/qconv3d.h); builds the padding row itself.
void qconv3d(const kernels::Conv3dShape& shape, const int8_t* input, const int8_t* packed_weight,
             const int32_t* weight_sum, const kernels::Requant& requant, int8_t* output, int num_threads);

// int8 depthwise conv3d; the kernel volume must be at most 500 taps (its float accumulation is exact below that).
void qdwconv3d(const kernels::DwConv3dShape& shape, const int8_t* input, const int8_t* weight,
               const kernels::Requant& requant, int8_t* output, int num_threads);

}  // namespace pyvideo
