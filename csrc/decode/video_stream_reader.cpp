#include "video_stream_reader.h"

#include <unistd.h>

#include <algorithm>

#include "errors.h"

namespace pyvideo::decode {

VideoStreamReader::VideoStreamReader(MediaSource source, std::unique_ptr<InputFile> input, int stream_index,
                                     const FrameIndex* index, int num_threads)
    : source_(std::move(source)),
      input_(std::move(input)),
      stream_index_(stream_index),
      index_(index),
      num_threads_(num_threads),
      owner_pid_(getpid()) {
  open_codec();
}

void VideoStreamReader::open_codec() {
  const AVCodecParameters* par = input_->format()->streams[stream_index_]->codecpar;
  const AVCodec* decoder = avcodec_find_decoder(par->codec_id);
  if (!decoder)
    throw DecodeError(source_.name() + ": no decoder available for video codec " + avcodec_get_name(par->codec_id));
  codec_.reset(avcodec_alloc_context3(decoder));
  if (!codec_) throw std::bad_alloc();
  int err = avcodec_parameters_to_context(codec_.get(), par);
  if (err < 0) throw DecodeError(source_.name() + ": bad video codec parameters: " + av_error_text(err));
  codec_->pkt_timebase = input_->format()->streams[stream_index_]->time_base;
  codec_->thread_count = num_threads_;
  codec_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  err = avcodec_open2(codec_.get(), decoder, nullptr);
  if (err < 0) throw DecodeError(source_.name() + ": cannot open the " + decoder->name + " decoder: " + av_error_text(err));
  positioned_ = false;
}

// A forked child shares the parent's file offset and has none of its decoder threads: start afresh.
void VideoStreamReader::reopen_after_fork() {
  if (owner_pid_ == getpid()) return;
  codec_.release();  // the parent's decoder threads do not exist here; freeing would join them forever
  input_ = std::make_unique<InputFile>(source_);
  open_codec();
  owner_pid_ = getpid();
}

void VideoStreamReader::decode(const std::vector<int64_t>& positions, const FrameSink& sink) {
  reopen_after_fork();
  wanted_timestamps_.clear();
  for (int64_t p : positions) wanted_timestamps_.push_back(index_->frame(p).timestamp);
  std::sort(wanted_timestamps_.begin(), wanted_timestamps_.end());
  for (size_t request = 0; request < positions.size(); ++request) {
    const int64_t wanted = positions[request];
    if (should_seek_for(wanted)) seek_for(wanted);
    while (true) {
      const AVFrame* frame = next_frame();
      if (!frame && retry_without_skipping(wanted)) continue;
      if (!frame)
        throw DecodeError(source_.name() + ": frame " + std::to_string(wanted) +
                          " could not be decoded (the stream ended early; the file may be truncated or corrupt)");
      const int64_t position = position_of(*frame);
      if (position < 0) continue;  // a frame the index does not know: not one of ours
      last_position_ = position;
      if (position == wanted) {
        sink(request, *frame);
        break;
      }
      if (position > wanted && retry_without_skipping(wanted)) continue;
      if (position > wanted)
        throw DecodeError(source_.name() + ": frame " + std::to_string(wanted) +
                          " could not be decoded (the decoder skipped it; the data may be corrupt)");
    }
  }
}

bool VideoStreamReader::should_seek_for(int64_t position) const {
  if (!positioned_ || position <= last_position_) return true;
  if (!index_->seekable_by_timestamp()) return false;
  return index_->keyframe_at_or_before(position) > last_position_ + 1;
}

void VideoStreamReader::seek_for(int64_t position) {
  const int64_t keyframe = index_->seekable_by_timestamp() ? index_->keyframe_at_or_before(position) : -1;
  if (keyframe < 0) return rewind();
  const PacketEntry& entry = index_->frame(keyframe);
  ++seeks_;
  if (av_seek_frame(input_->format(), stream_index_, entry.seek_timestamp, AVSEEK_FLAG_BACKWARD) < 0) return rewind();
  reset_decoder();
  last_position_ = keyframe - 1;
  seek_check_ = SeekCheck::kKeyframe;
  seek_check_timestamp_ = entry.timestamp;
}

void VideoStreamReader::rewind() {
  ++seeks_;
  if (av_seek_frame(input_->format(), stream_index_, index_->first_dts(), AVSEEK_FLAG_BACKWARD) < 0) {
    input_ = std::make_unique<InputFile>(source_);  // the demuxer cannot seek: reopen it at the start
    seek_check_ = SeekCheck::kNone;
  } else {
    seek_check_ = SeekCheck::kStart;
  }
  reset_decoder();
  last_position_ = -1;
}

void VideoStreamReader::reset_decoder() {
  avcodec_flush_buffers(codec_.get());
  positioned_ = true;
  draining_ = false;
  next_counted_position_ = 0;
}

// After a seek the first packet must be the keyframe asked for (or an earlier one); a demuxer that landed
// later, or on a non-keyframe, would give wrong or missing frames, so the reader then decodes from the start.
bool VideoStreamReader::accept_after_seek(const AVPacket& packet) {
  const SeekCheck check = seek_check_;
  seek_check_ = SeekCheck::kNone;
  if (check == SeekCheck::kNone) return true;
  const int64_t timestamp = index_->seekable_by_timestamp() ? packet.pts : (packet.dts != AV_NOPTS_VALUE ? packet.dts : packet.pts);
  const bool ok = check == SeekCheck::kKeyframe
                      ? (packet.flags & AV_PKT_FLAG_KEY) && timestamp != AV_NOPTS_VALUE && timestamp <= seek_check_timestamp_
                      : (packet.dts == index_->first_dts() || packet.pts == index_->frame(0).timestamp);
  if (ok) return true;
  if (check == SeekCheck::kStart) {
    input_ = std::make_unique<InputFile>(source_);
    reset_decoder();
    last_position_ = -1;
  } else {
    rewind();
  }
  return false;
}

// Sends the next packet of our stream to the decoder; at the end of the file, starts flushing it.
bool VideoStreamReader::feed_decoder() {
  while (true) {
    const int err = av_read_frame(input_->format(), packet_.get());
    if (err < 0) {  // end of file, or damage we cannot read past
      avcodec_send_packet(codec_.get(), nullptr);
      draining_ = true;
      return true;
    }
    if (packet_->stream_index != stream_index_ || !accept_after_seek(*packet_)) {
      av_packet_unref(packet_.get());
      continue;
    }
    codec_->skip_frame = skips_packet(*packet_) ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
    const int sent = avcodec_send_packet(codec_.get(), packet_.get());
    av_packet_unref(packet_.get());
    if (sent >= 0) return true;
    // a corrupt packet: skip it, as the ffmpeg tool does; frames it held will be reported missing if wanted
  }
}

const AVFrame* VideoStreamReader::next_frame() {
  while (true) {
    const int err = avcodec_receive_frame(codec_.get(), frame_.get());
    if (err >= 0) {
      ++frames_decoded_;
      return frame_.get();
    }
    if (err == AVERROR_EOF || (err != AVERROR(EAGAIN)) || draining_) {
      positioned_ = false;  // the decoder must be flushed before it takes packets again
      return nullptr;
    }
    feed_decoder();
  }
}

// A wanted frame went missing while unwanted frames were being skipped: the container's pts may not identify
// packets reliably, so decode every frame from now on and try again.
bool VideoStreamReader::retry_without_skipping(int64_t wanted) {
  if (!skip_unwanted_ || !index_->seekable_by_timestamp()) return false;
  skip_unwanted_ = false;
  seek_for(wanted);
  return true;
}

// Frames no other frame refers to (most B-frames) need not be decoded unless they were asked for. Only frames
// before the last wanted one are skipped: the decoder reads ahead, and frames after it may be wanted by the next
// request, which continues from here. Only where frames are found by pts: counted streams need every frame.
bool VideoStreamReader::skips_packet(const AVPacket& packet) const {
  return skip_unwanted_ && index_->seekable_by_timestamp() && !wanted_timestamps_.empty() &&
         packet.pts != AV_NOPTS_VALUE && packet.pts < wanted_timestamps_.back() &&
         !std::binary_search(wanted_timestamps_.begin(), wanted_timestamps_.end(), packet.pts);
}

int64_t VideoStreamReader::position_of(const AVFrame& frame) {
  if (!index_->seekable_by_timestamp()) return next_counted_position_++;
  const int64_t pts = frame.pts != AV_NOPTS_VALUE ? frame.pts : frame.best_effort_timestamp;
  return pts == AV_NOPTS_VALUE ? -1 : index_->position_of_timestamp(pts);
}

}  // namespace pyvideo::decode
