#include "ops.h"

#include <stdexcept>
#include <vector>

#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/parallel.h"

namespace pyvideo {

void dwconv3d_f32(const kernels::DwConv3dShape& shape, const float* input, const float* weight,
                  const kernels::Epilogue& epilogue, float* output, int num_threads) {
  shape.validate();
  if (!input || !weight || !output) throw std::invalid_argument("dwconv3d: input, weight and output must not be null");
  const auto fn = kernels::kernel_table().dwconv3d_f32;
  kernels::parallel_for_chunks(shape.rows(), num_threads,
                               [&](int64_t begin, int64_t end) { fn(shape, input, weight, epilogue, output, begin, end); });
}

void dwconv3d_f32(const kernels::DwConv3dShape& shape, const float* input, const float* weight, const float* bias,
                  float* output, int num_threads) {
  kernels::Epilogue epilogue;
  epilogue.bias = bias;
  dwconv3d_f32(shape, input, weight, epilogue, output, num_threads);
}

void conv3d_f32(const kernels::Conv3dShape& shape, const float* input, const float* weight,
                const kernels::Epilogue& epilogue, float* output, int num_threads) {
  shape.validate();
  if (!input || !weight || !output) throw std::invalid_argument("conv3d: input, weight and output must not be null");
  const kernels::Conv3dShape work = shape.flatten_pointwise();
  const std::vector<float> zeros(size_t(shape.in_channels), 0.0f);  // what taps in the zero padding read
  const auto fn = kernels::kernel_table().conv3d_f32;
  kernels::parallel_for_chunks(work.items(), num_threads, [&](int64_t begin, int64_t end) {
    fn(work, input, weight, epilogue, zeros.data(), output, begin, end);
  });
}

void qconv3d(const kernels::Conv3dShape& shape, const int8_t* input, const int8_t* packed_weight,
             const int32_t* weight_sum, const kernels::Requant& requant, int8_t* output, int num_threads) {
  shape.validate();
  if (!input || !packed_weight || !weight_sum || !output || !requant.bias || !requant.dequant_scale)
    throw std::invalid_argument("qconv3d: input, weight, weight_sum, bias, dequant_scale and output must not be null");
  const kernels::Conv3dShape work = shape.flatten_pointwise();
  const std::vector<int8_t> pad_row(size_t(shape.in_channels), int8_t(requant.input_zero_point));
  const auto fn = kernels::kernel_table().qconv3d;
  kernels::parallel_for_chunks(work.items(), num_threads, [&](int64_t begin, int64_t end) {
    fn(work, input, packed_weight, weight_sum, requant, pad_row.data(), output, begin, end);
  });
}

void qdwconv3d(const kernels::DwConv3dShape& shape, const int8_t* input, const int8_t* weight,
               const kernels::Requant& requant, int8_t* output, int num_threads) {
  shape.validate();
  if (shape.kernel_t * shape.kernel_h * shape.kernel_w > 500)
    throw std::invalid_argument("qdwconv3d: kernels of more than 500 taps are not supported");
  if (!input || !weight || !output || !requant.bias || !requant.bias_float || !requant.dequant_scale)
    throw std::invalid_argument("qdwconv3d: input, weight, bias, dequant_scale and output must not be null");
  const auto fn = kernels::kernel_table().qdwconv3d;
  kernels::parallel_for_chunks(shape.rows(), num_threads,
                               [&](int64_t begin, int64_t end) { fn(shape, input, weight, requant, output, begin, end); });
}

}  // namespace pyvideo
