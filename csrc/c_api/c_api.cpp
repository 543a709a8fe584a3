// The C ABI: converts C++ exceptions into status codes and a per-thread error message.
#include "pyvideo.h"

#include <exception>
#include <memory>
#include <vector>
#include <stdexcept>
#include <string>

#include "../../kernels/cpu/dispatch.h"
#include "../core/build_info.h"
#include "../core/ops.h"
#include "../runtime/program.h"

namespace {

thread_local std::string last_error;

template <class F>
pyvideo_status guarded(F&& body) {
  try {
    body();
    last_error.clear();
    return PYVIDEO_OK;
  } catch (const std::invalid_argument& e) {
    last_error = e.what();
    return PYVIDEO_ERROR_INVALID_ARGUMENT;
  } catch (const std::exception& e) {
    last_error = e.what();
    return PYVIDEO_ERROR_RUNTIME;
  } catch (...) {
    last_error = "unknown error";
    return PYVIDEO_ERROR_RUNTIME;
  }
}

pyvideo::kernels::DwConv3dShape to_shape(const pyvideo_dwconv3d_shape* s) {
  if (!s) throw std::invalid_argument("shape must not be NULL");
  pyvideo::kernels::DwConv3dShape out;
  out.batch = s->batch;
  out.channels = s->channels;
  out.in_t = s->in_t;
  out.in_h = s->in_h;
  out.in_w = s->in_w;
  out.kernel_t = s->kernel_t;
  out.kernel_h = s->kernel_h;
  out.kernel_w = s->kernel_w;
  out.stride_t = s->stride_t;
  out.stride_h = s->stride_h;
  out.stride_w = s->stride_w;
  out.pad_t = s->pad_t;
  out.pad_h = s->pad_h;
  out.pad_w = s->pad_w;
  out.validate();
  return out;
}

}  // namespace

extern "C" {

const char* pyvideo_version(void) { return pyvideo::version(); }

const char* pyvideo_last_error(void) { return last_error.c_str(); }

pyvideo_status pyvideo_get_isa(const char** name) {
  return guarded([&] {
    if (!name) throw std::invalid_argument("name must not be NULL");
    *name = pyvideo::kernels::isa_name(pyvideo::kernels::kernel_table().isa);
  });
}

pyvideo_status pyvideo_set_isa(const char* name) {
  return guarded([&] {
    if (!name) throw std::invalid_argument("name must not be NULL");
    pyvideo::kernels::select_isa(pyvideo::kernels::parse_isa(name));
  });
}

pyvideo_status pyvideo_dwconv3d_output_size(const pyvideo_dwconv3d_shape* shape, int64_t* out_t, int64_t* out_h,
                                            int64_t* out_w) {
  return guarded([&] {
    const auto s = to_shape(shape);
    if (!out_t || !out_h || !out_w) throw std::invalid_argument("output size pointers must not be NULL");
    *out_t = s.out_t();
    *out_h = s.out_h();
    *out_w = s.out_w();
  });
}

pyvideo_status pyvideo_dwconv3d_f32(const pyvideo_dwconv3d_shape* shape, const float* input, const float* weight,
                                    const float* bias, float* output, int num_threads) {
  return guarded([&] { pyvideo::dwconv3d_f32(to_shape(shape), input, weight, bias, output, num_threads); });
}

}  // extern "C"

struct pyvideo_program {
  std::unique_ptr<pyvideo::runtime::Program> program;
  std::vector<pyvideo::runtime::Tensor> outputs;
};

namespace {

const pyvideo_program& checked(const pyvideo_program* p) {
  if (!p || !p->program) throw std::invalid_argument("program must not be NULL");
  return *p;
}

}  // namespace

extern "C" {

pyvideo_status pyvideo_program_load(const char* path, pyvideo_program** program) {
  return guarded([&] {
    if (!path || !program) throw std::invalid_argument("path and program must not be NULL");
    *program = nullptr;
    auto loaded = std::make_unique<pyvideo_program>();
    loaded->program = pyvideo::runtime::Program::load(path);
    *program = loaded.release();
  });
}

void pyvideo_program_free(pyvideo_program* program) { delete program; }

pyvideo_status pyvideo_program_input_channels(const pyvideo_program* program, int64_t* channels) {
  return guarded([&] {
    if (!channels) throw std::invalid_argument("channels must not be NULL");
    *channels = checked(program).program->input_channels();
  });
}

pyvideo_status pyvideo_program_num_inputs(const pyvideo_program* program, int32_t* count) {
  return guarded([&] {
    if (!count) throw std::invalid_argument("count must not be NULL");
    *count = checked(program).program->num_inputs();
  });
}

pyvideo_status pyvideo_program_input_channels_at(const pyvideo_program* program, int32_t index, int64_t* channels) {
  return guarded([&] {
    if (!channels) throw std::invalid_argument("channels must not be NULL");
    const auto all = checked(program).program->inputs_channels();
    if (index < 0 || size_t(index) >= all.size())
      throw std::invalid_argument("input index " + std::to_string(index) + " out of range (" +
                                  std::to_string(all.size()) + " inputs)");
    *channels = all[size_t(index)];
  });
}

pyvideo_status pyvideo_program_num_outputs(const pyvideo_program* program, int32_t* count) {
  return guarded([&] {
    if (!count) throw std::invalid_argument("count must not be NULL");
    *count = int32_t(checked(program).program->output_layouts().size());
  });
}

pyvideo_status pyvideo_program_run(pyvideo_program* program, const float* input, const int64_t shape[5],
                                   int num_threads) {
  return guarded([&] {
    checked(program);
    if (!shape) throw std::invalid_argument("shape must not be NULL");
    const pyvideo::runtime::Shape5 s{shape[0], shape[1], shape[2], shape[3], shape[4]};
    program->outputs.clear();
    program->outputs = program->program->run(input, s, num_threads);
  });
}

pyvideo_status pyvideo_program_run_inputs(pyvideo_program* program, int32_t count, const float* const* inputs,
                                          const int64_t (*shapes)[5], int num_threads) {
  return guarded([&] {
    checked(program);
    if (count < 0 || (count > 0 && (!inputs || !shapes)))
      throw std::invalid_argument("inputs and shapes must not be NULL, count must not be negative");
    std::vector<const float*> data(inputs, inputs + count);
    std::vector<pyvideo::runtime::Shape5> s;
    for (int32_t k = 0; k < count; ++k) s.push_back({shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3], shapes[k][4]});
    program->outputs.clear();
    program->outputs = program->program->run(data, s, num_threads);
  });
}

pyvideo_status pyvideo_program_output(const pyvideo_program* program, int32_t index, int64_t shape[5],
                                      int32_t* dtype, int32_t* layout, const void** data) {
  return guarded([&] {
    const pyvideo_program& p = checked(program);
    if (index < 0 || size_t(index) >= p.outputs.size())
      throw std::invalid_argument("output index " + std::to_string(index) + " out of range (" +
                                  std::to_string(p.outputs.size()) + " outputs; run the program first)");
    const auto& t = p.outputs[size_t(index)];
    if (shape) {
      const int64_t dims[5] = {t.shape.n, t.shape.t, t.shape.h, t.shape.w, t.shape.c};
      for (int i = 0; i < 5; ++i) shape[i] = dims[i];
    }
    if (dtype) *dtype = int32_t(t.dtype);
    if (layout) *layout = int32_t(p.program->output_layouts()[size_t(index)]);
    if (data) *data = t.data();
  });
}

}  // extern "C"
