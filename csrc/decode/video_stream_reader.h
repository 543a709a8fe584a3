// Decodes chosen frames of one video stream, by presentation position, seeking only where it saves work.
//
// Requests arrive sorted. The reader decodes forward from where it is, and seeks to the latest keyframe at or
// before the next wanted frame only when that keyframe lies beyond the last frame it produced (or when the wanted
// frame is behind it). A frame is never decoded twice within one request, and non-reference frames that were not
// asked for are not decoded at all. Decoded frames are located by their pts
// in the FrameIndex; streams without usable pts are decoded from the start and frames are counted.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <vector>

#include "ffmpeg_util.h"
#include "frame_index.h"
#include "media_input.h"

namespace pyvideo::decode {

class VideoStreamReader {
 public:
  // Takes over an opened input (avoids opening the file twice); `index` must outlive the reader.
  VideoStreamReader(MediaSource source, std::unique_ptr<InputFile> input, int stream_index, const FrameIndex* index,
                    int num_threads);

  using FrameSink = std::function<void(size_t request, const AVFrame& frame)>;
  // Decodes the frames at `positions` (ascending, unique) and hands the i-th to `sink(i, frame)`.
  void decode(const std::vector<int64_t>& positions, const FrameSink& sink);

  int64_t frames_decoded() const { return frames_decoded_; }
  int64_t seeks() const { return seeks_; }

 private:
  void open_codec();
  void reopen_after_fork();
  bool should_seek_for(int64_t position) const;
  void seek_for(int64_t position);
  void rewind();
  void reset_decoder();
  bool accept_after_seek(const AVPacket& packet);
  bool feed_decoder();
  const AVFrame* next_frame();
  int64_t position_of(const AVFrame& frame);
  bool skips_packet(const AVPacket& packet) const;
  bool retry_without_skipping(int64_t wanted);

  enum class SeekCheck { kNone, kKeyframe, kStart };

  MediaSource source_;
  std::unique_ptr<InputFile> input_;
  int stream_index_;
  const FrameIndex* index_;
  int num_threads_;
  CodecContextPtr codec_;
  PacketPtr packet_ = make_packet();
  FramePtr frame_ = make_frame();
  pid_t owner_pid_;

  bool positioned_ = false;    // false until the first seek, and after the decoder ran dry
  bool draining_ = false;      // the demuxer is exhausted and the decoder is being flushed
  int64_t last_position_ = -1;  // position of the last frame produced
  int64_t next_counted_position_ = 0;  // for streams located by counting
  SeekCheck seek_check_ = SeekCheck::kNone;
  int64_t seek_check_timestamp_ = 0;
  std::vector<int64_t> wanted_timestamps_;  // pts of the frames the current request wants, sorted
  bool skip_unwanted_ = true;               // skip decoding non-reference frames nobody asked for
  int64_t frames_decoded_ = 0;
  int64_t seeks_ = 0;
};

}  // namespace pyvideo::decode
