// The C++ decoder on its own (also run under ASan/UBSan): random access equals sequential decoding, range and
// time semantics, error types, and a mutation run over corrupted copies of a real video held in memory.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "csrc/decode/audio_decoder.h"
#include "csrc/decode/errors.h"
#include "csrc/decode/video_decoder.h"

using namespace pyvideo::decode;

namespace {

const char* kVideo = "../shared/data/videos/mmaction2_tests_data_test.mp4";
const char* kAvi = "../shared/data/videos/mmaction2_tests_data_test.avi";

std::string read_bytes(const char* path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

bool same_frame(const FrameBatch& a, int64_t i, const FrameBatch& b, int64_t j) {
  const size_t bytes = static_cast<size_t>(a.width) * a.height * 3;
  return std::memcmp(a.data.get() + i * bytes, b.data.get() + j * bytes, bytes) == 0;
}

void random_access_equals_sequential() {
  VideoDecoder decoder(MediaSource::from_path(kVideo));
  const int64_t n = decoder.index().num_frames();
  CHECK(n == 300);
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  const FrameBatch sequential = decoder.frames_at(all);
  std::mt19937 rng(7);
  for (int round = 0; round < 4; ++round) {
    std::vector<int64_t> picks;
    for (int k = 0; k < 6; ++k) picks.push_back(static_cast<int64_t>(rng() % n));
    const FrameBatch got = decoder.frames_at(picks);
    for (size_t k = 0; k < picks.size(); ++k) CHECK(same_frame(got, k, sequential, picks[k]));
  }
}

void ranges_and_times() {
  VideoDecoder decoder(MediaSource::from_path(kVideo));
  const FrameBatch clip = decoder.frames_in_range(1.0, 2.0);  // 30 fps: frames 30..59
  CHECK(clip.num_frames == 30);
  CHECK(clip.indices.front() == 30 && clip.indices.back() == 59);
  CHECK_NEAR(clip.seconds.front(), 1.0, 1e-9);
  const FrameBatch at = decoder.frames_at_times({0.0, 1.0 / 30 + 1e-4, 9.99});
  CHECK(at.indices == (std::vector<int64_t>{0, 1, 299}));
  CHECK(decoder.frames_in_range(3.0, 3.0).num_frames == 0);
  CHECK_THROWS(decoder.frames_in_range(2.0, 1.0), std::invalid_argument);
  CHECK_THROWS(decoder.frames_in_range(-1.0, 1.0), std::invalid_argument);
  CHECK_THROWS(decoder.frames_at({300}), std::out_of_range);
  CHECK_THROWS(decoder.frames_at_times({10.0}), std::out_of_range);
  CHECK_THROWS(VideoDecoder(MediaSource::from_path("no/such/file.mp4")), DecodeError);
  CHECK_THROWS(VideoDecoder(MediaSource::from_bytes("definitely not a video")), DecodeError);
}

void resize_and_audio() {
  VideoDecoderOptions options;
  options.resize.short_side = 128;
  VideoDecoder decoder(MediaSource::from_path(kVideo), options);
  CHECK(decoder.output_height() == 128 && decoder.output_width() == 170);  // 340x256 -> floor(340*128/256)
  CHECK(decoder.frames_at({5}).width == 170);

  AudioDecoderOptions audio_options;
  audio_options.sample_rate = 8000;
  AudioDecoder audio(MediaSource::from_path(kAvi), audio_options);
  const AudioBatch window = audio.samples_in_range(1.0, 1.5);
  CHECK(window.channels == 1 && window.num_samples == 4000 && window.first_sample == 8000);
  const AudioBatch again = audio.samples_in_range(1.0, 1.5);
  CHECK(std::memcmp(window.data.get(), again.data.get(), 4000 * sizeof(float)) == 0);
}

// Corrupted copies must give frames or a DecodeError / std::invalid_argument / std::out_of_range.
void mutation_run() {
  const std::string original = read_bytes(kVideo);
  std::mt19937 rng(42);
  int cases = 0;
  for (int round = 0; round < 20; ++round) {
    std::string data = original;
    if (round % 3 == 0) {
      data.resize(rng() % data.size());
    } else {
      for (int k = 0; k < 40; ++k) data[rng() % data.size()] = static_cast<char>(rng());
    }
    try {
      VideoDecoder decoder(MediaSource::from_bytes(data, "mutated"));
      if (decoder.has_video() && decoder.index().num_frames() > 0) {
        const int64_t n = decoder.index().num_frames();
        decoder.frames_at({0, n - 1});
      }
    } catch (const DecodeError&) {
    } catch (const std::invalid_argument&) {
    } catch (const std::out_of_range&) {
    }
    ++cases;
  }
  CHECK(cases == 20);
}

}  // namespace

int main() {
  if (!std::ifstream(kVideo)) {
    std::printf("test_decode: %s not found, skipping\n", kVideo);
    return 0;
  }
  random_access_equals_sequential();
  ranges_and_times();
  resize_and_audio();
  mutation_run();
  return check::finish("test_decode");
}
