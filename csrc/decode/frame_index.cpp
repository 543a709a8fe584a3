#include "frame_index.h"

#include <algorithm>
#include <cmath>

namespace pyvideo::decode {

FrameIndex::FrameIndex(std::vector<PacketEntry> packets, bool timestamps_are_pts, AVRational time_base, int64_t origin)
    : frames_(std::move(packets)), time_base_(time_base), origin_(origin) {
  // stable: packets with equal timestamps keep their decode order
  std::stable_sort(frames_.begin(), frames_.end(),
                   [](const PacketEntry& a, const PacketEntry& b) { return a.timestamp < b.timestamp; });
  const bool unique = std::adjacent_find(frames_.begin(), frames_.end(), [](const PacketEntry& a, const PacketEntry& b) {
                        return a.timestamp == b.timestamp;
                      }) == frames_.end();
  by_timestamp_ = timestamps_are_pts && unique;
  first_dts_ = frames_.empty() ? 0 : frames_.front().dts;
  for (int64_t i = 0; i < num_frames(); ++i) {
    first_dts_ = std::min(first_dts_, frames_[i].dts);
    if (frames_[i].keyframe) keyframe_positions_.push_back(i);
  }
}

double FrameIndex::seconds_of(int64_t position) const {
  return static_cast<double>(frames_[position].timestamp - origin_) * av_q2d(time_base_);
}

double FrameIndex::average_frame_seconds() const {
  if (num_frames() < 2) return 0.0;
  return (seconds_of(num_frames() - 1) - seconds_of(0)) / static_cast<double>(num_frames() - 1);
}

double FrameIndex::end_seconds() const {
  if (frames_.empty()) return 0.0;
  const PacketEntry& last = frames_.back();
  const double last_duration =
      last.duration > 0 ? static_cast<double>(last.duration) * av_q2d(time_base_) : average_frame_seconds();
  return seconds_of(num_frames() - 1) + last_duration;
}

int64_t FrameIndex::position_of_timestamp(int64_t timestamp) const {
  auto it = std::lower_bound(frames_.begin(), frames_.end(), timestamp,
                             [](const PacketEntry& entry, int64_t ts) { return entry.timestamp < ts; });
  if (it == frames_.end() || it->timestamp != timestamp) return -1;
  return it - frames_.begin();
}

int64_t FrameIndex::keyframe_at_or_before(int64_t position) const {
  auto it = std::upper_bound(keyframe_positions_.begin(), keyframe_positions_.end(), position);
  return it == keyframe_positions_.begin() ? -1 : *(it - 1);
}

// Timestamps within kTickTolerance of a requested time count as equal to it, so that a time computed in floating
// point (1/30 s, say) still selects the frame stamped exactly there.
constexpr double kTickTolerance = 1e-6;

double FrameIndex::ticks_of(double seconds) const {
  return seconds / av_q2d(time_base_) + static_cast<double>(origin_);
}

int64_t FrameIndex::first_at_or_after(double seconds) const {
  const double ticks = ticks_of(seconds);
  int64_t lo = 0, hi = num_frames();
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (static_cast<double>(frames_[mid].timestamp) < ticks - kTickTolerance) lo = mid + 1; else hi = mid;
  }
  return lo;
}

int64_t FrameIndex::displayed_at(double seconds) const {
  const int64_t next = first_at_or_after(seconds);
  if (next < num_frames() && static_cast<double>(frames_[next].timestamp) <= ticks_of(seconds) + kTickTolerance) return next;
  return std::max<int64_t>(next - 1, 0);
}

}  // namespace pyvideo::decode
