#include "build_info.h"

#include <sstream>

#include "../../kernels/cpu/cpu_features.h"
#include "../../kernels/cpu/dispatch.h"

#if PYVIDEO_HAVE_FFMPEG
extern "C" {
#include <libavutil/avutil.h>
}
#endif

#ifndef PYVIDEO_VERSION
#define PYVIDEO_VERSION "0.0.0"
#endif
#ifndef PYVIDEO_BUILD_TYPE
#define PYVIDEO_BUILD_TYPE "unknown"
#endif

namespace pyvideo {

const char* version() { return PYVIDEO_VERSION; }

bool has_ffmpeg() { return PYVIDEO_HAVE_FFMPEG != 0; }

std::string ffmpeg_version() {
#if PYVIDEO_HAVE_FFMPEG
  return av_version_info();
#else
  return "";
#endif
}

std::string build_info() {
  std::ostringstream s;
  auto join = [](const std::vector<kernels::Isa>& isas) {
    std::string out;
    for (auto isa : isas) out += (out.empty() ? "" : ",") + std::string(kernels::isa_name(isa));
    return out;
  };
  s << "version=" << version() << "\n";
  s << "compiler=" << __VERSION__ << "\n";
  s << "build_type=" << PYVIDEO_BUILD_TYPE << "\n";
#if defined(__SANITIZE_ADDRESS__)
  s << "sanitizers=address,undefined\n";
#else
  s << "sanitizers=none\n";
#endif
#if defined(_OPENMP)
  s << "openmp=" << _OPENMP << "\n";
#else
  s << "openmp=none\n";
#endif
  s << "ffmpeg=" << (has_ffmpeg() ? ffmpeg_version() : std::string("none")) << "\n";
  s << "isa_compiled=" << join(kernels::compiled_isas()) << "\n";
  s << "isa_supported=" << join(kernels::supported_isas()) << "\n";
  s << "cpu_features=" << kernels::cpu_features().to_string() << "\n";
  s << "l2_cache_bytes=" << kernels::l2_cache_bytes() << "\n";
  return s.str();
}

}  // namespace pyvideo
