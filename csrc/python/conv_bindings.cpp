// Bindings for the fused fp32 convolutions (dense conv3d and depthwise conv3d with bias, residual and activation).
// Shapes are checked here against the tensors; the kernels trust them.
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

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

}  // namespace

PYVIDEO_BINDINGS(conv) {
  m.def("conv3d_f32_ndhwc", &conv3d_f32_ndhwc, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("residual"), py::arg("output"), py::arg("stride"), py::arg("padding"), py::arg("activation"),
        py::arg("num_threads") = 1,
        "Dense conv3d (groups=1) + bias + residual + activation on channels-last float32 buffers, into `output`.");
  m.def("dwconv3d_fused_f32_ndhwc", &dwconv3d_fused_f32_ndhwc, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("residual"), py::arg("output"), py::arg("stride"), py::arg("padding"), py::arg("activation"),
        py::arg("num_threads") = 1,
        "Depthwise conv3d + bias + residual + activation on channels-last float32 buffers, into `output`.");
}
