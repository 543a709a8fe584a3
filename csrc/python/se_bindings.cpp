// Bindings for the one-call squeeze-excitation (fp32 and int8) on channels-last buffers.
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "../core/squeeze_excitation.h"
#include "module.h"
#include "tensor.h"

namespace py = pybind11;
using namespace pyvideo;

namespace {

kernels::Activation activation_arg(int code, const char* name) {
  if (code < 0 || code > int(kernels::Activation::sigmoid))
    throw std::invalid_argument(std::string(name) + " code must be 0..4 (identity, relu, swish, hswish, sigmoid)");
  return kernels::Activation(code);
}

// Checks the two Linear layers against each other and the channel count, and describes them for the core op.
SqueezeExcitation layers_arg(const python::TensorArg& w0, const python::TensorArg& b0, const python::TensorArg& w1,
                             const python::TensorArg& b1, int64_t channels, int hidden_activation, int activation) {
  SqueezeExcitation se;
  se.channels = channels;
  se.hidden = w0.shape[0];
  if (w0.shape[1] != channels || w1.shape[0] != channels || w1.shape[1] != se.hidden)
    throw std::invalid_argument("squeeze_excitation: fc0 weight must be [hidden, C] and fc1 weight [C, hidden] with C=" +
                                std::to_string(channels));
  if ((b0.data && b0.shape[0] != se.hidden) || (b1.data && b1.shape[0] != channels))
    throw std::invalid_argument("squeeze_excitation: fc0 bias must have `hidden` entries and fc1 bias C entries");
  se.fc0_weight = w0.ptr<float>();
  se.fc0_bias = b0.ptr<float>();
  se.fc1_weight = w1.ptr<float>();
  se.fc1_bias = b1.ptr<float>();
  se.hidden_activation = activation_arg(hidden_activation, "hidden_activation");
  se.activation = activation_arg(activation, "activation");
  return se;
}

VolumeShape volume(const python::TensorArg& x, const python::TensorArg& y) {
  if (y.shape != x.shape) throw std::invalid_argument("squeeze_excitation: output must have the input's shape");
  return {x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4]};
}

// The arguments both bindings take, checked (the TensorArgs keep the callers' buffers alive during the call).
struct Arguments {
  python::TensorArg x, y, w0, b0, w1, b1;
  VolumeShape shape;
  SqueezeExcitation se;
  Arguments(py::handle input, py::handle fc0_weight, py::handle fc0_bias, py::handle fc1_weight, py::handle fc1_bias,
            py::handle output, python::DType dtype, int hidden_activation, int activation)
      : x(python::tensor_arg(input, "input", dtype, 5)),
        y(python::tensor_arg(output, "output", dtype, 5)),
        w0(python::tensor_arg(fc0_weight, "fc0_weight", python::DType::float32, 2)),
        b0(python::optional_tensor_arg(fc0_bias, "fc0_bias", python::DType::float32, 1)),
        w1(python::tensor_arg(fc1_weight, "fc1_weight", python::DType::float32, 2)),
        b1(python::optional_tensor_arg(fc1_bias, "fc1_bias", python::DType::float32, 1)),
        shape(volume(x, y)),
        se(layers_arg(w0, b0, w1, b1, shape.channels, hidden_activation, activation)) {}
};

void squeeze_excitation_ndhwc(py::handle input, py::handle fc0_weight, py::handle fc0_bias, py::handle fc1_weight,
                              py::handle fc1_bias, py::handle output, int hidden_activation, int activation,
                              int num_threads) {
  const Arguments a(input, fc0_weight, fc0_bias, fc1_weight, fc1_bias, output, python::DType::float32,
                    hidden_activation, activation);
  py::gil_scoped_release release;
  squeeze_excitation_f32(a.se, a.shape, a.x.ptr<float>(), a.y.ptr<float>(), num_threads);
}

