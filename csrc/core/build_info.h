// What this build of libvideo contains: version, compiler, options, ISA levels, FFmpeg.
#pragma once
#include <string>

namespace pyvideo {

const char* version();
std::string build_info();  // "key=value" lines: version, compiler, build_type, sanitizers, openmp, ffmpeg, isa...
bool has_ffmpeg();
std::string ffmpeg_version();  // empty without FFmpeg

}  // namespace pyvideo
