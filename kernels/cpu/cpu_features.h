// CPU feature detection: what the processor we run on can execute.
#pragma once
#include <string>

namespace pyvideo::kernels {

struct CpuFeatures {
  // x86-64
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx_vnni = false;
  // ARM64
  bool neon = false, dotprod = false, i8mm = false;

  std::string to_string() const;  // e.g. "avx2 fma avx512f ..."
};

// Detected once (cpuid/xgetbv on x86, getauxval(AT_HWCAP) on ARM64) and cached.
const CpuFeatures& cpu_features();

}  // namespace pyvideo::kernels
