// The dispatch table: names parse, the CPU's best level is chosen, every supported level can be forced,
// and unknown or unsupported levels are refused.
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
#if defined(__x86_64__)
  CHECK_THROWS(select_isa(Isa::neon), std::invalid_argument);
#elif defined(__aarch64__)
  CHECK_THROWS(select_isa(Isa::avx2), std::invalid_argument);
  CHECK(cpu_features().neon);
#endif
  return check::finish("test_kernels_dispatch");
}
