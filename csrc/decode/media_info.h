// What a media file contains: its streams and the properties of the video and audio stream the readers use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ffmpeg_util.h"
#include "frame_index.h"

namespace pyvideo::decode {

struct StreamInfo {
  int index = -1;
  std::string media_type;  // "video", "audio", "subtitle", "data", ...
  std::string codec;
};

struct VideoStreamInfo {
  int stream_index = -1;
  std::string codec;
  std::string pixel_format;
  int width = 0;
  int height = 0;
  int rotation = 0;  // degrees clockwise the frames must be turned for display (0, 90, 180, 270)
  double fps = 0.0;
  int64_t num_frames = 0;
  double duration = 0.0;    // seconds
  double start_time = 0.0;  // seconds, of the stream's origin in the container
  int64_t bit_rate = 0;
  AVRational time_base{0, 1};
};

struct AudioStreamInfo {
  int stream_index = -1;
  std::string codec;
  std::string sample_format;
  int sample_rate = 0;
  int channels = 0;
  double duration = 0.0;
  double start_time = 0.0;
  int64_t bit_rate = 0;
  AVRational time_base{0, 1};
};

struct MediaInfo {
  std::string name;
  std::string container;
  double duration = 0.0;  // the longest of the video and audio streams
  int64_t bit_rate = 0;
  std::vector<StreamInfo> streams;
  std::optional<VideoStreamInfo> video;
  std::optional<AudioStreamInfo> audio;
};

// Index of the stream of `type` FFmpeg would pick by default, or -1.
int best_stream(AVFormatContext* format, AVMediaType type);

// Ticks of a stream's origin: its start time, or 0 where the container gives none.
int64_t stream_origin(const AVStream* stream);

// Reads every packet header of stream `stream_index` once (other streams are skipped) and indexes its frames.
// The demuxer is left at the end of the file.
FrameIndex scan_frame_index(AVFormatContext* format, int stream_index);

// Describes all streams; `video_index` supplies the video stream's frame count and duration.
MediaInfo describe_media(AVFormatContext* format, const std::string& name, const FrameIndex* video_index);

}  // namespace pyvideo::decode
