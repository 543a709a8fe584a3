// Decodes an audio stream to float32 samples for a time range, mixed to mono or not, resampled on request.
//
// Sample k (at the output rate R) lies at k / R seconds after the stream's origin; a range [start, end) holds the
// samples with ceil(start * R) <= k < ceil(end * R). Decoding starts half a second before `start` (after a seek), so
// codecs with overlapping frames (AAC, MP3) and the resampler are settled when the range begins.
#pragma once

#include <cstdint>
#include <memory>

#include "ffmpeg_util.h"
#include "media_info.h"
#include "media_input.h"

namespace pyvideo::decode {

struct AudioDecoderOptions {
  int sample_rate = 0;  // 0 keeps the stream's rate
  bool mono = true;     // mix all channels to one (FFmpeg's downmix: the mean for stereo)
};

// Samples, [channels, num_samples] float32 (planar), starting at sample index `first_sample`.
struct AudioBatch {
  int channels = 0;
  int64_t num_samples = 0;
  int sample_rate = 0;
  int64_t first_sample = 0;
  AlignedBuffer data;
};

class AudioDecoder {
 public:
  AudioDecoder(const MediaSource& source, const AudioDecoderOptions& options = {});

  const AudioStreamInfo& info() const { return info_; }
  int output_sample_rate() const { return sample_rate_; }
  int output_channels() const { return channels_; }

  AudioBatch samples_in_range(double start, double end);

 private:
  void open_codec();
  void position_before(double seconds);
  SwrPtr make_resampler(const AVFrame& frame) const;

  MediaSource source_;
  std::unique_ptr<InputFile> input_;
  AudioStreamInfo info_;
  CodecContextPtr codec_;
  int stream_index_ = -1;
  int sample_rate_ = 0;
  int channels_ = 0;
  bool at_start_ = true;  // nothing read since open: decoding from here gives the stream's first samples
  pid_t owner_pid_;
};

}  // namespace pyvideo::decode
