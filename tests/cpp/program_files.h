// Helpers shared by the C++ tests of native programs: model files (whole-file reads and writes to corrupt or
// truncate a saved program, whether loading fails with a given message), temporary paths, error checks, random
// inputs and the activations in double precision.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../csrc/runtime/program.h"

// A file under $TMPDIR (else /tmp) named after this process, so test executables run side by side do not collide.
inline std::string temp_path(const char* name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/pyvideo_test_" + std::to_string(long(getpid())) + "_" + name;
}

// f() throws std::invalid_argument.
template <class F>
bool throws(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The activations the kernels fuse, in double precision (the tests' references).
inline double activate(double x, pyvideo::kernels::Activation act) {
  using pyvideo::kernels::Activation;
  switch (act) {
    case Activation::identity: return x;
    case Activation::relu: return std::max(0.0, x);
    case Activation::swish: return x / (1.0 + std::exp(-x));
    case Activation::hswish: return x * std::min(6.0, std::max(0.0, x + 3.0)) / 6.0;
    case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-x));
  }
  return x;
}

inline std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

// The model-file format version Program::save writes, the first with several inputs, the first ending in a CRC-32.
constexpr uint32_t kCurrentVersion = 10, kMultiInputVersion = 7, kChecksumVersion = 10;

inline uint32_t file_version(const std::string& bytes) {
  uint32_t version;
  std::memcpy(&version, bytes.data() + 8, 4);
  return version;
}

// CRC-32 as zlib computes it, bit by bit (the loader uses a table: two ways to the same value).
inline uint32_t crc32_bitwise(const char* data, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= uint8_t(data[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

inline bool has_checksum(const std::string& bytes) {
  return bytes.size() >= 16 && file_version(bytes) >= kChecksumVersion;
}

// A file of the checksummed versions with its last 4 bytes set to the checksum of the rest: bytes patched (or cut)
// to test the loader's own field checks, which a stale checksum would otherwise pre-empt. Others as they are.
inline std::string sealed(std::string bytes) {
  if (has_checksum(bytes)) {
    const uint32_t crc = crc32_bitwise(bytes.data(), bytes.size() - 4);
    std::memcpy(&bytes[bytes.size() - 4], &crc, 4);
  }
  return bytes;
}

// The bytes without the checksum (the layout of the versions before it).
inline std::string unsealed(const std::string& bytes) {
  return has_checksum(bytes) ? bytes.substr(0, bytes.size() - 4) : bytes;
}

// Where a saved program's first step starts: after the magic, version, inputs (version 7: u32 count and i64
// channels each; before: i64 channels) and u32 step count.
inline size_t first_step_offset(const std::string& bytes) {
  if (file_version(bytes) < kMultiInputVersion) return 8 + 4 + 8 + 4;
  uint32_t inputs;
  std::memcpy(&inputs, bytes.data() + 12, 4);
  return 8 + 4 + 4 + 8 * size_t(inputs) + 4;
}

// A current-version file of a one-input program labelled as `version` (older than the checksum), with the header
// that version has (before version 7: no input count) and no checksum. Step kinds and fields are left as they are.
inline std::string relabelled(const std::string& bytes, uint32_t version) {
  const std::string body = unsealed(bytes);
  std::string out = body.substr(0, 8);
  out.append(reinterpret_cast<const char*>(&version), 4);
  const size_t skip = version < kMultiInputVersion && file_version(body) >= kMultiInputVersion ? 4 : 0;
  out.append(body, 12 + skip, std::string::npos);
  return out;
}

// The bytes as they are: corrupt files for the checksum's tests.
inline void write_raw_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

// The bytes sealed() (a patched file of a checksummed version gets a matching checksum), so tests that patch or cut
// a saved file reach the loader's field checks.
inline void write_file(const std::string& path, const std::string& bytes) { write_raw_file(path, sealed(bytes)); }

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

// Every truncation of `bytes` (lengths 0, step, 2 * step, ... below its size), written to `path`, fails to load with
// a message containing `message`.
inline bool every_truncation_refused(const std::string& bytes, const std::string& path, size_t step,
                                     const std::string& message) {
  int refused = 0, cuts = 0;
  for (size_t n = 0; n < bytes.size(); n += step, ++cuts) {
    write_file(path, bytes.substr(0, n));
    refused += load_fails_with(path, message) ? 1 : 0;
  }
  return refused == cuts;
}
