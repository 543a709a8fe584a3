// The frame index of a video stream, built at open from packet headers alone (no decoding).
//
// Frame i is the i-th frame in presentation order. Its time is (pts_i - origin) * time_base seconds, where origin is
// the stream's start time. Streams whose packets lack presentation timestamps (e.g. AVI with B-frames) or repeat them
// are indexed in decode order; for those the reader counts frames from the start instead of matching timestamps.
#pragma once

#include <cstdint>
#include <vector>

extern "C" {
#include <libavutil/rational.h>
}

namespace pyvideo::decode {

struct PacketEntry {
  int64_t timestamp;  // pts, or dts where the stream has no pts
  int64_t dts;
  int64_t byte_position;
  int64_t duration;
  bool keyframe;
  int64_t seek_timestamp;  // what to pass to av_seek_frame to land on this keyframe
};

class FrameIndex {
 public:
  FrameIndex() = default;
  // `packets` in any order; packets flagged for discard by the demuxer must already be left out.
  FrameIndex(std::vector<PacketEntry> packets, bool timestamps_are_pts, AVRational time_base, int64_t origin);

  int64_t num_frames() const { return static_cast<int64_t>(frames_.size()); }
  // True when decoded frames can be located by their pts; false means frames are counted in decode order.
  bool seekable_by_timestamp() const { return by_timestamp_; }
  const PacketEntry& frame(int64_t position) const { return frames_[position]; }

  double seconds_of(int64_t position) const;
  double end_seconds() const;  // end of the last frame
  // Position of the frame whose pts is `timestamp`, or -1.
  int64_t position_of_timestamp(int64_t timestamp) const;
  // Latest keyframe at or before `position` in presentation order, or -1 if there is none.
  int64_t keyframe_at_or_before(int64_t position) const;
  // First frame with time >= seconds (num_frames() if none).
  int64_t first_at_or_after(double seconds) const;
  // The frame on screen at `seconds`: the last frame with time <= seconds (0 before the first frame).
  int64_t displayed_at(double seconds) const;
  // Smallest decode timestamp, where a rewind to the start seeks to.
  int64_t first_dts() const { return first_dts_; }
  double average_frame_seconds() const;

 private:
  double ticks_of(double seconds) const;

  std::vector<PacketEntry> frames_;        // presentation order
  std::vector<int64_t> keyframe_positions_;  // ascending
  bool by_timestamp_ = false;
  AVRational time_base_{1, 1};
  int64_t origin_ = 0;
  int64_t first_dts_ = 0;
};

}  // namespace pyvideo::decode
