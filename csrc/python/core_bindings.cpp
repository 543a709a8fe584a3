// Library-level bindings: version, build information, ISA selection and tensor-interop probes.
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "../../kernels/cpu/cpu_features.h"
#include "../../kernels/cpu/dispatch.h"
#include "../core/build_info.h"
#include "module.h"
#include "tensor.h"

namespace py = pybind11;
using namespace pyvideo;

PYVIDEO_BINDINGS(core) {
  m.attr("__version__") = version();
  m.def("build_info", &build_info, "key=value lines describing this build of libvideo");
  m.def("has_ffmpeg", &has_ffmpeg);
  m.def("cpu_features", [] { return kernels::cpu_features().to_string(); });
  m.def("compiled_isas", [] {
    std::vector<std::string> out;
    for (auto isa : kernels::compiled_isas()) out.push_back(kernels::isa_name(isa));
    return out;
  });
  m.def("supported_isas", [] {
    std::vector<std::string> out;
    for (auto isa : kernels::supported_isas()) out.push_back(kernels::isa_name(isa));
    return out;
  });
  m.def("get_isa", [] { return std::string(kernels::isa_name(kernels::kernel_table().isa)); },
        "the ISA level the dispatch table currently uses");
  m.def("set_isa", [](const std::string& name) { kernels::select_isa(kernels::parse_isa(name)); }, py::arg("name"),
        "refill the dispatch table for an ISA level (tests and benchmarks); ValueError if unavailable");

  // Interop probes used by the tests: they prove the native side sees the caller's own storage.
  m.def("_data_address", [](py::handle t) { return reinterpret_cast<std::uintptr_t>(python::tensor_arg(t, "t", python::DType::float32).data); });
  m.def("_fill_f32", [](py::handle t, float value) {
    auto arg = python::tensor_arg(t, "t", python::DType::float32);
    py::gil_scoped_release release;
    float* p = arg.ptr<float>();
    for (int64_t i = 0; i < arg.numel(); ++i) p[i] = value;
  });
  m.def("_arange_capsule", [](int64_t n) {
    if (n < 0) throw std::invalid_argument("n must be non-negative");
    auto buffer = std::shared_ptr<float>(new float[n > 0 ? n : 1], std::default_delete<float[]>());
    for (int64_t i = 0; i < n; ++i) buffer.get()[i] = static_cast<float>(i);
    float* data = buffer.get();
    return python::make_capsule(std::move(buffer), data, {n}, python::DType::float32);
  });
}
