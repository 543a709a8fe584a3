#include "ffmpeg_util.h"

#include <mutex>
#include <new>

namespace pyvideo::decode {

FramePtr make_frame() {
  FramePtr frame(av_frame_alloc());
  if (!frame) throw std::bad_alloc();
  return frame;
}

PacketPtr make_packet() {
  PacketPtr packet(av_packet_alloc());
  if (!packet) throw std::bad_alloc();
  return packet;
}

std::string av_error_text(int error_code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(error_code, text, sizeof(text));
  return text;
}

AlignedBuffer allocate_aligned(size_t num_bytes) {
  auto* data = static_cast<uint8_t*>(av_malloc(num_bytes == 0 ? 1 : num_bytes));
  if (!data) throw std::bad_alloc();
  return AlignedBuffer(data);
}

void quiet_ffmpeg_logging() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

}  // namespace pyvideo::decode
