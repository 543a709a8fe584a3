// Writes RGB frames to a video file with libavcodec/libavformat (the container follows the file extension).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pyvideo::decode {

struct EncoderOptions {
  std::string codec = "mpeg4";  // an FFmpeg encoder name ("mpeg4", "libx264", ...) or codec name ("h264", "vp9", ...)
  double fps = 30.0;
  int64_t bit_rate = 0;          // 0: the encoder's default
  std::string pixel_format;      // empty: yuv420p where the encoder takes it, else its first format
  int width = 0;                 // output size; 0 keeps the input size
  int height = 0;
  bool input_is_bgr = false;     // frames are BGR instead of RGB
  std::vector<std::pair<std::string, std::string>> codec_options;  // passed to the encoder (e.g. crf=18)
};

// `frames` holds num_frames * height * width * 3 bytes, packed rows.
void encode_video(const std::string& path, const uint8_t* frames, int64_t num_frames, int height, int width,
                  const EncoderOptions& options);

}  // namespace pyvideo::decode
