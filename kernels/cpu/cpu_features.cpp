#include "cpu_features.h"

#include <cstdlib>
#include <fstream>
#include <string>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <cstdint>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace pyvideo::kernels {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

// Linux hands out the (8 KiB) AMX tile data state only to processes that ask for it; without it the first tile
// instruction faults. The permission is per process, so once covers every thread.
bool request_amx_permission() {
#if defined(__linux__)
  constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
  return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & bit_OSXSAVE;
  const bool has_fma = c & bit_FMA;
  if (!osxsave) return f;
  // The OS must save the vector registers on context switch, or using them is unsafe.
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.fma = has_fma && ymm_state;
  f.avx2 = (b & bit_AVX2) && ymm_state;
  if (zmm_state) {
    f.avx512f = b & bit_AVX512F;
    f.avx512dq = b & bit_AVX512DQ;
    f.avx512bw = b & bit_AVX512BW;
    f.avx512vl = b & bit_AVX512VL;
    f.avx512vnni = c & bit_AVX512VNNI;
  }
  const bool tile_state = (xcr0 & (3u << 17)) == (3u << 17);  // XTILECFG and XTILEDATA
  const bool amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
  f.amx_int8 = amx_tile && amx_int8 && tile_state && request_amx_permission();
  if (ymm_state && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = a & (1u << 4);
  return f;
}
#elif defined(__aarch64__)
CpuFeatures detect() {
  CpuFeatures f;
  f.neon = true;  // Advanced SIMD is mandatory on ARMv8-A
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
#ifdef HWCAP_ASIMDDP
  f.dotprod = hw & HWCAP_ASIMDDP;
#endif
#ifdef HWCAP2_I8MM
  f.i8mm = hw2 & HWCAP2_I8MM;
#else
  (void)hw2;
#endif
#endif
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

std::string CpuFeatures::to_string() const {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512dq, "avx512dq");
  add(avx512vnni, "avx512vnni");
  add(avx_vnni, "avxvnni");
  add(amx_int8, "amx_int8");
  add(neon, "neon");
  add(dotprod, "dotprod");
  add(i8mm, "i8mm");
  return s.empty() ? "none" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

long long parse_cache_size(const std::string& text) {
  size_t i = 0;
  long long value = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (value > (1LL << 40)) return 0;
    value = value * 10 + (text[i] - '0');
  }
  if (i == 0) return 0;
  long long unit = 1;
  if (i < text.size() && (text[i] == 'K' || text[i] == 'k')) unit = 1LL << 10, ++i;
  else if (i < text.size() && (text[i] == 'M' || text[i] == 'm')) unit = 1LL << 20, ++i;
  while (i < text.size() && (text[i] == '\n' || text[i] == ' ')) ++i;
  return i == text.size() ? value * unit : 0;
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

long long detect_l2_bytes() {
  if (const char* env = std::getenv("PYVIDEO_L2_BYTES")) {
    const long long v = parse_cache_size(env);
    if (v > 0) return v;
  }
#if defined(__linux__)
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    const std::string level = read_text(dir + "level"), type = read_text(dir + "type");
    if (level.empty()) break;
    if (level == "2" && (type == "Unified" || type == "Data")) {
      const long long v = parse_cache_size(read_text(dir + "size"));
      if (v > 0) return v;
    }
  }
#endif
#if defined(_SC_LEVEL2_CACHE_SIZE)
  const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (v > 0) return v;
#endif
  return 0;
}

}  // namespace

long long l2_cache_bytes() {
  static const long long bytes = detect_l2_bytes();
  return bytes;
}

}  // namespace pyvideo::kernels
