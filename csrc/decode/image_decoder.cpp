#include "image_decoder.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "errors.h"

namespace pyvideo::decode {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw DecodeError("cannot open image " + path + ": no such file or not readable");
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw DecodeError("cannot decode image " + path + ": the file is empty");
  return bytes;
}

AVCodecID image_codec(const std::string& bytes, const std::string& path) {
  static const unsigned char kJpeg[] = {0xFF, 0xD8, 0xFF};
  static const unsigned char kPng[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (bytes.size() >= sizeof(kJpeg) && std::memcmp(bytes.data(), kJpeg, sizeof(kJpeg)) == 0) return AV_CODEC_ID_MJPEG;
  if (bytes.size() >= sizeof(kPng) && std::memcmp(bytes.data(), kPng, sizeof(kPng)) == 0) return AV_CODEC_ID_PNG;
  throw DecodeError("cannot decode image " + path + ": not a JPEG or PNG file");
}

// Decodes one image file into an owned frame.
FramePtr decode_image(const std::string& path) {
  const std::string bytes = read_file(path);
  const AVCodec* decoder = avcodec_find_decoder(image_codec(bytes, path));
  if (!decoder) throw DecodeError("cannot decode image " + path + ": FFmpeg has no decoder for it");
  CodecContextPtr codec(avcodec_alloc_context3(decoder));
  if (!codec) throw std::bad_alloc();
  codec->thread_count = 1;
  int err = avcodec_open2(codec.get(), decoder, nullptr);
  if (err < 0) throw DecodeError("cannot decode image " + path + ": " + av_error_text(err));
  PacketPtr packet = make_packet();
  // FFmpeg's parsers read a little past the end: give the packet a padded copy
  err = av_new_packet(packet.get(), static_cast<int>(bytes.size()));
  if (err < 0) throw std::bad_alloc();
  std::memcpy(packet->data, bytes.data(), bytes.size());
  FramePtr frame = make_frame();
  err = avcodec_send_packet(codec.get(), packet.get());
  if (err >= 0) {
    avcodec_send_packet(codec.get(), nullptr);
    err = avcodec_receive_frame(codec.get(), frame.get());
  }
  if (err < 0) throw DecodeError("cannot decode image " + path + " (corrupt?): " + av_error_text(err));
  return frame;
}

}  // namespace

FrameBatch decode_image_files(const std::vector<std::string>& paths, int num_threads, const ResizeSpec& resize,
                              Interpolation interpolation) {
  quiet_ffmpeg_logging();
  if (num_threads < 0) throw std::invalid_argument("num_threads must be >= 0");
  FrameBatch batch;
  batch.num_frames = static_cast<int64_t>(paths.size());
  if (paths.empty()) {
    batch.data = allocate_aligned(0);
    return batch;
  }
  FramePtr first = decode_image(paths[0]);
  resolve_output_size(resize, first->width, first->height, &batch.width, &batch.height);
  const bool fixed_size = resize.width > 0 || resize.short_side > 0;
  const size_t frame_bytes = static_cast<size_t>(batch.width) * batch.height * 3;
  batch.data = allocate_aligned(frame_bytes * paths.size());
  for (size_t i = 0; i < paths.size(); ++i) batch.indices.push_back(static_cast<int64_t>(i));

  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    FrameConverter converter(batch.width, batch.height, interpolation);
    for (size_t i = next++; i < paths.size(); i = next++) {
      try {
        FramePtr frame = i == 0 ? nullptr : decode_image(paths[i]);
        const AVFrame& image = i == 0 ? *first : *frame;
        if (!fixed_size && (image.width != first->width || image.height != first->height))
          throw DecodeError("image " + paths[i] + " is " + std::to_string(image.width) + "x" +
                            std::to_string(image.height) + ", unlike " + paths[0] + " (" + std::to_string(first->width) +
                            "x" + std::to_string(first->height) + "); pass a resize to combine them");
        converter.convert(image, batch.data.get() + i * frame_bytes);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = paths.size();
      }
    }
  };
  const size_t threads = std::min<size_t>(paths.size(), num_threads > 0 ? num_threads : default_decoder_threads());
  std::vector<std::thread> workers;
  for (size_t t = 1; t < threads; ++t) workers.emplace_back(work);
  work();
  for (auto& worker : workers) worker.join();
  if (failure) std::rethrow_exception(failure);
  return batch;
}

}  // namespace pyvideo::decode
