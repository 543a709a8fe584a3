// The video decoder: opens a file or buffer, indexes its video stream, and returns RGB frames by index, by time,
// or for a time range, optionally resized in the same pass. Safe to call from several threads (calls serialise).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "frame_converter.h"
#include "media_info.h"
#include "media_input.h"
#include "video_stream_reader.h"

namespace pyvideo::decode {

struct VideoDecoderOptions {
  int num_threads = 0;  // FFmpeg decoding threads; 0 picks default_decoder_threads()
  ResizeSpec resize;
  Interpolation interpolation = Interpolation::kBilinear;
};

// min(4, hardware threads): frame threading beyond a few threads adds latency to every seek.
int default_decoder_threads();

// Decoded frames, [num_frames, height, width, 3] uint8 RGB, with each frame's position and time.
struct FrameBatch {
  int64_t num_frames = 0;
  int height = 0;
  int width = 0;
  AlignedBuffer data;
  std::vector<int64_t> indices;
  std::vector<double> seconds;
};

class VideoDecoder {
 public:
  // A file without a video stream opens too (has_video() is false), so its audio and metadata stay reachable.
  VideoDecoder(const MediaSource& source, const VideoDecoderOptions& options = {});

  const MediaInfo& info() const { return info_; }
  bool has_video() const { return static_cast<bool>(reader_); }
  const FrameIndex& index() const { return index_; }
  int output_width() const { return output_width_; }
  int output_height() const { return output_height_; }

  // Frames by index, in the order given (repeats allowed). Throws std::out_of_range for an index past the end.
  FrameBatch frames_at(const std::vector<int64_t>& indices);
  // The frame on screen at each time (the last frame starting at or before it). Times must lie in [0, duration).
  FrameBatch frames_at_times(const std::vector<double>& seconds);
  // All frames whose time lies in [start, end).
  FrameBatch frames_in_range(double start, double end);
  // Times of all frames, in seconds, without decoding.
  std::vector<double> frame_seconds() const;

  int64_t frames_decoded() const;
  int64_t seeks() const;

 private:
  void require_video() const;
  FrameBatch decode_positions(const std::vector<int64_t>& positions);

  MediaSource source_;
  MediaInfo info_;
  FrameIndex index_;
  std::unique_ptr<VideoStreamReader> reader_;
  std::unique_ptr<FrameConverter> converter_;
  int output_width_ = 0;
  int output_height_ = 0;
  mutable std::mutex mutex_;
};

}  // namespace pyvideo::decode
