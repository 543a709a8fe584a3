// RAII owners for FFmpeg objects and small helpers shared by the decoder, encoder and image reader.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>

namespace pyvideo::decode {

struct CodecContextDeleter {
  void operator()(AVCodecContext* ctx) const { avcodec_free_context(&ctx); }
};
struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct PacketDeleter {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct SwsDeleter {
  void operator()(SwsContext* ctx) const { sws_freeContext(ctx); }
};
struct SwrDeleter {
  void operator()(SwrContext* ctx) const { swr_free(&ctx); }
};

using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;

FramePtr make_frame();
PacketPtr make_packet();

// FFmpeg's text for an AVERROR code.
std::string av_error_text(int error_code);

// Buffers from av_malloc are aligned for FFmpeg's SIMD code; they are handed to Python with this deleter.
struct AvFreeDeleter {
  void operator()(void* ptr) const { av_free(ptr); }
};
using AlignedBuffer = std::unique_ptr<uint8_t[], AvFreeDeleter>;
AlignedBuffer allocate_aligned(size_t num_bytes);

// Keep FFmpeg quiet on stderr (errors reach the user as exceptions instead); called once per process.
void quiet_ffmpeg_logging();

}  // namespace pyvideo::decode
