#include "ops.h"

#include <stdexcept>
#include <vector>

#include "../../kernels/cpu/dispatch.h"
#include "../../kernels/cpu/parallel.h"

namespace pyvideo {

void dwconv3d_f32(const kernels::DwConv3dShape& shape, const float* input, const float* weight,
                  const kernels::Epilogue& epilogue, float* output, int num_threads) {
  shape.validate();
  if (shape.batch == 0) return;  // an empty batch: nothing to compute (its tensors' pointers may be null)
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

namespace {

// Columns per work item of a stride-1 pointwise conv split between threads (0: the kernels' default, tile_w). Such a
// conv runs as one row of N*T*H*W columns, in items of tile_w columns by default: 64 / 36 for X3D-XS's 100-column 5x5
// layers on two threads (the fp32 steps ran 1.14-1.19x slower for it; the int8 ones measured level, their AMX tiles of
// 16 positions split 64 / 36 no worse than 50 / 50), and two busy threads of four. Instead every thread gets the same
// number of items of equal width (at most tile_w), so the shares differ by at most one column per item. Not for a few
// columns per thread (a head GEMV: the fp32 op splits its channels instead, each weight read once).
int64_t pointwise_item_width(const kernels::Conv3dShape& shape, int num_threads) {
  if (!shape.is_pointwise() || num_threads <= 1) return 0;
  const int64_t columns = shape.batch * shape.in_t * shape.in_h * shape.in_w, threads = num_threads;
  if (columns < 8 * threads) return 0;
  const int64_t tile_w = kernels::Conv3dShape::tile_w;
  const int64_t per_thread = (columns + threads * tile_w - 1) / (threads * tile_w);
  return (columns + threads * per_thread - 1) / (threads * per_thread);
}

// The requantization of channels [c0, ...) of a layer: every per-channel array and every output-shaped pointer from c0.
kernels::Requant offset_requant(const kernels::Requant& requant, int64_t c0) {
  kernels::Requant r = requant;
  r.bias += c0;
  if (r.bias_float) r.bias_float += c0;
  r.dequant_scale += c0;
  if (r.residual) r.residual += c0;
  if (r.per_channel_output()) {
    r.output_scales += c0;
    r.output_inverse_scales += c0;
    r.output_zero_points += c0;
  }
  if (r.float_output) r.float_output += c0;
  return r;
}

// Runs fn(part, c0, item_begin, item_end) over units (channel group, item) split between threads, group-major: a
// thread's range covers whole groups where it can, so each thread reads only its groups' weights. Groups are whole
// 16-channel blocks (a vector multiple on every ISA); `part` is `work` narrowed to channels [c0, c1) of its
// out_channels (out_stride = the whole width), for pointers the caller offsets to c0.
template <class Fn>
void for_each_channel_group(const kernels::Conv3dShape& work, int64_t groups, int num_threads, Fn&& fn) {
  const int64_t items = work.items(), Co = work.out_channels, blocks16 = (Co + 15) / 16;
  auto group_begin = [&](int64_t g) { return std::min(Co, 16 * (blocks16 * g / groups)); };
  kernels::parallel_for_chunks(groups * items, num_threads, [&](int64_t begin, int64_t end) {
    while (begin < end) {
      const int64_t g = begin / items, stop = std::min(end, (g + 1) * items), c0 = group_begin(g);
      kernels::Conv3dShape part = work;
      part.out_channels = group_begin(g + 1) - c0;
      part.out_stride = Co;
      fn(part, c0, begin - g * items, stop - g * items);
      begin = stop;
    }
  });
}

}  // namespace

void conv3d_f32(const kernels::Conv3dShape& shape, const float* input, const float* weight,
                const kernels::Epilogue& epilogue, float* output, int num_threads) {
  shape.validate();
  if (shape.batch == 0) return;  // an empty batch: nothing to compute (its tensors' pointers may be null)
  if (!input || !weight || !output) throw std::invalid_argument("conv3d: input, weight and output must not be null");
  if (shape.out_stride != 0 || shape.item_w != 0)
    throw std::invalid_argument("conv3d: out_stride and item_w are for kernel calls, not for the op");
  kernels::Conv3dShape work = shape.flatten_pointwise();
  work.item_w = pointwise_item_width(shape, num_threads);
  const std::vector<float> zeros(size_t(shape.in_channels), 0.0f);  // what taps in the zero padding read
  const auto fn = kernels::kernel_table().conv3d_f32;
  const int64_t groups = conv3d_channel_groups(work, num_threads);
  if (groups == 1) {
    kernels::parallel_for_chunks(work.items(), num_threads, [&](int64_t begin, int64_t end) {
      fn(work, input, weight, epilogue, zeros.data(), output, begin, end);
    });
    return;
  }
  for_each_channel_group(work, groups, num_threads, [&](const kernels::Conv3dShape& part, int64_t c0, int64_t begin,
                                                        int64_t end) {
    kernels::Epilogue ep = epilogue;
    if (ep.bias) ep.bias += c0;
    if (ep.residual) ep.residual += c0;
    fn(part, input, weight + c0, ep, zeros.data(), output + c0, begin, end);
  });
}

int64_t conv3d_channel_groups(const kernels::Conv3dShape& work, int num_threads) {
  // Fewer items than threads (a GEMV such as a classifier head: one column per sample) leave threads idle when split
  // by columns; split the channels too, in whole 16-channel blocks (a vector multiple on every ISA). Each group then
  // computes every column of its channels. (With one or two items per thread the column split is as fast: measured
  // on X3D's 5x5 stage, where a channel split also repeats a fused squeeze-excitation's input pass in every group.)
  const int64_t blocks16 = (work.out_channels + 15) / 16;
  if (num_threads <= 1 || work.items() >= int64_t(num_threads) || blocks16 < 2) return 1;
  return std::min<int64_t>(num_threads, blocks16);
}

void qconv3d(const kernels::Conv3dShape& shape, const int8_t* input, const int8_t* packed_weight,
             const int32_t* weight_sum, const kernels::Requant& requant, int8_t* output, int num_threads) {
  shape.validate();
  if (shape.batch == 0) return;  // an empty batch: nothing to compute (its tensors' pointers may be null)
  if (!input || !packed_weight || !weight_sum || !output || !requant.bias || !requant.dequant_scale)
    throw std::invalid_argument("qconv3d: input, weight, weight_sum, bias, dequant_scale and output must not be null");
  if (shape.out_stride != 0 || shape.item_w != 0)
    throw std::invalid_argument("qconv3d: out_stride and item_w are for kernel calls, not for the op");
  kernels::Conv3dShape work = shape.flatten_pointwise();
  work.item_w = pointwise_item_width(shape, num_threads);
  const std::vector<int8_t> pad_row(size_t(shape.in_channels), int8_t(requant.input_zero_point));
  const auto fn = kernels::kernel_table().qconv3d;
  // A matrix-vector product (a head after its global pool) splits its output channels between threads, as the fp32
  // op does: columns alone would leave all but one thread idle.
  const int64_t groups = kernels::qconv3d_is_gemv(work) ? conv3d_channel_groups(work, num_threads) : 1;
  if (groups == 1) {
    kernels::parallel_for_chunks(work.items(), num_threads, [&](int64_t begin, int64_t end) {
      fn(work, input, packed_weight, weight_sum, requant, pad_row.data(), output, begin, end);
    });
    return;
  }
  for_each_channel_group(work, groups, num_threads, [&](const kernels::Conv3dShape& part, int64_t c0, int64_t begin,
                                                        int64_t end) {
    fn(part, input, packed_weight + 4 * c0, weight_sum + c0, offset_requant(requant, c0), pad_row.data(), output + c0,
       begin, end);
  });
}

void qdwconv3d(const kernels::DwConv3dShape& shape, const int8_t* input, const int8_t* weight,
               const kernels::Requant& requant, int8_t* output, int num_threads) {
  shape.validate();
  if (shape.kernel_t * shape.kernel_h * shape.kernel_w > 500)
    throw std::invalid_argument("qdwconv3d: kernels of more than 500 taps are not supported");
  if (shape.batch == 0) return;  // an empty batch: nothing to compute (its tensors' pointers may be null)
  if (!input || !weight || !output || !requant.bias || !requant.bias_float || !requant.dequant_scale)
    throw std::invalid_argument("qdwconv3d: input, weight, bias, dequant_scale and output must not be null");
  const auto fn = kernels::kernel_table().qdwconv3d;
  kernels::parallel_for_chunks(shape.rows(), num_threads,
                               [&](int64_t begin, int64_t end) { fn(shape, input, weight, requant, output, begin, end); });
}

}  // namespace pyvideo
