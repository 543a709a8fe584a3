// The dispatch table: names parse, the CPU's best level is chosen, every supported level can be forced,
// unknown or unsupported levels are refused, and PYVIDEO_VNNI=0 gives every level the int8 kernels of CPUs without a
// byte dot product.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "check.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/dispatch.h"

using namespace pyvideo::kernels;

int main() {
  std::printf("cpu features: %s\n", cpu_features().to_string().c_str());
  for (Isa isa : compiled_isas()) CHECK(parse_isa(isa_name(isa)) == isa);
  CHECK_THROWS(parse_isa("sse9"), std::invalid_argument);

  const char* env = std::getenv("PYVIDEO_ISA");
  const Isa first = kernel_table().isa;
  if (env && *env) {
    CHECK(std::string(isa_name(first)) == env);
  } else {
    CHECK(first == best_isa());
  }
  CHECK(kernel_table().dwconv3d_f32 != nullptr);

  for (Isa isa : supported_isas()) {
    select_isa(isa);
    CHECK(kernel_table().isa == isa);
    CHECK((isa == Isa::scalar) == (kernel_table().dwconv3d_f32 == dwconv3d_f32_scalar));
  }

  // PYVIDEO_VNNI=0 (read at every fill): each level's own int8 kernels, whatever the CPU has beyond the level
  const char* vnni = std::getenv("PYVIDEO_VNNI");
  const std::string saved = vnni ? vnni : "";
  setenv("PYVIDEO_VNNI", "0", 1);
  for (Isa isa : supported_isas()) {
    select_isa(isa);
    CHECK(std::string(kernel_table().qconv3d_name) == isa_name(isa));
#if defined(__x86_64__)
    const KernelTable& t = kernel_table();
    if (isa == Isa::avx512) CHECK(t.qconv3d == qconv3d_avx512 && t.qdwconv3d == qdwconv3d_avx512);
    if (isa == Isa::avx2) CHECK(t.qconv3d == qconv3d_avx2 && t.qdwconv3d == qdwconv3d_avx2);
#endif
  }
  setenv("PYVIDEO_VNNI", "1", 1);
  select_isa(best_isa());
  const std::string best_int8 = kernel_table().qconv3d_name;
  const CpuFeatures& f = cpu_features();
  if (best_isa() == Isa::avx512 && f.avx512vnni) CHECK(best_int8.find("avx512vnni") != std::string::npos);
  if (f.dotprod) CHECK(best_int8 == "neondot");
  if (vnni) setenv("PYVIDEO_VNNI", saved.c_str(), 1);
  else unsetenv("PYVIDEO_VNNI");
  select_isa(best_isa());

#if defined(__x86_64__)
  CHECK_THROWS(select_isa(Isa::neon), std::invalid_argument);
#elif defined(__aarch64__)
  CHECK_THROWS(select_isa(Isa::avx2), std::invalid_argument);
  CHECK(cpu_features().neon);
#endif
  return check::finish("test_kernels_dispatch");
}
