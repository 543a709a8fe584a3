#include "dispatch.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "cpu_features.h"
#if defined(__x86_64__) || defined(_M_X64)
#include "int8/qconv3d_amx.h"
#endif

namespace pyvideo::kernels {
namespace {

// Whether the environment variable `name` is "0", read whenever the table is filled: PYVIDEO_AMX=0 keeps the AMX tiles
// out of the table (A/B benchmarks, tests); PYVIDEO_VNNI=0 keeps the byte dot-product instructions (AVX512-VNNI,
// AVX-VNNI, ARM dotprod) and AMX out, so a CPU that has them also runs, and times, the kernels of CPUs without
// (Skylake-SP, Zen 1-3, Cortex-A53).
bool switched_off(const char* name) {
  const char* env = std::getenv(name);
  return env && std::string(env) == "0";
}

bool cpu_supports(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return f.avx2 && f.fma;
    case Isa::avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma;
    case Isa::neon: return f.neon;
  }
  return false;
}

KernelTable make_table(Isa isa) {
  KernelTable t;
  t.isa = isa;
  t.dwconv3d_f32 = dwconv3d_f32_scalar;
  t.conv3d_f32 = conv3d_f32_scalar;
  t.conv3d_f32_rows = conv3d_f32_rows_scalar;
  t.dwconv3d_f32_lines = dwconv3d_f32_lines_scalar;
  t.qconv3d = qconv3d_scalar;
  t.qdwconv3d = qdwconv3d_scalar;
  t.qscale = qscale_scalar;
  t.qchannel_sums = qchannel_sums_scalar;
  t.quantize_f32 = quantize_f32_scalar;
  t.range_f32 = range_f32_scalar;
  t.channels_last_row = channels_last_row_scalar;
  t.qlinear_dot = qlinear_dot_scalar;
  CpuFeatures f = cpu_features();
  if (switched_off("PYVIDEO_VNNI")) f.avx512vnni = f.avx_vnni = f.amx_int8 = f.dotprod = false;
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::avx2:
      t.dwconv3d_f32 = dwconv3d_f32_avx2;
      t.conv3d_f32 = conv3d_f32_avx2;
      t.conv3d_f32_rows = conv3d_f32_rows_avx2;
      t.dwconv3d_f32_lines = dwconv3d_f32_lines_avx2;
      t.qdwconv3d = qdwconv3d_avx2;
      t.qscale = qscale_avx2;
      t.qchannel_sums = qchannel_sums_avx2;
      t.quantize_f32 = quantize_f32_avx2;
      t.range_f32 = range_f32_avx2;
      t.channels_last_row = channels_last_row_avx2;
      t.qlinear_dot = qlinear_dot_avx2;
      t.qconv3d = qconv3d_avx2, t.qconv3d_name = "avx2";
      if (f.avx_vnni) t.qconv3d = qconv3d_avxvnni, t.qdwconv3d = qdwconv3d_avxvnni, t.qconv3d_name = "avxvnni";
      break;
    case Isa::avx512:
      t.dwconv3d_f32 = dwconv3d_f32_avx512;
      t.conv3d_f32 = conv3d_f32_avx512;
      t.conv3d_f32_rows = conv3d_f32_rows_avx512;
      t.dwconv3d_f32_lines = dwconv3d_f32_lines_avx512;
      t.qdwconv3d = qdwconv3d_avx512;
      t.qscale = qscale_avx512;
      t.qscale_by_table = false;
      t.qchannel_sums = qchannel_sums_avx512;
      t.quantize_f32 = quantize_f32_avx512;
      t.range_f32 = range_f32_avx512;
      t.channels_last_row = channels_last_row_avx512;
      t.qlinear_dot = qlinear_dot_avx512;
      t.qconv3d = qconv3d_avx512, t.qconv3d_name = "avx512";  // without VNNI (Skylake-SP): the dot emulated
      if (f.avx512vnni)
        t.qconv3d = qconv3d_avx512vnni, t.qdwconv3d = qdwconv3d_avx512vnni, t.qconv3d_name = "avx512vnni";
      else if (f.avx_vnni)
        t.qconv3d = qconv3d_avxvnni, t.qdwconv3d = qdwconv3d_avxvnni, t.qconv3d_name = "avxvnni";
      if (f.avx512vnni && f.amx_int8 && !switched_off("PYVIDEO_AMX"))
        t.qconv3d = qconv3d_amx, t.qconv3d_name = "amx+avx512vnni";
      break;
#endif
#if defined(__aarch64__)
    case Isa::neon:
      t.dwconv3d_f32 = dwconv3d_f32_neon;
      t.conv3d_f32 = conv3d_f32_neon;
      t.conv3d_f32_rows = conv3d_f32_rows_neon;
      t.dwconv3d_f32_lines = dwconv3d_f32_lines_neon;
      t.qdwconv3d = qdwconv3d_neon;
      t.qscale = qscale_neon;
      t.qchannel_sums = qchannel_sums_neon;
      t.quantize_f32 = quantize_f32_neon;
      t.range_f32 = range_f32_neon;
      t.channels_last_row = channels_last_row_neon;
      t.qlinear_dot = qlinear_dot_neon;
      t.qconv3d = qconv3d_neon, t.qconv3d_name = "neon";
      if (f.dotprod) t.qconv3d = qconv3d_neondot, t.qdwconv3d = qdwconv3d_neondot, t.qconv3d_name = "neondot";
      break;
#endif
    default: break;
  }
  return t;
}

std::mutex table_mutex;
KernelTable active;
bool filled = false;
std::string fill_error;

void check_selectable(Isa isa) {
  const auto compiled = compiled_isas();
  if (std::find(compiled.begin(), compiled.end(), isa) == compiled.end())
    throw std::invalid_argument(std::string("ISA level '") + isa_name(isa) + "' is not compiled into this build");
  if (!cpu_supports(isa))
    throw std::invalid_argument(std::string("this CPU does not support ISA level '") + isa_name(isa) +
                                "' (detected features: " + cpu_features().to_string() + ")");
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon})
    if (name == isa_name(isa)) return isa;
  throw std::invalid_argument("unknown ISA level '" + name + "' (expected one of: scalar, avx2, avx512, neon)");
}

std::vector<Isa> compiled_isas() {
#if defined(__x86_64__) || defined(_M_X64)
  return {Isa::scalar, Isa::avx2, Isa::avx512};
#elif defined(__aarch64__)
  return {Isa::scalar, Isa::neon};
#else
  return {Isa::scalar};
#endif
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : compiled_isas())
    if (cpu_supports(isa)) out.push_back(isa);
  return out;
}

Isa best_isa() { return supported_isas().back(); }

const KernelTable& kernel_table() {
  std::lock_guard<std::mutex> lock(table_mutex);
  if (!filled) {
    const char* env = std::getenv("PYVIDEO_ISA");
    try {
      Isa isa = best_isa();
      if (env && *env) {
        isa = parse_isa(env);
        check_selectable(isa);
      }
      active = make_table(isa);
      filled = true;
    } catch (const std::invalid_argument& e) {
      fill_error = std::string("PYVIDEO_ISA: ") + e.what();
    }
  }
  if (!filled) throw std::invalid_argument(fill_error);
  return active;
}

void select_isa(Isa isa) {
  check_selectable(isa);
  std::lock_guard<std::mutex> lock(table_mutex);
  active = make_table(isa);
  filled = true;
}

}  // namespace pyvideo::kernels
