// Model-file helpers shared by the C++ tests of native programs: whole-file reads and writes (to corrupt or truncate
// a saved program), and whether loading fails with a given message.
#pragma once
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "../../csrc/runtime/program.h"

inline std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
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
