// Converts decoded frames of any pixel format to packed RGB24 at the output size, resizing in the same swscale pass.
//
// Colour handling follows the ffmpeg command-line tool's scale filter, so that output is bit-exact with
// `ffmpeg -i VIDEO -f rawvideo -pix_fmt rgb24 -`: the frame's colour matrix (BT.601 when unspecified) and range
// (limited unless the frame or its pixel format says full) are honoured, and without resizing the
// scaler runs with the CLI's default flags (bicubic).
#pragma once

#include <cstdint>
#include <string>

#include "ffmpeg_util.h"

namespace pyvideo::decode {

enum class Interpolation { kBilinear, kBicubic, kArea, kNearest };

// Parses "bilinear", "bicubic", "area" or "nearest"; throws std::invalid_argument otherwise.
Interpolation parse_interpolation(const std::string& name);

// Output size for a resize request: both `width` and `height` > 0 give that size; `short_side` > 0 scales the
// shorter side to it and the other side proportionally (rounded down); otherwise the input size is kept.
struct ResizeSpec {
  int width = 0;
  int height = 0;
  int short_side = 0;
};
void resolve_output_size(const ResizeSpec& spec, int in_width, int in_height, int* out_width, int* out_height);

class FrameConverter {
 public:
  FrameConverter(int out_width, int out_height, Interpolation interpolation);

  // Writes out_height * out_width * 3 bytes to `rgb` (rows packed, no padding).
  void convert(const AVFrame& frame, uint8_t* rgb);

 private:
  void configure(const AVFrame& frame);

  int out_width_;
  int out_height_;
  Interpolation interpolation_;
  SwsPtr sws_;
  // what the current swscale context was made for
  int in_width_ = -1, in_height_ = -1, in_format_ = -1, in_colorspace_ = -1, in_range_ = -1;
  // swscale's SIMD paths want aligned, padded rows; rows are converted here first when the output rows are not
  AlignedBuffer scratch_;
  int scratch_linesize_ = 0;
};

}  // namespace pyvideo::decode
