#include "frame_converter.h"

#include <cstring>
#include <stdexcept>

#include "errors.h"

namespace pyvideo::decode {

namespace {
constexpr int kRowAlignment = 64;

int sws_flags_for(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::kBilinear: return SWS_BILINEAR;
    case Interpolation::kBicubic: return SWS_BICUBIC;
    case Interpolation::kArea: return SWS_AREA;
    case Interpolation::kNearest: return SWS_POINT;
  }
  return SWS_BICUBIC;
}
}  // namespace

Interpolation parse_interpolation(const std::string& name) {
  if (name == "bilinear") return Interpolation::kBilinear;
  if (name == "bicubic") return Interpolation::kBicubic;
  if (name == "area") return Interpolation::kArea;
  if (name == "nearest") return Interpolation::kNearest;
  throw std::invalid_argument("unknown interpolation '" + name + "' (expected bilinear, bicubic, area or nearest)");
}

void resolve_output_size(const ResizeSpec& spec, int in_width, int in_height, int* out_width, int* out_height) {
  if (spec.width < 0 || spec.height < 0 || spec.short_side < 0)
    throw std::invalid_argument("resize sizes must be positive");
  if ((spec.width > 0) != (spec.height > 0))
    throw std::invalid_argument("resize needs both width and height (or short_side)");
  if (spec.width > 0 && spec.short_side > 0) throw std::invalid_argument("give either width/height or short_side, not both");
  *out_width = in_width;
  *out_height = in_height;
  if (spec.width > 0) {
    *out_width = spec.width;
    *out_height = spec.height;
  } else if (spec.short_side > 0 && in_width > 0 && in_height > 0) {
    const int64_t side = spec.short_side;
    if (in_width <= in_height) {
      *out_width = spec.short_side;
      *out_height = static_cast<int>(std::max<int64_t>(1, side * in_height / in_width));
    } else {
      *out_height = spec.short_side;
      *out_width = static_cast<int>(std::max<int64_t>(1, side * in_width / in_height));
    }
  }
}

FrameConverter::FrameConverter(int out_width, int out_height, Interpolation interpolation)
    : out_width_(out_width), out_height_(out_height), interpolation_(interpolation) {
  if (out_width <= 0 || out_height <= 0) throw std::invalid_argument("output frame size must be positive");
  if ((out_width * 3) % kRowAlignment != 0) {
    scratch_linesize_ = (out_width * 3 + kRowAlignment - 1) / kRowAlignment * kRowAlignment + kRowAlignment;
    scratch_ = allocate_aligned(static_cast<size_t>(scratch_linesize_) * out_height);
  }
}

void FrameConverter::configure(const AVFrame& frame) {
  if (sws_ && frame.width == in_width_ && frame.height == in_height_ && frame.format == in_format_ &&
      frame.colorspace == in_colorspace_ && frame.color_range == in_range_)
    return;
  const auto format = static_cast<AVPixelFormat>(frame.format);
  if (!sws_isSupportedInput(format)) {
    const char* name = av_get_pix_fmt_name(format);
    throw DecodeError(std::string("cannot convert pixel format ") + (name ? name : "unknown") + " to RGB");
  }
  const bool resizing = frame.width != out_width_ || frame.height != out_height_;
  const int flags = resizing ? sws_flags_for(interpolation_) : SWS_BICUBIC;
  sws_.reset(sws_getContext(frame.width, frame.height, format, out_width_, out_height_, AV_PIX_FMT_RGB24, flags,
                            nullptr, nullptr, nullptr));
  if (!sws_) throw DecodeError("cannot set up colour conversion from " + std::to_string(frame.width) + "x" +
                               std::to_string(frame.height) + " " + av_get_pix_fmt_name(format));
  // As the CLI's scale filter does: colour matrix from the frame, range from the frame where it says.
  int *inv_table = nullptr, *table = nullptr;
  int src_full = 0, dst_full = 0, brightness = 0, contrast = 0, saturation = 0;
  sws_getColorspaceDetails(sws_.get(), &inv_table, &src_full, &table, &dst_full, &brightness, &contrast, &saturation);
  const int* coefficients = sws_getCoefficients(frame.colorspace);
  if (frame.color_range != AVCOL_RANGE_UNSPECIFIED) src_full = frame.color_range == AVCOL_RANGE_JPEG;
  sws_setColorspaceDetails(sws_.get(), coefficients, src_full, coefficients, dst_full, brightness, contrast, saturation);
  in_width_ = frame.width;
  in_height_ = frame.height;
  in_format_ = frame.format;
  in_colorspace_ = frame.colorspace;
  in_range_ = frame.color_range;
}

void FrameConverter::convert(const AVFrame& frame, uint8_t* rgb) {
  configure(frame);
  const int row_bytes = out_width_ * 3;
  uint8_t* target = scratch_ ? scratch_.get() : rgb;
  const int target_linesize = scratch_ ? scratch_linesize_ : row_bytes;
  uint8_t* planes[4] = {target, nullptr, nullptr, nullptr};
  int linesizes[4] = {target_linesize, 0, 0, 0};
  const int rows = sws_scale(sws_.get(), frame.data, frame.linesize, 0, frame.height, planes, linesizes);
  if (rows != out_height_) throw DecodeError("colour conversion produced " + std::to_string(rows) + " rows, expected " +
                                             std::to_string(out_height_));
  if (!scratch_) return;
  for (int y = 0; y < out_height_; ++y)
    std::memcpy(rgb + static_cast<size_t>(y) * row_bytes, scratch_.get() + static_cast<size_t>(y) * scratch_linesize_,
                row_bytes);
}

}  // namespace pyvideo::decode
