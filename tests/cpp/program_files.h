// Model-file helpers shared by the C++ tests of native programs: whole-file reads and writes (to corrupt or truncate
// a saved program), and whether loading fails with a given message.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "../../csrc/runtime/program.h"

inline std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

// The model-file format version Program::save writes, and the first with several inputs.
constexpr uint32_t kCurrentVersion = 9, kMultiInputVersion = 7;

inline uint32_t file_version(const std::string& bytes) {
  uint32_t version;
  std::memcpy(&version, bytes.data() + 8, 4);
  return version;
}

// Where a saved program's first step starts: after the magic, version, inputs (version 7: u32 count and i64
// channels each; before: i64 channels) and u32 step count.
inline size_t first_step_offset(const std::string& bytes) {
  if (file_version(bytes) < kMultiInputVersion) return 8 + 4 + 8 + 4;
  uint32_t inputs;
  std::memcpy(&inputs, bytes.data() + 12, 4);
  return 8 + 4 + 4 + 8 * size_t(inputs) + 4;
}

// A current-version file of a one-input program labelled as `version`, with the header that version has (before
// version 7: no input count). Step kinds and fields are left as they are.
inline std::string relabelled(const std::string& bytes, uint32_t version) {
  std::string out = bytes.substr(0, 8);
  out.append(reinterpret_cast<const char*>(&version), 4);
  const size_t skip = version < kMultiInputVersion && file_version(bytes) >= kMultiInputVersion ? 4 : 0;
  out.append(bytes, 12 + skip, std::string::npos);
  return out;
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

// Program::load(path) throws std::invalid_argument whose message contains `message` (others are printed).
inline bool load_fails_with(const std::string& path, const std::string& message) {
  try {
    pyvideo::runtime::Program::load(path);
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find(message) != std::string::npos) return true;
    std::fprintf(stderr, "  unexpected message: %s\n", e.what());
  }
  return false;
}
