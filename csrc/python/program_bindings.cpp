// Bindings for the native program runtime (csrc/runtime/program.h): built step by step from Python, run in one call.
#include <pybind11/stl.h>

#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../runtime/program.h"
#include "module.h"
#include "tensor.h"

namespace py = pybind11;
using namespace pyvideo;
using runtime::Program;
using runtime::QuantParams;

namespace {

template <class T>
std::vector<T> copy_of(py::handle obj, const char* name, python::DType dtype) {
  if (obj.is_none()) return {};
  const auto t = python::tensor_arg(obj, name, dtype);
  const T* p = t.ptr<T>();
  return std::vector<T>(p, p + t.numel());
}

std::vector<float> floats(py::handle obj, const char* name) { return copy_of<float>(obj, name, python::DType::float32); }

// A per-channel float32 vector argument that may be None (then empty).
std::vector<float> optional_channel_floats(py::handle obj, const char* name) {
  if (!obj.is_none()) python::tensor_arg(obj, name, python::DType::float32, 1);
  return floats(obj, name);
}

// An int8 step's output qparams from Python: output_scale None (a float32 output; the zero point is ignored), a
// float scale and an int zero point (per tensor), or a float32 and an int32 1-D tensor (per channel).
struct OutputQuant {
  bool has_output_q = true;
  QuantParams tensor{1.0f, 0};
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
};

OutputQuant output_quant(py::handle scale, py::handle zero_point, const char* step) {
  OutputQuant out;
  if (scale.is_none()) {
    out.has_output_q = false;
    return out;
  }
  const bool scalar = py::isinstance<py::float_>(scale) || py::isinstance<py::int_>(scale);
  if (scalar != py::isinstance<py::int_>(zero_point))
    throw py::type_error(std::string(step) +
                         ": output_scale and output_zero_point must be a float and an int (per tensor) or a float32 "
                         "and an int32 tensor of one entry per channel (per channel)");
  if (scalar) {
    out.tensor = {scale.cast<float>(), zero_point.cast<int32_t>()};
  } else {
    python::tensor_arg(scale, "output_scale", python::DType::float32, 1);
    python::tensor_arg(zero_point, "output_zero_point", python::DType::int32, 1);
    out.scales = floats(scale, "output_scale");
    out.zero_points = copy_of<int32_t>(zero_point, "output_zero_point", python::DType::int32);
  }
  return out;
}

kernels::Activation activation_arg(int code) {
  if (code < 0 || code > int(kernels::Activation::sigmoid))
    throw std::invalid_argument("activation code must be 0..4 (identity, relu, swish, hswish, sigmoid), got " +
                                std::to_string(code));
  return kernels::Activation(code);
}

runtime::ConvGeometry geometry(std::array<int64_t, 3> kernel, std::array<int64_t, 3> stride,
                               std::array<int64_t, 3> padding) {
  runtime::ConvGeometry g;
  for (int i = 0; i < 3; ++i) {
    g.kernel[i] = kernel[size_t(i)];
    g.stride[i] = stride[size_t(i)];
    g.padding[i] = padding[size_t(i)];
  }
  return g;
}

Program::Layout layout_arg(const std::string& name) {
  if (name == "ncthw") return Program::Layout::ncthw;
  if (name == "nthwc") return Program::Layout::nthwc;
  if (name == "vector") return Program::Layout::vector;
  throw std::invalid_argument("output layout must be 'ncthw', 'nthwc' or 'vector', got '" + name + "'");
}

const char* layout_name(Program::Layout layout) {
  switch (layout) {
    case Program::Layout::ncthw: return "ncthw";
    case Program::Layout::nthwc: return "nthwc";
    case Program::Layout::vector: return "vector";
  }
  return "?";
}

// input: one tensor, or a list / tuple of tensors (one per program input, e.g. SlowFast's pathways).
py::list run(Program& program, py::handle input, int num_threads, const std::string& layout) {
  if (layout != "nthwc" && layout != "ncthw")
    throw std::invalid_argument("run: layout must be 'nthwc' or 'ncthw', got '" + layout + "'");
  const bool ncthw = layout == "ncthw";
  std::vector<py::handle> items;
  if (py::isinstance<py::list>(input) || py::isinstance<py::tuple>(input))
    for (py::handle item : input) items.push_back(item);
  else
    items.push_back(input);
  std::vector<python::TensorArg> args;  // each keeps its producer's buffer alive through the run
  std::vector<const float*> data;
  std::vector<runtime::Shape5> shapes;
  for (size_t k = 0; k < items.size(); ++k) {
    const std::string name = items.size() == 1 ? "input" : "input " + std::to_string(k);
    args.push_back(python::tensor_arg(items[k], name.c_str(), python::DType::float32, 5));
    const auto& x = args.back();
    shapes.push_back(ncthw ? runtime::Shape5{x.shape[0], x.shape[2], x.shape[3], x.shape[4], x.shape[1]}
                           : runtime::Shape5{x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4]});
    data.push_back(x.ptr<float>());
  }
  std::vector<runtime::Tensor> outputs;
  {
    py::gil_scoped_release release;
    outputs = program.run(data, shapes, num_threads, ncthw ? Program::InputLayout::ncthw : Program::InputLayout::nthwc);
  }
  py::list result;
  for (auto& t : outputs) {
    const std::vector<int64_t> dims{t.shape.n, t.shape.t, t.shape.h, t.shape.w, t.shape.c};
    const auto dtype = t.dtype == runtime::DType::float32 ? python::DType::float32 : python::DType::int8;
    result.append(python::make_capsule(t.storage, t.data(), dims, dtype));
  }
  return result;
}

}  // namespace

