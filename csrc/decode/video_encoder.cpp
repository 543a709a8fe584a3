#include "video_encoder.h"

#include <cstring>
#include <stdexcept>

#include "errors.h"
#include "ffmpeg_util.h"

namespace pyvideo::decode {

namespace {

struct OutputContextDeleter {
  void operator()(AVFormatContext* format) const {
    if (format->pb && !(format->oformat->flags & AVFMT_NOFILE)) avio_closep(&format->pb);
    avformat_free_context(format);
  }
};
using OutputContextPtr = std::unique_ptr<AVFormatContext, OutputContextDeleter>;

const AVCodec* find_encoder(const std::string& name) {
  if (const AVCodec* encoder = avcodec_find_encoder_by_name(name.c_str())) return encoder;
  if (const AVCodecDescriptor* descriptor = avcodec_descriptor_get_by_name(name.c_str()))
    if (const AVCodec* encoder = avcodec_find_encoder(descriptor->id)) return encoder;
  throw std::invalid_argument("unknown or unavailable video codec '" + name + "'");
}

AVPixelFormat choose_pixel_format(const AVCodec* encoder, const std::string& requested) {
  if (!requested.empty()) {
    const AVPixelFormat format = av_get_pix_fmt(requested.c_str());
    if (format == AV_PIX_FMT_NONE) throw std::invalid_argument("unknown pixel format '" + requested + "'");
    return format;
  }
  if (!encoder->pix_fmts) return AV_PIX_FMT_YUV420P;
  for (const AVPixelFormat* f = encoder->pix_fmts; *f != AV_PIX_FMT_NONE; ++f)
    if (*f == AV_PIX_FMT_YUV420P) return *f;
  return encoder->pix_fmts[0];
}

void check(int err, const std::string& what, const std::string& path) {
  if (err < 0) throw DecodeError("cannot write " + path + ": " + what + " failed: " + av_error_text(err));
}

// Sends `frame` (nullptr flushes) and writes every packet the encoder returns.
void write_packets(AVCodecContext* codec, const AVFrame* frame, AVFormatContext* format, AVStream* stream,
                   const std::string& path) {
  check(avcodec_send_frame(codec, frame), "encoding", path);
  PacketPtr packet = make_packet();
  while (true) {
    const int err = avcodec_receive_packet(codec, packet.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
    check(err, "encoding", path);
    av_packet_rescale_ts(packet.get(), codec->time_base, stream->time_base);
    packet->stream_index = stream->index;
    check(av_interleaved_write_frame(format, packet.get()), "writing a packet", path);
  }
}

}  // namespace

void encode_video(const std::string& path, const uint8_t* frames, int64_t num_frames, int height, int width,
                  const EncoderOptions& options) {
  quiet_ffmpeg_logging();
  if (num_frames < 1 || height < 1 || width < 1) throw std::invalid_argument("need at least one frame of positive size");
  if (!(options.fps > 0) || options.fps > 1e6) throw std::invalid_argument("fps must be a positive number");
  const AVCodec* encoder = find_encoder(options.codec);
  if (encoder->type != AVMEDIA_TYPE_VIDEO) throw std::invalid_argument("'" + options.codec + "' is not a video codec");
  const int out_width = options.width > 0 ? options.width : width;
  const int out_height = options.height > 0 ? options.height : height;

  AVFormatContext* raw_format = nullptr;
  check(avformat_alloc_output_context2(&raw_format, nullptr, nullptr, path.c_str()), "choosing a container", path);
  OutputContextPtr format(raw_format);
  AVStream* stream = avformat_new_stream(format.get(), nullptr);
  CodecContextPtr codec(avcodec_alloc_context3(encoder));
  if (!stream || !codec) throw std::bad_alloc();
  // mpeg4 limits the time base denominator to 16 bits
  const AVRational rate = av_d2q(options.fps, 65535);
  codec->width = out_width;
  codec->height = out_height;
  codec->pix_fmt = choose_pixel_format(encoder, options.pixel_format);
  codec->time_base = av_inv_q(rate);
  codec->framerate = rate;
  if (options.bit_rate > 0) codec->bit_rate = options.bit_rate;
  if (format->oformat->flags & AVFMT_GLOBALHEADER) codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* codec_options = nullptr;
  for (const auto& [key, value] : options.codec_options) av_dict_set(&codec_options, key.c_str(), value.c_str(), 0);
  const int opened = avcodec_open2(codec.get(), encoder, &codec_options);
  av_dict_free(&codec_options);
  check(opened, std::string("opening the ") + encoder->name + " encoder", path);
  check(avcodec_parameters_from_context(stream->codecpar, codec.get()), "setting stream parameters", path);
  stream->time_base = codec->time_base;
  stream->avg_frame_rate = rate;

  if (!(format->oformat->flags & AVFMT_NOFILE))
    check(avio_open(&format->pb, path.c_str(), AVIO_FLAG_WRITE), "opening the file", path);
  check(avformat_write_header(format.get(), nullptr), "writing the header", path);

  const AVPixelFormat input_format = options.input_is_bgr ? AV_PIX_FMT_BGR24 : AV_PIX_FMT_RGB24;
  SwsPtr sws(sws_getContext(width, height, input_format, out_width, out_height, codec->pix_fmt, SWS_BICUBIC, nullptr,
                            nullptr, nullptr));
  if (!sws) throw std::invalid_argument(std::string("cannot convert RGB to ") + av_get_pix_fmt_name(codec->pix_fmt));
  FramePtr frame = make_frame();
  frame->format = codec->pix_fmt;
  frame->width = out_width;
  frame->height = out_height;
  check(av_frame_get_buffer(frame.get(), 0), "allocating a frame", path);
  // swscale's vector code reads past the end of packed input rows; the caller's tightly packed frames have no
  // padding, so each frame is staged in an FFmpeg-allocated (aligned, zero-padded) RGB frame first. Without this the
  // last rows read whatever follows the caller's buffer and the output differs from run to run.
  FramePtr staging = make_frame();
  staging->format = input_format;
  staging->width = width;
  staging->height = height;
  check(av_frame_get_buffer(staging.get(), 0), "allocating a frame", path);
  for (AVBufferRef* buffer : staging->buf)  // the padding is read but never written: give it a fixed value
    if (buffer) std::memset(buffer->data, 0, buffer->size);
  const int row_bytes = width * 3;
  const size_t frame_bytes = static_cast<size_t>(row_bytes) * height;
  for (int64_t i = 0; i < num_frames; ++i) {
    check(av_frame_make_writable(frame.get()), "allocating a frame", path);
    av_image_copy_plane(staging->data[0], staging->linesize[0], frames + i * frame_bytes, row_bytes, row_bytes, height);
    sws_scale(sws.get(), staging->data, staging->linesize, 0, height, frame->data, frame->linesize);
    frame->pts = i;
    write_packets(codec.get(), frame.get(), format.get(), stream, path);
  }
  write_packets(codec.get(), nullptr, format.get(), stream, path);
  check(av_write_trailer(format.get()), "finishing the file", path);
}

}  // namespace pyvideo::decode
