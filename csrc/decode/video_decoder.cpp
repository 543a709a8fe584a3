#include "video_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "errors.h"

namespace pyvideo::decode {

namespace {
// Frames larger than this are treated as a corrupt header rather than allocated.
constexpr int64_t kMaxFramePixels = int64_t{16384} * 16384;

void check_finite_time(double seconds, const char* what) {
  if (!std::isfinite(seconds)) throw std::invalid_argument(std::string(what) + " must be a finite number of seconds");
}
}  // namespace

int default_decoder_threads() {
  const unsigned hardware = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(hardware, 1u, 4u));
}

VideoDecoder::VideoDecoder(const MediaSource& source, const VideoDecoderOptions& options) : source_(source) {
  if (options.num_threads < 0) throw std::invalid_argument("num_threads must be >= 0");
  auto input = std::make_unique<InputFile>(source);
  const int stream = best_stream(input->format(), AVMEDIA_TYPE_VIDEO);
  if (stream >= 0) index_ = scan_frame_index(input->format(), stream);
  info_ = describe_media(input->format(), source.name(), stream >= 0 ? &index_ : nullptr);
  if (stream < 0) return;

  const VideoStreamInfo& video = *info_.video;
  if (video.width <= 0 || video.height <= 0 || int64_t{video.width} * video.height > kMaxFramePixels)
    throw DecodeError(source.name() + ": invalid video frame size " + std::to_string(video.width) + "x" +
                      std::to_string(video.height));
  resolve_output_size(options.resize, video.width, video.height, &output_width_, &output_height_);
  if (int64_t{output_width_} * output_height_ > kMaxFramePixels)
    throw std::invalid_argument("requested output size is too large");
  converter_ = std::make_unique<FrameConverter>(output_width_, output_height_, options.interpolation);
  const int threads = options.num_threads > 0 ? options.num_threads : default_decoder_threads();
  reader_ = std::make_unique<VideoStreamReader>(source, std::move(input), stream, &index_, threads);
}

void VideoDecoder::require_video() const {
  if (!reader_) throw DecodeError(source_.name() + " has no video stream");
}

FrameBatch VideoDecoder::frames_at(const std::vector<int64_t>& indices) {
  require_video();
  for (int64_t i : indices) {
    if (i < 0 || i >= index_.num_frames())
      throw std::out_of_range("frame index " + std::to_string(i) + " is out of range: " + source_.name() + " has " +
                              std::to_string(index_.num_frames()) + " frames");
  }
  return decode_positions(indices);
}

FrameBatch VideoDecoder::frames_at_times(const std::vector<double>& seconds) {
  require_video();
  const double duration = info_.video->duration;
  std::vector<int64_t> positions;
  positions.reserve(seconds.size());
  for (double t : seconds) {
    check_finite_time(t, "frame time");
    if (t < 0 || t >= duration)
      throw std::out_of_range("time " + std::to_string(t) + " s is outside [0, " + std::to_string(duration) +
                              ") s, the video of " + source_.name());
    positions.push_back(index_.displayed_at(t));
  }
  return decode_positions(positions);
}

FrameBatch VideoDecoder::frames_in_range(double start, double end) {
  require_video();
  check_finite_time(start, "start");
  check_finite_time(end, "end");
  if (start < 0) throw std::invalid_argument("start (" + std::to_string(start) + " s) must not be negative");
  if (end < start)
    throw std::invalid_argument("end (" + std::to_string(end) + " s) is before start (" + std::to_string(start) + " s)");
  const int64_t first = index_.first_at_or_after(start);
  const int64_t stop = index_.first_at_or_after(end);
  std::vector<int64_t> positions;
  for (int64_t i = first; i < stop; ++i) positions.push_back(i);
  return decode_positions(positions);
}

std::vector<double> VideoDecoder::frame_seconds() const {
  std::vector<double> seconds(index_.num_frames());
  for (int64_t i = 0; i < index_.num_frames(); ++i) seconds[i] = index_.seconds_of(i);
  return seconds;
}

FrameBatch VideoDecoder::decode_positions(const std::vector<int64_t>& positions) {
  FrameBatch batch;
  batch.num_frames = static_cast<int64_t>(positions.size());
  batch.height = output_height_;
  batch.width = output_width_;
  batch.indices = positions;
  const size_t frame_bytes = static_cast<size_t>(output_width_) * output_height_ * 3;
  batch.data = allocate_aligned(frame_bytes * positions.size());
  for (int64_t p : positions) batch.seconds.push_back(index_.seconds_of(p));

  std::vector<int64_t> unique = positions;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  // output slots of each unique position, so repeated requests share one decode
  std::vector<std::vector<size_t>> slots(unique.size());
  for (size_t slot = 0; slot < positions.size(); ++slot) {
    const size_t u = std::lower_bound(unique.begin(), unique.end(), positions[slot]) - unique.begin();
    slots[u].push_back(slot);
  }

  std::lock_guard<std::mutex> lock(mutex_);
  reader_->decode(unique, [&](size_t u, const AVFrame& frame) {
    uint8_t* first = batch.data.get() + slots[u][0] * frame_bytes;
    converter_->convert(frame, first);
    for (size_t k = 1; k < slots[u].size(); ++k) std::memcpy(batch.data.get() + slots[u][k] * frame_bytes, first, frame_bytes);
  });
  return batch;
}

int64_t VideoDecoder::frames_decoded() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reader_ ? reader_->frames_decoded() : 0;
}

int64_t VideoDecoder::seeks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reader_ ? reader_->seeks() : 0;
}

}  // namespace pyvideo::decode
