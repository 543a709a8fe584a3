// Bindings for the fused fp32 convolutions (dense conv3d and depthwise conv3d with bias, residual and activation).
// Shapes are checked here against the tensors; the kernels trust them.
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../kernels/cpu/dispatch.h"
#include "../core/channel_requant.h"
#include "../core/ops.h"
#include "module.h"
#include "tensor.h"

namespace py = pybind11;
using namespace pyvideo;

namespace {

template <class Shape>
void set_geometry(Shape& s, const python::TensorArg& x, std::array<int64_t, 3> kernel, std::array<int64_t, 3> stride,
                  std::array<int64_t, 3> padding) {
  s.batch = x.shape[0];
  s.in_t = x.shape[1];
  s.in_h = x.shape[2];
  s.in_w = x.shape[3];
  s.kernel_t = kernel[0];
  s.kernel_h = kernel[1];
  s.kernel_w = kernel[2];
  s.stride_t = stride[0];
  s.stride_h = stride[1];
  s.stride_w = stride[2];
  s.pad_t = padding[0];
  s.pad_h = padding[1];
  s.pad_w = padding[2];
}

kernels::Activation activation_arg(int activation) {
  if (activation < 0 || activation > int(kernels::Activation::sigmoid))
    throw std::invalid_argument("activation code must be 0..4 (identity, relu, swish, hswish, sigmoid), got " +
                                std::to_string(activation));
  return kernels::Activation(activation);
}

bool overlaps(const python::TensorArg& a, const python::TensorArg& b) {
  const char* a0 = static_cast<const char*>(a.data);
  const char* b0 = static_cast<const char*>(b.data);
  return a0 < b0 + b.numel() * 4 && b0 < a0 + a.numel() * 4;
}

// Checks the epilogue tensors against the output and builds the kernel's Epilogue.
kernels::Epilogue epilogue_arg(const python::TensorArg& bias, const python::TensorArg& residual,
                               const python::TensorArg& output, int64_t channels, int activation) {
  if (bias.data && bias.shape[0] != channels)
    throw std::invalid_argument("bias has " + std::to_string(bias.shape[0]) + " entries, expected " +
                                std::to_string(channels));
  if (residual.data && residual.shape != output.shape)
    throw std::invalid_argument("residual must have the output's shape [N, To, Ho, Wo, C]");
  kernels::Epilogue ep;
  ep.bias = bias.ptr<float>();
  ep.residual = residual.ptr<float>();
  ep.activation = activation_arg(activation);
  return ep;
}

// input [N,T,H,W,Ci], weight [kt,kh,kw,Ci,Co], bias [Co] | None, residual like output | None, output [N,To,Ho,Wo,Co].
void conv3d_f32_ndhwc(py::handle input, py::handle weight, py::handle bias, py::handle residual, py::handle output,
                      std::array<int64_t, 3> stride, std::array<int64_t, 3> padding, int activation, int num_threads) {
  auto x = python::tensor_arg(input, "input", python::DType::float32, 5);
  auto w = python::tensor_arg(weight, "weight", python::DType::float32, 5);
  auto b = python::optional_tensor_arg(bias, "bias", python::DType::float32, 1);
  auto r = python::optional_tensor_arg(residual, "residual", python::DType::float32, 5);
  auto y = python::tensor_arg(output, "output", python::DType::float32, 5);
  kernels::Conv3dShape s;
  set_geometry(s, x, {w.shape[0], w.shape[1], w.shape[2]}, stride, padding);
  s.in_channels = x.shape[4];
  s.out_channels = w.shape[4];
  s.validate();
  if (w.shape[3] != s.in_channels)
    throw std::invalid_argument("weight has " + std::to_string(w.shape[3]) + " input channels, input has " +
                                std::to_string(s.in_channels));
  const std::vector<int64_t> want{s.batch, s.out_t(), s.out_h(), s.out_w(), s.out_channels};
  if (y.shape != want) throw std::invalid_argument("output has the wrong shape for this convolution");
  if (overlaps(x, y) || (r.data && overlaps(r, y))) throw std::invalid_argument("output must not overlap the inputs");
  const auto ep = epilogue_arg(b, r, y, s.out_channels, activation);
  py::gil_scoped_release release;
  conv3d_f32(s, x.ptr<float>(), w.ptr<float>(), ep, y.ptr<float>(), num_threads);
}

// input [N,T,H,W,C], weight [kt,kh,kw,C], bias [C] | None, residual like output | None, output [N,To,Ho,Wo,C].
void dwconv3d_fused_f32_ndhwc(py::handle input, py::handle weight, py::handle bias, py::handle residual,
                              py::handle output, std::array<int64_t, 3> stride, std::array<int64_t, 3> padding,
                              int activation, int num_threads) {
  auto x = python::tensor_arg(input, "input", python::DType::float32, 5);
  auto w = python::tensor_arg(weight, "weight", python::DType::float32, 4);
  auto b = python::optional_tensor_arg(bias, "bias", python::DType::float32, 1);
  auto r = python::optional_tensor_arg(residual, "residual", python::DType::float32, 5);
  auto y = python::tensor_arg(output, "output", python::DType::float32, 5);
  kernels::DwConv3dShape s;
  set_geometry(s, x, {w.shape[0], w.shape[1], w.shape[2]}, stride, padding);
  s.channels = x.shape[4];
  s.validate();
  if (w.shape[3] != s.channels)
    throw std::invalid_argument("weight has " + std::to_string(w.shape[3]) + " channels, input has " +
                                std::to_string(s.channels));
  const std::vector<int64_t> want{s.batch, s.out_t(), s.out_h(), s.out_w(), s.channels};
  if (y.shape != want) throw std::invalid_argument("output has the wrong shape for this convolution");
  if (overlaps(x, y) || (r.data && overlaps(r, y))) throw std::invalid_argument("output must not overlap the inputs");
  const auto ep = epilogue_arg(b, r, y, s.channels, activation);
  py::gil_scoped_release release;
  dwconv3d_f32(s, x.ptr<float>(), w.ptr<float>(), ep, y.ptr<float>(), num_threads);
}

struct QuantArgs {
  int input_zero_point;
  double residual_scale;
  int residual_zero_point;
  int activation;
  double output_scale;
  int output_zero_point;
};

// Checks the int8 epilogue tensors and builds the kernel's Requant (pointers stay owned by the Python tensors).
kernels::Requant requant_arg(const python::TensorArg& bias, const python::TensorArg& bias_float,
                             const python::TensorArg& dequant, const python::TensorArg& residual,
                             const python::TensorArg& output, int64_t channels, const QuantArgs& a) {
  for (const auto* t : {&bias, &bias_float, &dequant})
    if (t->data && t->shape[0] != channels)
      throw std::invalid_argument("bias, bias_float and dequant_scale must have " + std::to_string(channels) + " entries");
  if (residual.data && residual.shape != output.shape)
    throw std::invalid_argument("residual must have the output's shape [N, To, Ho, Wo, C]");
  if (a.input_zero_point < -128 || a.input_zero_point > 127)
    throw std::invalid_argument("quantized conv3d: the input zero point must be in [-128, 127] (got " +
                                std::to_string(a.input_zero_point) + ")");
  if (residual.data) check_quantization(float(a.residual_scale), a.residual_zero_point, "quantized conv3d", "residual");
  check_quantization(float(a.output_scale), a.output_zero_point, "quantized conv3d", "output");
  kernels::Requant q;
  q.input_zero_point = a.input_zero_point;
  q.bias = bias.ptr<int32_t>();
  q.bias_float = bias_float.ptr<float>();
  q.dequant_scale = dequant.ptr<float>();
  q.residual = residual.ptr<int8_t>();
  q.residual_scale = float(a.residual_scale);
  q.residual_zero_point = a.residual_zero_point;
  q.activation = activation_arg(a.activation);
  q.output_scale = float(a.output_scale);
  q.output_zero_point = a.output_zero_point;
  return q;
}

// Per-channel output quantization for a Requant (output_scales float32 [C] and output_zero_points int32 [C], both or
// neither): checked, then kept in the kernels' form in `storage` for the call.
void set_channel_outputs(kernels::Requant& q, py::handle output_scales, py::handle output_zero_points,
                         int64_t channels, ChannelRequant& storage) {
  if (output_scales.is_none() && output_zero_points.is_none()) return;
  if (output_scales.is_none() || output_zero_points.is_none())
    throw std::invalid_argument("output_scales and output_zero_points go together (per-channel output quantization)");
  const auto s = python::tensor_arg(output_scales, "output_scales", python::DType::float32, 1);
  const auto z = python::tensor_arg(output_zero_points, "output_zero_points", python::DType::int32, 1);
  if (s.shape[0] != channels || z.shape[0] != channels)
    throw std::invalid_argument("output_scales and output_zero_points must have " + std::to_string(channels) +
                                " entries (one per output channel)");
  storage = ChannelRequant::checked(s.ptr<float>(), z.ptr<int32_t>(), channels, "quantized conv3d");
  storage.apply_to(q);
}

// input [N,T,H,W,Ci] int8, packed_weight [kt,kh,kw,ceil(Ci/4),Co,4] int8, weight_sum [Co] int32, bias [Co] int32,
// dequant_scale [Co] float32, residual like output | None, output [N,To,Ho,Wo,Co] int8.
void qconv3d_ndhwc(py::handle input, py::handle packed_weight, py::handle weight_sum, py::handle bias,
                   py::handle dequant_scale, py::handle residual, py::handle output, std::array<int64_t, 3> stride,
                   std::array<int64_t, 3> padding, int input_zero_point, double residual_scale, int residual_zero_point,
                   int activation, double output_scale, int output_zero_point, int num_threads,
                   py::handle output_scales, py::handle output_zero_points) {
  auto x = python::tensor_arg(input, "input", python::DType::int8, 5);
  auto w = python::tensor_arg(packed_weight, "packed_weight", python::DType::int8, 6);
  auto ws = python::tensor_arg(weight_sum, "weight_sum", python::DType::int32, 1);
  auto b = python::tensor_arg(bias, "bias", python::DType::int32, 1);
  auto dq = python::tensor_arg(dequant_scale, "dequant_scale", python::DType::float32, 1);
  auto r = python::optional_tensor_arg(residual, "residual", python::DType::int8, 5);
  auto y = python::tensor_arg(output, "output", python::DType::int8, 5);
  kernels::Conv3dShape s;
  set_geometry(s, x, {w.shape[0], w.shape[1], w.shape[2]}, stride, padding);
  s.in_channels = x.shape[4];
  s.out_channels = w.shape[4];
  s.validate();
  if (w.shape[3] != (s.in_channels + 3) / 4 || w.shape[5] != 4)
    throw std::invalid_argument("packed_weight must be [kt, kh, kw, ceil(C_in/4), C_out, 4] for C_in=" +
                                std::to_string(s.in_channels));
  if (ws.shape[0] != s.out_channels) throw std::invalid_argument("weight_sum must have C_out entries");
  const std::vector<int64_t> want{s.batch, s.out_t(), s.out_h(), s.out_w(), s.out_channels};
  if (y.shape != want) throw std::invalid_argument("output has the wrong shape for this convolution");
  python::TensorArg no_float;
  auto q = requant_arg(b, no_float, dq, r, y, s.out_channels,
                       {input_zero_point, residual_scale, residual_zero_point, activation, output_scale,
                        output_zero_point});
  ChannelRequant channel_outputs;
  set_channel_outputs(q, output_scales, output_zero_points, s.out_channels, channel_outputs);
  py::gil_scoped_release release;
  qconv3d(s, x.ptr<int8_t>(), w.ptr<int8_t>(), ws.ptr<int32_t>(), q, y.ptr<int8_t>(), num_threads);
}

// input [N,T,H,W,C] int8, weight [kt,kh,kw,C] int8, bias [C] int32 and bias_float [C] float32 (the same values),
// dequant_scale [C], residual like output | None, output [N,To,Ho,Wo,C] int8.
void qdwconv3d_ndhwc(py::handle input, py::handle weight, py::handle bias, py::handle bias_float,
                     py::handle dequant_scale, py::handle residual, py::handle output, std::array<int64_t, 3> stride,
                     std::array<int64_t, 3> padding, int input_zero_point, double residual_scale,
                     int residual_zero_point, int activation, double output_scale, int output_zero_point,
                     int num_threads, py::handle output_scales, py::handle output_zero_points) {
  auto x = python::tensor_arg(input, "input", python::DType::int8, 5);
  auto w = python::tensor_arg(weight, "weight", python::DType::int8, 4);
  auto b = python::tensor_arg(bias, "bias", python::DType::int32, 1);
  auto bf = python::tensor_arg(bias_float, "bias_float", python::DType::float32, 1);
  auto dq = python::tensor_arg(dequant_scale, "dequant_scale", python::DType::float32, 1);
  auto r = python::optional_tensor_arg(residual, "residual", python::DType::int8, 5);
  auto y = python::tensor_arg(output, "output", python::DType::int8, 5);
  kernels::DwConv3dShape s;
  set_geometry(s, x, {w.shape[0], w.shape[1], w.shape[2]}, stride, padding);
  s.channels = x.shape[4];
  s.validate();
  if (w.shape[3] != s.channels) throw std::invalid_argument("weight channels differ from the input's");
  const std::vector<int64_t> want{s.batch, s.out_t(), s.out_h(), s.out_w(), s.channels};
  if (y.shape != want) throw std::invalid_argument("output has the wrong shape for this convolution");
  auto q = requant_arg(b, bf, dq, r, y, s.channels,
                       {input_zero_point, residual_scale, residual_zero_point, activation, output_scale,
                        output_zero_point});
  ChannelRequant channel_outputs;
  set_channel_outputs(q, output_scales, output_zero_points, s.channels, channel_outputs);
  py::gil_scoped_release release;
  qdwconv3d(s, x.ptr<int8_t>(), w.ptr<int8_t>(), q, y.ptr<int8_t>(), num_threads);
}

}  // namespace