void quantized_squeeze_excitation_ndhwc(py::handle input, py::handle fc0_weight, py::handle fc0_bias,
                                        py::handle fc1_weight, py::handle fc1_bias, py::handle output,
                                        int hidden_activation, int activation, double input_scale,
                                        int input_zero_point, double output_scale, int output_zero_point,
                                        int num_threads) {
  const Arguments a(input, fc0_weight, fc0_bias, fc1_weight, fc1_bias, output, python::DType::int8,
                    hidden_activation, activation);
  py::gil_scoped_release release;
  quantized_squeeze_excitation(a.se, a.shape, a.x.ptr<int8_t>(), float(input_scale), input_zero_point,
                               float(output_scale), output_zero_point, a.y.ptr<int8_t>(), num_threads);
}

// The same with the output quantized per channel: output_scales float32 [C], output_zero_points int32 [C].
void quantized_squeeze_excitation_per_channel_ndhwc(py::handle input, py::handle fc0_weight, py::handle fc0_bias,
                                                    py::handle fc1_weight, py::handle fc1_bias, py::handle output,
                                                    int hidden_activation, int activation, double input_scale,
                                                    int input_zero_point, py::handle output_scales,
                                                    py::handle output_zero_points, int num_threads) {
  const Arguments a(input, fc0_weight, fc0_bias, fc1_weight, fc1_bias, output, python::DType::int8,
                    hidden_activation, activation);
  const auto scales = python::tensor_arg(output_scales, "output_scales", python::DType::float32, 1);
  const auto zero_points = python::tensor_arg(output_zero_points, "output_zero_points", python::DType::int32, 1);
  if (scales.shape[0] != a.shape.channels || zero_points.shape[0] != a.shape.channels)
    throw std::invalid_argument("quantized_squeeze_excitation: per-channel output scales and zero points need " +
                                std::to_string(a.shape.channels) + " entries each (one per channel), got " +
                                std::to_string(scales.shape[0]) + " and " + std::to_string(zero_points.shape[0]));
  py::gil_scoped_release release;
  quantized_squeeze_excitation(a.se, a.shape, a.x.ptr<int8_t>(), float(input_scale), input_zero_point, 1.0f, 0,
                               a.y.ptr<int8_t>(), num_threads, scales.ptr<float>(), zero_points.ptr<int32_t>());
}

}  // namespace

PYVIDEO_BINDINGS(squeeze_excitation) {
  m.def("squeeze_excitation_ndhwc", &squeeze_excitation_ndhwc, py::arg("input"), py::arg("fc0_weight"),
        py::arg("fc0_bias"), py::arg("fc1_weight"), py::arg("fc1_bias"), py::arg("output"),
        py::arg("hidden_activation"), py::arg("activation"), py::arg("num_threads") = 1,
        "act(x * sigmoid(fc1(hidden_act(fc0(mean(x)))))) on a channels-last float32 [N,T,H,W,C] buffer, into output.");
  m.def("quantized_squeeze_excitation_ndhwc", &quantized_squeeze_excitation_ndhwc, py::arg("input"),
        py::arg("fc0_weight"), py::arg("fc0_bias"), py::arg("fc1_weight"), py::arg("fc1_bias"), py::arg("output"),
        py::arg("hidden_activation"), py::arg("activation"), py::arg("input_scale"), py::arg("input_zero_point"),
        py::arg("output_scale"), py::arg("output_zero_point"), py::arg("num_threads") = 1,
        "int8 squeeze-excitation (gate from exact integer channel sums, requantized output) into output.");
  m.def("quantized_squeeze_excitation_per_channel_ndhwc", &quantized_squeeze_excitation_per_channel_ndhwc,
        py::arg("input"), py::arg("fc0_weight"), py::arg("fc0_bias"), py::arg("fc1_weight"), py::arg("fc1_bias"),
        py::arg("output"), py::arg("hidden_activation"), py::arg("activation"), py::arg("input_scale"),
        py::arg("input_zero_point"), py::arg("output_scales"), py::arg("output_zero_points"),
        py::arg("num_threads") = 1,
        "int8 squeeze-excitation with its output quantized per channel (float32 [C] scales, int32 [C] zero points).");
}
