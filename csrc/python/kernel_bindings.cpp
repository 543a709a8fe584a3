// Bindings for the compute kernels. Shapes are checked here against the tensors; the kernels trust them.
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>
#include <string>

#include "../core/ops.h"
#include "module.h"
#include "tensor.h"

namespace py = pybind11;
using namespace pyvideo;

namespace {

// input [N,T,H,W,C], weight [kt,kh,kw,C], bias [C] or None, output [N,To,Ho,Wo,C]; all float32, C-contiguous.
void dwconv3d_f32_ndhwc(py::handle input, py::handle weight, py::handle bias, py::handle output,
                        std::array<int64_t, 3> stride, std::array<int64_t, 3> padding, int num_threads) {
  auto x = python::tensor_arg(input, "input", python::DType::float32, 5);
  auto w = python::tensor_arg(weight, "weight", python::DType::float32, 4);
  auto b = python::optional_tensor_arg(bias, "bias", python::DType::float32, 1);
  auto y = python::tensor_arg(output, "output", python::DType::float32, 5);
  kernels::DwConv3dShape s;
  s.batch = x.shape[0];
  s.in_t = x.shape[1];
  s.in_h = x.shape[2];
  s.in_w = x.shape[3];
  s.channels = x.shape[4];
  s.kernel_t = w.shape[0];
  s.kernel_h = w.shape[1];
  s.kernel_w = w.shape[2];
  s.stride_t = stride[0];
  s.stride_h = stride[1];
  s.stride_w = stride[2];
  s.pad_t = padding[0];
  s.pad_h = padding[1];
  s.pad_w = padding[2];
  s.validate();
  if (w.shape[3] != s.channels)
    throw std::invalid_argument("weight has " + std::to_string(w.shape[3]) + " channels, input has " + std::to_string(s.channels));
  if (b.data && b.shape[0] != s.channels)
    throw std::invalid_argument("bias has " + std::to_string(b.shape[0]) + " entries, expected " + std::to_string(s.channels));
  const std::vector<int64_t> want{s.batch, s.out_t(), s.out_h(), s.out_w(), s.channels};
  if (y.shape != want) throw std::invalid_argument("output has the wrong shape for this convolution");
  if ((y.ptr<float>() < x.ptr<float>() + x.numel()) && (x.ptr<float>() < y.ptr<float>() + y.numel()))
    throw std::invalid_argument("output must not overlap input");
  py::gil_scoped_release release;
  dwconv3d_f32(s, x.ptr<float>(), w.ptr<float>(), b.ptr<float>(), y.ptr<float>(), num_threads);
}

}  // namespace

PYVIDEO_BINDINGS(kernels) {
  m.def("dwconv3d_f32_ndhwc", &dwconv3d_f32_ndhwc, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("output"), py::arg("stride"), py::arg("padding"), py::arg("num_threads") = 1,
        "Depthwise conv3d on channels-last float32 buffers, written into `output` in place.");
}
