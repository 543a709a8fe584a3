// Decodes a list of JPEG or PNG files (the frames of a video stored as images) into one RGB frame batch,
// on several threads, with FFmpeg's image decoders (no OpenCV). Colour conversion is the same as for videos, so a
// frame equals `ffmpeg -i IMAGE -f rawvideo -pix_fmt rgb24 -`.
#pragma once

#include <string>
#include <vector>

#include "frame_converter.h"
#include "video_decoder.h"

namespace pyvideo::decode {

// All images must have the size of the first one unless `resize` sets the output size.
// num_threads 0 uses default_decoder_threads().
FrameBatch decode_image_files(const std::vector<std::string>& paths, int num_threads = 0, const ResizeSpec& resize = {},
                              Interpolation interpolation = Interpolation::kBilinear);

}  // namespace pyvideo::decode
