#include "media_input.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "errors.h"

namespace pyvideo::decode {

MediaSource MediaSource::from_path(std::string path) {
  MediaSource source;
  source.name_ = std::move(path);
  return source;
}

MediaSource MediaSource::from_bytes(std::string bytes, std::string name) {
  MediaSource source;
  source.name_ = std::move(name);
  source.bytes_ = std::make_shared<const std::string>(std::move(bytes));
  return source;
}

// Serves AVIO reads and seeks from a shared, immutable byte buffer.
struct InputFile::MemoryReader {
  std::shared_ptr<const std::string> bytes;
  int64_t position = 0;

  static int read(void* opaque, uint8_t* out, int size) {
    auto* self = static_cast<MemoryReader*>(opaque);
    const int64_t available = static_cast<int64_t>(self->bytes->size()) - self->position;
    if (available <= 0) return AVERROR_EOF;
    const int count = static_cast<int>(std::min<int64_t>(available, size));
    std::memcpy(out, self->bytes->data() + self->position, count);
    self->position += count;
    return count;
  }

  static int64_t seek(void* opaque, int64_t offset, int whence) {
    auto* self = static_cast<MemoryReader*>(opaque);
    const auto size = static_cast<int64_t>(self->bytes->size());
    switch (whence & ~AVSEEK_FORCE) {
      case AVSEEK_SIZE: return size;
      case SEEK_SET: break;
      case SEEK_CUR: offset += self->position; break;
      case SEEK_END: offset += size; break;
      default: return AVERROR(EINVAL);
    }
    if (offset < 0 || offset > size) return AVERROR(EINVAL);
    self->position = offset;
    return offset;
  }
};

InputFile::InputFile(const MediaSource& source) : name_(source.name()) {
  quiet_ffmpeg_logging();
  if (source.in_memory()) {
    if (source.bytes()->empty()) throw DecodeError("cannot open " + name_ + ": the buffer is empty");
    open_memory(source);
  } else {
    struct stat info {};
    if (stat(name_.c_str(), &info) != 0) throw DecodeError("cannot open " + name_ + ": no such file");
    if (S_ISDIR(info.st_mode)) throw DecodeError("cannot open " + name_ + ": it is a directory, not a video file");
    if (info.st_size == 0) throw DecodeError("cannot open " + name_ + ": the file is empty");
  }
  int err = avformat_open_input(&format_, source.in_memory() ? nullptr : name_.c_str(), nullptr, nullptr);
  if (err < 0) {
    format_ = nullptr;  // avformat_open_input frees the context on failure
    release();
    throw DecodeError("cannot open " + name_ + " as a media file: " + av_error_text(err));
  }
  err = avformat_find_stream_info(format_, nullptr);
  if (err < 0) {
    release();
    throw DecodeError("cannot read stream information from " + name_ + ": " + av_error_text(err));
  }
}

void InputFile::open_memory(const MediaSource& source) {
  constexpr int kBufferSize = 64 * 1024;
  memory_ = std::make_unique<MemoryReader>();
  memory_->bytes = source.bytes();
  auto* buffer = static_cast<uint8_t*>(av_malloc(kBufferSize));
  format_ = avformat_alloc_context();
  if (!buffer || !format_) {
    av_free(buffer);
    avformat_free_context(format_);
    throw std::bad_alloc();
  }
  avio_ = avio_alloc_context(buffer, kBufferSize, 0, memory_.get(), &MemoryReader::read, nullptr, &MemoryReader::seek);
  if (!avio_) {
    av_free(buffer);
    avformat_free_context(format_);
    throw std::bad_alloc();
  }
  format_->pb = avio_;
  format_->flags |= AVFMT_FLAG_CUSTOM_IO;
}

InputFile::~InputFile() { release(); }

void InputFile::release() {
  if (format_) avformat_close_input(&format_);
  if (avio_) {
    av_freep(&avio_->buffer);
    avio_context_free(&avio_);
  }
}

}  // namespace pyvideo::decode
