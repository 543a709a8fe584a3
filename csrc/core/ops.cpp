#include "ops.h"

#include <stdexcept>

#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/parallel.h"

namespace pyvideo {

void dwconv3d_f32(const kernels::DwConv3dShape& shape, const float* input, const float* weight, const float* bias,
                  float* output, int num_threads) {
  shape.validate();
  if (!input || !weight || !output) throw std::invalid_argument("dwconv3d: input, weight and output must not be null");
  const auto fn = kernels::kernel_table().dwconv3d_f32;
  kernels::parallel_for_chunks(shape.rows(), num_threads,
                               [&](int64_t begin, int64_t end) { fn(shape, input, weight, bias, output, begin, end); });
}

}  // namespace pyvideo