PYVIDEO_BINDINGS(program) {
  py::class_<Program, std::shared_ptr<Program>>(m, "Program",
                                                "A network as native steps over channels-last buffers, run in one call.")
      .def(py::init<>())
      .def("set_input", &Program::set_input, py::arg("channels"))
      .def("add_input", &Program::add_input, py::arg("channels"),
           "Another input (before any step): one per pathway clip of a multi-pathway model such as SlowFast.")
      .def("concat", &Program::concat, py::arg("first"), py::arg("second"),
           "Channel concatenation of two float32 values of the same N, T, H, W (torch.cat along dim 1).")
      .def(
          "quantized_concat",
          [](Program& p, int32_t first, int32_t second, float first_scale, int32_t first_zero_point,
             float second_scale, int32_t second_zero_point, py::object output_scale, int32_t output_zero_point) {
            const bool has_output_q = !output_scale.is_none();
            return p.quantized_concat(first, second, {first_scale, first_zero_point},
                                      {second_scale, second_zero_point}, has_output_q,
                                      {has_output_q ? output_scale.cast<float>() : 1.0f, output_zero_point});
          },
          py::arg("first"), py::arg("second"), py::arg("first_scale"), py::arg("first_zero_point"),
          py::arg("second_scale"), py::arg("second_zero_point"), py::arg("output_scale"),
          py::arg("output_zero_point") = 0,
          "int8 channel concatenation, each input requantized to (output_scale, output_zero_point); output_scale None: "
          "the float32 concatenation of the dequantized inputs.")
      .def(
          "conv",
          [](Program& p, int32_t input, bool depthwise, std::array<int64_t, 3> kernel, std::array<int64_t, 3> stride,
             std::array<int64_t, 3> padding, int64_t out_channels, py::handle weight, py::handle bias,
             int32_t residual, int activation, int32_t input_gate, int input_activation) {
            return p.conv(input, depthwise, geometry(kernel, stride, padding), out_channels, floats(weight, "weight"),
                          floats(bias, "bias"), residual, activation_arg(activation), input_gate,
                          activation_arg(input_activation));
          },
          py::arg("input"), py::arg("depthwise"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
          py::arg("out_channels"), py::arg("weight"), py::arg("bias"), py::arg("residual"), py::arg("activation"),
          py::arg("input_gate") = -1, py::arg("input_activation") = 0,
          "A conv step. input_gate: a [N, 1, 1, 1, C_in] value (pointwise stride-1 convs only); the conv then reads "
          "input_activation(x * gate) instead of x.")
      .def(
          "squeeze_excitation",
          [](Program& p, int32_t input, py::handle w0, py::handle b0, py::handle w1, py::handle b1,
             int hidden_activation, int activation) {
            const auto fc0 = python::tensor_arg(w0, "fc0_weight", python::DType::float32, 2);
            return p.squeeze_excitation(input, fc0.shape[0], floats(w0, "fc0_weight"), floats(b0, "fc0_bias"),
                                        floats(w1, "fc1_weight"), floats(b1, "fc1_bias"),
                                        activation_arg(hidden_activation), activation_arg(activation));
          },
          py::arg("input"), py::arg("fc0_weight"), py::arg("fc0_bias"), py::arg("fc1_weight"), py::arg("fc1_bias"),
          py::arg("hidden_activation"), py::arg("activation"))
      .def(
          "squeeze_excitation_gate",
          [](Program& p, int32_t input, py::handle w0, py::handle b0, py::handle w1, py::handle b1,
             int hidden_activation) {
            const auto fc0 = python::tensor_arg(w0, "fc0_weight", python::DType::float32, 2);
            return p.squeeze_excitation_gate(input, fc0.shape[0], floats(w0, "fc0_weight"), floats(b0, "fc0_bias"),
                                             floats(w1, "fc1_weight"), floats(b1, "fc1_bias"),
                                             activation_arg(hidden_activation));
          },
          py::arg("input"), py::arg("fc0_weight"), py::arg("fc0_bias"), py::arg("fc1_weight"), py::arg("fc1_bias"),
          py::arg("hidden_activation"),
          "The [N, 1, 1, 1, C] gate of a squeeze-excitation (for a conv's input_gate).")
      .def("global_avg_pool", &Program::global_avg_pool, py::arg("input"))
      .def(
          "quantize",
          [](Program& p, int32_t input, float scale, int32_t zero_point) {
            return p.quantize(input, {scale, zero_point});
          },
          py::arg("input"), py::arg("scale"), py::arg("zero_point"))
      .def("dynamic_quantize", &Program::dynamic_quantize, py::arg("input"), py::arg("min_scale") = 1e-8f,
           "float32 -> int8 with each sample's qparams computed in each run from its own range, its scale at least "
           "min_scale (a dynamic value: only int8 convs, linear layers, squeeze-excitations and pools may read it, and "
           "it cannot be an output).")
      .def(
          "quantized_conv",
          [](Program& p, int32_t input, bool depthwise, std::array<int64_t, 3> kernel, std::array<int64_t, 3> stride,
             std::array<int64_t, 3> padding, int64_t out_channels, py::handle weight, py::handle weight_sum,
             py::handle bias, py::handle dequant_scale, float input_scale, int32_t input_zero_point,
             int32_t residual, float residual_scale, int32_t residual_zero_point, int activation,
             py::handle output_scale, py::handle output_zero_point, py::handle weight_scale,
             py::handle float_bias) {
            // output_scale None: a float32 output (the conv's only readers are float code)
            const OutputQuant out = output_quant(output_scale, output_zero_point, "quantized_conv");
            return p.quantized_conv(input, depthwise, geometry(kernel, stride, padding), out_channels,
                                    copy_of<int8_t>(weight, "weight", python::DType::int8),
                                    copy_of<int32_t>(weight_sum, "weight_sum", python::DType::int32),
                                    copy_of<int32_t>(bias, "bias", python::DType::int32),
                                    floats(dequant_scale, "dequant_scale"), {input_scale, input_zero_point}, residual,
                                    {residual_scale, residual_zero_point}, activation_arg(activation), out.tensor,
                                    out.has_output_q, optional_channel_floats(weight_scale, "weight_scale"),
                                    optional_channel_floats(float_bias, "float_bias"), out.scales, out.zero_points);
          },
          py::arg("input"), py::arg("depthwise"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
          py::arg("out_channels"), py::arg("weight"), py::arg("weight_sum"), py::arg("bias"), py::arg("dequant_scale"),
          py::arg("input_scale"), py::arg("input_zero_point"), py::arg("residual"), py::arg("residual_scale"),
          py::arg("residual_zero_point"), py::arg("activation"), py::arg("output_scale"), py::arg("output_zero_point"),
          py::kw_only(), py::arg("weight_scale") = py::none(), py::arg("float_bias") = py::none(),
          "An int8 conv step. Its output qparams: a float scale and an int zero point (per tensor), a float32 tensor "
          "of C_out scales and an int32 tensor of C_out zero points (per channel: only for a tensor that unpadded "
          "pointwise convs alone read), or output_scale None (a float32 output). A dynamic input (a dynamic_quantize output) needs weight_scale and float_bias (float32 "
          "[C_out]: the weights' per-channel scales and the real-valued bias; each run derives the dequant scales and "
          "int32 bias per sample from them): pass bias / dequant_scale as empty tensors, any input_scale / "
          "input_zero_point (ignored). A dynamic residual's residual_scale / residual_zero_point are ignored.")
      .def(
          "quantized_squeeze_excitation",
          [](Program& p, int32_t input, py::handle w0, py::handle b0, py::handle w1, py::handle b1,
             int hidden_activation, int activation, float input_scale, int32_t input_zero_point,
             py::handle output_scale, py::handle output_zero_point) {
            const auto fc0 = python::tensor_arg(w0, "fc0_weight", python::DType::float32, 2);
            OutputQuant out = output_quant(output_scale, output_zero_point, "quantized_squeeze_excitation");
            return p.quantized_squeeze_excitation(
                input, fc0.shape[0], floats(w0, "fc0_weight"), floats(b0, "fc0_bias"), floats(w1, "fc1_weight"),
                floats(b1, "fc1_bias"), activation_arg(hidden_activation), activation_arg(activation),
                {input_scale, input_zero_point}, out.tensor, std::move(out.scales), std::move(out.zero_points),
                out.has_output_q);
          },
          py::arg("input"), py::arg("fc0_weight"), py::arg("fc0_bias"), py::arg("fc1_weight"), py::arg("fc1_bias"),
          py::arg("hidden_activation"), py::arg("activation"), py::arg("input_scale"), py::arg("input_zero_point"),
          py::arg("output_scale"), py::arg("output_zero_point"),
          "An int8 squeeze-excitation step. Per-tensor output: a float scale and an int zero point; per-channel: a "
          "float32 tensor of C scales and an int32 tensor of C zero points; output_scale None: a float32 output.")
      .def(
          "quantized_global_avg_pool",
          [](Program& p, int32_t input, float input_scale, int32_t input_zero_point, std::optional<float> output_scale,
             int32_t output_zero_point) {
            return p.quantized_global_avg_pool(input, {input_scale, input_zero_point}, output_scale.has_value(),
                                               {output_scale.value_or(1.0f), output_zero_point});
          },
          py::arg("input"), py::arg("input_scale"), py::arg("input_zero_point"), py::arg("output_scale"),
          py::arg("output_zero_point"))
      .def(
          "avg_pool",
          [](Program& p, int32_t input, std::array<int64_t, 3> kernel, std::array<int64_t, 3> stride) {
            return p.avg_pool(input, geometry(kernel, stride, {0, 0, 0}));
          },
          py::arg("input"), py::arg("kernel"), py::arg("stride"))
      .def(
          "quantized_avg_pool",
          [](Program& p, int32_t input, std::array<int64_t, 3> kernel, std::array<int64_t, 3> stride,
             float input_scale, int32_t input_zero_point, std::optional<float> output_scale,
             int32_t output_zero_point) {
            return p.quantized_avg_pool(input, geometry(kernel, stride, {0, 0, 0}), {input_scale, input_zero_point},
                                        output_scale.has_value(), {output_scale.value_or(1.0f), output_zero_point});
          },
          py::arg("input"), py::arg("kernel"), py::arg("stride"), py::arg("input_scale"), py::arg("input_zero_point"),
          py::arg("output_scale"), py::arg("output_zero_point"))
      .def(
          "max_pool",
          [](Program& p, int32_t input, std::array<int64_t, 3> kernel, std::array<int64_t, 3> stride,
             std::array<int64_t, 3> padding) { return p.max_pool(input, geometry(kernel, stride, padding)); },
          py::arg("input"), py::arg("kernel"), py::arg("stride"), py::arg("padding") = std::array<int64_t, 3>{0, 0, 0},
          "A fixed-kernel fp32 max pool step, as torch's max_pool3d (dilation 1, ceil_mode False): padding (at most "
          "half the kernel) never wins, and a window holding a NaN gives NaN.")
      .def(
          "quantized_linear",
          [](Program& p, int32_t input, py::handle weight, py::handle bias, py::handle dequant_scale,
             float input_scale, int32_t input_zero_point, int activation, py::handle weight_scale,
             py::handle float_bias) {
            const auto w = python::tensor_arg(weight, "weight", python::DType::int8, 2);
            return p.quantized_linear(input, w.shape[0], copy_of<int8_t>(weight, "weight", python::DType::int8),
                                      copy_of<int32_t>(bias, "bias", python::DType::int32),
                                      floats(dequant_scale, "dequant_scale"), {input_scale, input_zero_point},
                                      activation_arg(activation), optional_channel_floats(weight_scale, "weight_scale"),
                                      optional_channel_floats(float_bias, "float_bias"));
          },
          py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("dequant_scale"), py::arg("input_scale"),
          py::arg("input_zero_point"), py::arg("activation"), py::kw_only(), py::arg("weight_scale") = py::none(),
          py::arg("float_bias") = py::none(),
          "An int8 linear step; a dynamic input takes weight_scale and float_bias as quantized_conv.")
      .def(
          "set_outputs",
          [](Program& p, std::vector<int32_t> values, std::vector<std::string> layouts) {
            std::vector<Program::Layout> codes;
            for (const auto& l : layouts) codes.push_back(layout_arg(l));
            p.set_outputs(std::move(values), std::move(codes));
          },
          py::arg("values"), py::arg("layouts"))
      .def_property_readonly("output_layouts",
                             [](const Program& p) {
                               std::vector<std::string> names;
                               for (auto l : p.output_layouts()) names.push_back(layout_name(l));
                               return names;
                             })
      .def("save", &Program::save, py::arg("path"), "Write the program (steps, weights, outputs) to a model file.")
      .def_static(
          "load", [](const std::string& path) { return std::shared_ptr<Program>(Program::load(path)); },
          py::arg("path"), "Read a model file written by save(); a malformed file raises ValueError.")
      .def("run", &run, py::arg("input"), py::arg("num_threads") = 1, py::arg("layout") = "nthwc",
           "Run on a contiguous float32 input, [N,T,H,W,C] (layout='nthwc') or [N,C,T,H,W] (layout='ncthw'), or a "
           "list of them for a program with several inputs; returns DLPack capsules of the outputs ([N,T,H,W,C] each).")
      .def_property_readonly("num_steps", &Program::num_steps)
      .def_property_readonly("num_values", &Program::num_values)
      .def_property_readonly("input_channels", &Program::input_channels)
      .def_property_readonly("num_inputs", &Program::num_inputs)
      .def_property_readonly("inputs_channels", &Program::inputs_channels)
      .def("describe", &Program::describe)
      .def("set_profiling", &Program::set_profiling, py::arg("on"),
           "Record each step's wall time on the following runs (for benchmarks).")
      .def("set_fuse_pointwise_depthwise", &Program::set_fuse_pointwise_depthwise, py::arg("on"),
           py::arg("every_pair") = false,
           "Run a dense conv (pointwise or not, no residual or input gate) whose output only feeds the next "
           "(depthwise) conv fused with it, the conv's output never stored: on by default where measured to pay, "
           "every_pair=True for every such pair whatever its size (for tests); bit-identical either way. Off for "
           "debugging and benchmarks.")
      .def_property_readonly("fuse_pointwise_depthwise", &Program::fuse_pointwise_depthwise)
      .def(
          "last_profile",
          [](const Program& p) {
            py::list steps;
            for (const auto& s : p.last_profile())
              steps.append(py::dict(py::arg("kind") = s.kind, py::arg("seconds") = s.seconds,
                                    py::arg("macs") = s.macs,
                                    py::arg("input_shape") = py::make_tuple(s.input.n, s.input.t, s.input.h,
                                                                            s.input.w, s.input.c),
                                    py::arg("output_shape") = py::make_tuple(s.output.n, s.output.t, s.output.h,
                                                                             s.output.w, s.output.c)));
            return steps;
          },
          "Per-step dicts (kind, seconds, macs, input_shape, output_shape [N,T,H,W,C]) of the last profiled run.");
}