PYVIDEO_BINDINGS(conv) {
  m.def("qconv3d_ndhwc", &qconv3d_ndhwc, py::arg("input"), py::arg("packed_weight"), py::arg("weight_sum"),
        py::arg("bias"), py::arg("dequant_scale"), py::arg("residual"), py::arg("output"), py::arg("stride"),
        py::arg("padding"), py::arg("input_zero_point"), py::arg("residual_scale"), py::arg("residual_zero_point"),
        py::arg("activation"), py::arg("output_scale"), py::arg("output_zero_point"), py::arg("num_threads") = 1,
        py::kw_only(), py::arg("output_scales") = py::none(), py::arg("output_zero_points") = py::none(),
        "int8 dense conv3d with requantization on channels-last buffers, into `output`. output_scales / "
        "output_zero_points (float32 and int32 [C_out]): per-channel output quantization (output_scale / "
        "output_zero_point then unused).");
  m.def("qdwconv3d_ndhwc", &qdwconv3d_ndhwc, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("bias_float"), py::arg("dequant_scale"), py::arg("residual"), py::arg("output"), py::arg("stride"),
        py::arg("padding"), py::arg("input_zero_point"), py::arg("residual_scale"), py::arg("residual_zero_point"),
        py::arg("activation"), py::arg("output_scale"), py::arg("output_zero_point"), py::arg("num_threads") = 1,
        py::kw_only(), py::arg("output_scales") = py::none(), py::arg("output_zero_points") = py::none(),
        "int8 depthwise conv3d with requantization on channels-last buffers, into `output`; output_scales / "
        "output_zero_points as qconv3d_ndhwc's.");
  m.def("qconv3d_variant", [] { return std::string(kernels::kernel_table().qconv3d_name); },
        "Which int8 dense-conv variant the dispatch table uses (amx+avx512vnni, avx512vnni, avxvnni, avx2, neondot or scalar).");
  m.def("conv3d_f32_ndhwc", &conv3d_f32_ndhwc, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("residual"), py::arg("output"), py::arg("stride"), py::arg("padding"), py::arg("activation"),
        py::arg("num_threads") = 1,
        "Dense conv3d (groups=1) + bias + residual + activation on channels-last float32 buffers, into `output`.");
  m.def("dwconv3d_fused_f32_ndhwc", &dwconv3d_fused_f32_ndhwc, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("residual"), py::arg("output"), py::arg("stride"), py::arg("padding"), py::arg("activation"),
        py::arg("num_threads") = 1,
        "Depthwise conv3d + bias + residual + activation on channels-last float32 buffers, into `output`.");
}
