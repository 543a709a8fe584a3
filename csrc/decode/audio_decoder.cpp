#include "audio_decoder.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "errors.h"

namespace pyvideo::decode {

namespace {
constexpr double kPrerollSeconds = 0.5;
constexpr int kMaxSampleRate = 1'000'000;

int64_t first_sample_at_or_after(double seconds, int rate) {
  return static_cast<int64_t>(std::ceil(seconds * rate - 1e-6));
}
}  // namespace

AudioDecoder::AudioDecoder(const MediaSource& source, const AudioDecoderOptions& options)
    : source_(source), input_(std::make_unique<InputFile>(source)), owner_pid_(getpid()) {
  if (options.sample_rate < 0 || options.sample_rate > kMaxSampleRate)
    throw std::invalid_argument("sample_rate must be between 1 and 1000000 Hz (or 0 to keep the stream's rate)");
  stream_index_ = best_stream(input_->format(), AVMEDIA_TYPE_AUDIO);
  if (stream_index_ < 0) throw DecodeError(source.name() + " has no audio stream");
  const MediaInfo media = describe_media(input_->format(), source.name(), nullptr);
  info_ = *media.audio;
  if (info_.sample_rate <= 0 || info_.channels <= 0)
    throw DecodeError(source.name() + ": audio stream has no valid sample rate or channel count");
  sample_rate_ = options.sample_rate > 0 ? options.sample_rate : info_.sample_rate;
  channels_ = options.mono ? 1 : info_.channels;
  open_codec();
}

void AudioDecoder::open_codec() {
  const AVCodecParameters* par = input_->format()->streams[stream_index_]->codecpar;
  const AVCodec* decoder = avcodec_find_decoder(par->codec_id);
  if (!decoder)
    throw DecodeError(source_.name() + ": no decoder available for audio codec " + avcodec_get_name(par->codec_id));
  codec_.reset(avcodec_alloc_context3(decoder));
  if (!codec_) throw std::bad_alloc();
  int err = avcodec_parameters_to_context(codec_.get(), par);
  if (err >= 0) {
    codec_->pkt_timebase = input_->format()->streams[stream_index_]->time_base;
    codec_->thread_count = 1;
    err = avcodec_open2(codec_.get(), decoder, nullptr);
  }
  if (err < 0) throw DecodeError(source_.name() + ": cannot open the audio decoder: " + av_error_text(err));
}

void AudioDecoder::position_before(double seconds) {
  const double target = seconds - kPrerollSeconds;
  // Ranges near the start are decoded from a freshly opened demuxer: only a decode from the very beginning
  // applies the codec's start padding (AAC/MP3 priming) the same way every time. A forked child reopens too,
  // as the parent owns the file position.
  if (owner_pid_ != getpid() || (target <= 0 && !at_start_)) {
    input_ = std::make_unique<InputFile>(source_);
    open_codec();
    owner_pid_ = getpid();
    at_start_ = true;
  }
  if (at_start_ && target <= 0) return;
  const AVStream* stream = input_->format()->streams[stream_index_];
  const int64_t ticks = stream_origin(stream) + static_cast<int64_t>(target / av_q2d(stream->time_base));
  if (av_seek_frame(input_->format(), stream_index_, ticks, AVSEEK_FLAG_BACKWARD) < 0) {
    input_ = std::make_unique<InputFile>(source_);  // not seekable: read again from the start
    open_codec();
  } else {
    avcodec_flush_buffers(codec_.get());
  }
  at_start_ = false;
}

SwrPtr AudioDecoder::make_resampler(const AVFrame& frame) const {
  AVChannelLayout in_layout{};
  if (frame.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || av_channel_layout_check(&frame.ch_layout) == 0)
    av_channel_layout_default(&in_layout, frame.ch_layout.nb_channels);
  else
    av_channel_layout_copy(&in_layout, &frame.ch_layout);
  AVChannelLayout out_layout{};
  if (channels_ == 1) av_channel_layout_default(&out_layout, 1); else av_channel_layout_copy(&out_layout, &in_layout);
  SwrContext* swr = nullptr;
  int err = swr_alloc_set_opts2(&swr, &out_layout, AV_SAMPLE_FMT_FLTP, sample_rate_, &in_layout,
                                static_cast<AVSampleFormat>(frame.format), frame.sample_rate, 0, nullptr);
  av_channel_layout_uninit(&in_layout);
  av_channel_layout_uninit(&out_layout);
  SwrPtr resampler(swr);
  if (err >= 0) err = swr_init(swr);
  if (err < 0) throw DecodeError(source_.name() + ": cannot set up audio resampling: " + av_error_text(err));
  return resampler;
}

AudioBatch AudioDecoder::samples_in_range(double start, double end) {
  if (!std::isfinite(start) || !std::isfinite(end)) throw std::invalid_argument("start and end must be finite seconds");
  if (start < 0) throw std::invalid_argument("start (" + std::to_string(start) + " s) must not be negative");
  if (end < start)
    throw std::invalid_argument("end (" + std::to_string(end) + " s) is before start (" + std::to_string(start) + " s)");
  const int64_t first = first_sample_at_or_after(start, sample_rate_);
  const int64_t stop = first_sample_at_or_after(end, sample_rate_);

  position_before(start);
  const AVStream* stream = input_->format()->streams[stream_index_];
  const double time_base = av_q2d(stream->time_base);
  const int64_t origin = stream_origin(stream);

  std::vector<std::vector<float>> planes(channels_);
  int64_t base = -1;  // output sample index of planes[*][0]
  SwrPtr resampler;
  PacketPtr packet = make_packet();
  FramePtr frame = make_frame();
  auto append = [&](const uint8_t** in, int in_samples) {
    const int capacity = swr_get_out_samples(resampler.get(), in_samples);
    if (capacity <= 0) return;
    const size_t used = planes[0].size();
    for (auto& plane : planes) plane.resize(used + capacity);
    std::vector<uint8_t*> out(channels_);
    for (int c = 0; c < channels_; ++c) out[c] = reinterpret_cast<uint8_t*>(planes[c].data() + used);
    const int produced = swr_convert(resampler.get(), out.data(), capacity, in, in_samples);
    for (auto& plane : planes) plane.resize(used + std::max(produced, 0));
  };
  auto done = [&] { return base >= 0 && base + static_cast<int64_t>(planes[0].size()) >= stop; };

  bool flushing = false;
  int64_t pending_skip = 0;
  while (!done()) {
    int err = avcodec_receive_frame(codec_.get(), frame.get());
    if (err == AVERROR(EAGAIN) && !flushing) {
      err = av_read_frame(input_->format(), packet.get());
      if (err < 0) {
        avcodec_send_packet(codec_.get(), nullptr);
        flushing = true;
      } else {
        if (packet->stream_index == stream_index_) avcodec_send_packet(codec_.get(), packet.get());  // bad packets are skipped
        av_packet_unref(packet.get());
      }
      continue;
    }
    if (err < 0) break;  // end of stream (or an undecodable tail)
    int skip = 0;  // input samples to drop so that output samples fall on the rate's grid
    if (!resampler) {
      resampler = make_resampler(*frame);
      const int64_t pts = frame->best_effort_timestamp != AV_NOPTS_VALUE ? frame->best_effort_timestamp : origin;
      const int64_t input_sample = std::llround(static_cast<double>(pts - origin) * time_base * frame->sample_rate);
      // input sample s lies on the output grid when s * R_out / R_in is an integer, i.e. s a multiple of `period`;
      // starting there keeps a window decoded after a seek in phase with a decode from the start
      const int64_t period = frame->sample_rate / std::gcd<int64_t>(frame->sample_rate, sample_rate_);
      pending_skip = ((period - input_sample % period) % period + period) % period;
      base = (input_sample + pending_skip) / period * (sample_rate_ / std::gcd<int64_t>(frame->sample_rate, sample_rate_));
    }
    skip = static_cast<int>(std::min<int64_t>(pending_skip, frame->nb_samples));
    pending_skip -= skip;
    if (skip < frame->nb_samples) {
      const auto format = static_cast<AVSampleFormat>(frame->format);
      const int bytes = av_get_bytes_per_sample(format);
      const bool planar = av_sample_fmt_is_planar(format);
      const int planes_in = planar ? frame->ch_layout.nb_channels : 1;
      std::vector<const uint8_t*> in(planes_in);
      for (int c = 0; c < planes_in; ++c)
        in[c] = frame->extended_data[c] + static_cast<size_t>(skip) * bytes * (planar ? 1 : frame->ch_layout.nb_channels);
      append(in.data(), frame->nb_samples - skip);
    }
    av_frame_unref(frame.get());
  }
  if (resampler && !done()) append(nullptr, 0);  // the resampler's buffered tail
  at_start_ = false;
  // decoding ran to wherever it stopped: the next request seeks afresh
  avcodec_flush_buffers(codec_.get());

  AudioBatch batch;
  batch.channels = channels_;
  batch.sample_rate = sample_rate_;
  const int64_t available = base < 0 ? 0 : static_cast<int64_t>(planes[0].size());
  const int64_t lo = base < 0 ? 0 : std::clamp<int64_t>(first - base, 0, available);
  const int64_t hi = base < 0 ? 0 : std::clamp<int64_t>(stop - base, lo, available);
  batch.first_sample = base < 0 ? first : base + lo;
  batch.num_samples = hi - lo;
  batch.data = allocate_aligned(sizeof(float) * channels_ * batch.num_samples);
  auto* out = reinterpret_cast<float*>(batch.data.get());
  for (int c = 0; c < channels_; ++c)
    std::memcpy(out + c * batch.num_samples, planes[c].data() + lo, sizeof(float) * batch.num_samples);
  return batch;
}

}  // namespace pyvideo::decode
