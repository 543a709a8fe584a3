// Where media bytes come from (a file path or a buffer in memory) and an opened libavformat demuxer over them.
#pragma once

#include <memory>
#include <string>

#include "ffmpeg_util.h"

namespace pyvideo::decode {

// A path or an in-memory copy of a file. Cheap to copy; every reader opens its own demuxer from it,
// so a video reader and an audio reader (or a forked worker) never share a file position.
class MediaSource {
 public:
  static MediaSource from_path(std::string path);
  static MediaSource from_bytes(std::string bytes, std::string name = "<bytes>");

  const std::string& name() const { return name_; }
  bool in_memory() const { return bytes_ != nullptr; }
  const std::string& path() const { return name_; }
  std::shared_ptr<const std::string> bytes() const { return bytes_; }

 private:
  std::string name_;
  std::shared_ptr<const std::string> bytes_;
};

// An opened demuxer (AVFormatContext) with stream information probed. Not copyable.
class InputFile {
 public:
  explicit InputFile(const MediaSource& source);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  AVFormatContext* format() const { return format_; }
  const std::string& name() const { return name_; }

 private:
  struct MemoryReader;
  void open_memory(const MediaSource& source);
  void release();

  std::string name_;
  AVFormatContext* format_ = nullptr;
  AVIOContext* avio_ = nullptr;
  std::unique_ptr<MemoryReader> memory_;
};

}  // namespace pyvideo::decode
