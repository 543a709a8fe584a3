#include "media_info.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

extern "C" {
#include <libavutil/display.h>
}

namespace pyvideo::decode {

int best_stream(AVFormatContext* format, AVMediaType type) {
  const int index = av_find_best_stream(format, type, -1, -1, nullptr, 0);
  if (index < 0) return -1;
  if (format->streams[index]->disposition & AV_DISPOSITION_ATTACHED_PIC) return -1;  // cover art is not a video
  return index;
}

int64_t stream_origin(const AVStream* stream) {
  return stream->start_time == AV_NOPTS_VALUE ? 0 : stream->start_time;
}

namespace {

// Demuxer index timestamps by byte position: seeking to exactly these lands on the keyframe we indexed.
std::unordered_map<int64_t, int64_t> demuxer_keyframe_timestamps(AVStream* stream) {
  std::unordered_map<int64_t, int64_t> by_position;
  const int count = avformat_index_get_entries_count(stream);
  for (int i = 0; i < count; ++i) {
    const AVIndexEntry* entry = avformat_index_get_entry(stream, i);
    if (entry && (entry->flags & AVINDEX_KEYFRAME)) by_position.emplace(entry->pos, entry->timestamp);
  }
  return by_position;
}

double seconds(int64_t ticks, AVRational time_base) { return static_cast<double>(ticks) * av_q2d(time_base); }

int clockwise_rotation(const AVStream* stream) {
  size_t size = 0;
  const uint8_t* matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (!matrix || size < 9 * sizeof(int32_t)) return 0;
  const double counter_clockwise = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  if (std::isnan(counter_clockwise)) return 0;
  const int degrees = static_cast<int>(std::lround(-counter_clockwise)) % 360;
  return degrees < 0 ? degrees + 360 : degrees;
}

double frame_rate(const AVStream* stream, const FrameIndex* index) {
  if (stream->avg_frame_rate.num > 0 && stream->avg_frame_rate.den > 0) return av_q2d(stream->avg_frame_rate);
  if (stream->r_frame_rate.num > 0 && stream->r_frame_rate.den > 0) return av_q2d(stream->r_frame_rate);
  if (index && index->average_frame_seconds() > 0) return 1.0 / index->average_frame_seconds();
  return 0.0;
}

double stream_duration(const AVStream* stream, const AVFormatContext* format) {
  if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) return seconds(stream->duration, stream->time_base);
  if (format->duration != AV_NOPTS_VALUE && format->duration > 0) return static_cast<double>(format->duration) / AV_TIME_BASE;
  return 0.0;
}

VideoStreamInfo describe_video(AVFormatContext* format, int index, const FrameIndex* frames) {
  const AVStream* stream = format->streams[index];
  const AVCodecParameters* par = stream->codecpar;
  VideoStreamInfo info;
  info.stream_index = index;
  info.codec = avcodec_get_name(par->codec_id);
  const char* pixel_format = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
  info.pixel_format = pixel_format ? pixel_format : "unknown";
  info.width = par->width;
  info.height = par->height;
  info.rotation = clockwise_rotation(stream);
  info.fps = frame_rate(stream, frames);
  info.num_frames = frames ? frames->num_frames() : stream->nb_frames;
  info.duration = stream_duration(stream, format);
  if (frames && frames->num_frames() > 0) info.duration = std::max(info.duration, frames->end_seconds());
  info.start_time = seconds(stream_origin(stream), stream->time_base);
  info.bit_rate = par->bit_rate;
  info.time_base = stream->time_base;
  return info;
}

AudioStreamInfo describe_audio(AVFormatContext* format, int index) {
  const AVStream* stream = format->streams[index];
  const AVCodecParameters* par = stream->codecpar;
  AudioStreamInfo info;
  info.stream_index = index;
  info.codec = avcodec_get_name(par->codec_id);
  const char* sample_format = av_get_sample_fmt_name(static_cast<AVSampleFormat>(par->format));
  info.sample_format = sample_format ? sample_format : "unknown";
  info.sample_rate = par->sample_rate;
  info.channels = par->ch_layout.nb_channels;
  info.duration = stream_duration(stream, format);
  info.start_time = seconds(stream_origin(stream), stream->time_base);
  info.bit_rate = par->bit_rate;
  info.time_base = stream->time_base;
  return info;
}

}  // namespace

FrameIndex scan_frame_index(AVFormatContext* format, int stream_index) {
  AVStream* stream = format->streams[stream_index];
  std::vector<AVDiscard> saved(format->nb_streams);
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    saved[i] = format->streams[i]->discard;
    if (static_cast<int>(i) != stream_index) format->streams[i]->discard = AVDISCARD_ALL;
  }
  std::vector<PacketEntry> packets;
  bool all_have_pts = true;
  PacketPtr packet = make_packet();
  // Any read error ends the scan: a truncated or damaged file is indexed up to the damage.
  while (av_read_frame(format, packet.get()) >= 0) {
    if (packet->stream_index == stream_index && !(packet->flags & AV_PKT_FLAG_DISCARD)) {
      const int64_t dts = packet->dts != AV_NOPTS_VALUE ? packet->dts : packet->pts;
      if (packet->pts == AV_NOPTS_VALUE) all_have_pts = false;
      if (dts != AV_NOPTS_VALUE || packet->pts != AV_NOPTS_VALUE) {
        packets.push_back(PacketEntry{packet->pts, dts, packet->pos, packet->duration,
                                      (packet->flags & AV_PKT_FLAG_KEY) != 0, dts});
      }
    }
    av_packet_unref(packet.get());
  }
  for (unsigned i = 0; i < format->nb_streams; ++i) format->streams[i]->discard = saved[i];

  if (!all_have_pts) {
    for (auto& entry : packets) entry.timestamp = entry.dts;
  }
  const auto demuxer_timestamps = demuxer_keyframe_timestamps(stream);
  for (auto& entry : packets) {
    auto it = demuxer_timestamps.find(entry.byte_position);
    if (entry.keyframe && entry.byte_position >= 0 && it != demuxer_timestamps.end()) entry.seek_timestamp = it->second;
  }
  return FrameIndex(std::move(packets), all_have_pts, stream->time_base, stream_origin(stream));
}

MediaInfo describe_media(AVFormatContext* format, const std::string& name, const FrameIndex* video_index) {
  MediaInfo info;
  info.name = name;
  info.container = format->iformat ? format->iformat->name : "unknown";
  info.bit_rate = format->bit_rate;
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    const AVCodecParameters* par = format->streams[i]->codecpar;
    const char* type = av_get_media_type_string(par->codec_type);
    info.streams.push_back(StreamInfo{static_cast<int>(i), type ? type : "unknown", avcodec_get_name(par->codec_id)});
  }
  const int video = best_stream(format, AVMEDIA_TYPE_VIDEO);
  const int audio = best_stream(format, AVMEDIA_TYPE_AUDIO);
  if (video >= 0) info.video = describe_video(format, video, video_index);
  if (audio >= 0) info.audio = describe_audio(format, audio);
  info.duration = std::max(info.video ? info.video->duration : 0.0, info.audio ? info.audio->duration : 0.0);
  return info;
}

}  // namespace pyvideo::decode
