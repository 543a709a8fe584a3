// CPU feature detection: what the processor we run on can execute.
#pragma once
#include <string>

namespace pyvideo::kernels {

struct CpuFeatures {
  // x86-64
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx_vnni = false;
  // AMX tiles with int8 dot products (TDPBSSD): the CPU has them, the OS saves the tile state (XCR0 bits 17/18) and
  // granted this process the tile data permission (Linux arch_prctl(ARCH_REQ_XCOMP_PERM), requested once here).
  bool amx_int8 = false;
  // ARM64
  bool neon = false, dotprod = false, i8mm = false;

  std::string to_string() const;  // e.g. "avx2 fma avx512f ..."
};

// Detected once (cpuid/xgetbv, and on Linux the AMX permission request, on x86; getauxval(AT_HWCAP) on ARM64) and cached.
const CpuFeatures& cpu_features();

// The L2 cache of the CPU we run on, in bytes, or 0 when unknown. Read once: on Linux from
// /sys/devices/system/cpu/cpu0/cache (the level-2 data or unified cache), else glibc's sysconf where it has the name.
// Kernels size their blocking by it. PYVIDEO_L2_BYTES (bytes, or with a K / M suffix) overrides it, for tests and
// experiments; a value that does not parse is ignored.
long long l2_cache_bytes();

// A /sys cache `size` text ("512K", "2048K", "1M", "16384") in bytes; 0 if it does not parse.
long long parse_cache_size(const std::string& text);

}  // namespace pyvideo::kernels
