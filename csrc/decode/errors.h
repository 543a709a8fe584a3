// Exceptions thrown by the decoder. The Python bindings map them to Python exception types:
// DecodeError -> pyvideo.data.VideoDecodeError (a RuntimeError), std::invalid_argument -> ValueError,
// std::out_of_range -> IndexError.
#pragma once

#include <stdexcept>
#include <string>

namespace pyvideo::decode {

// The media could not be opened or decoded (missing, not a video, corrupt, unsupported codec).
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace pyvideo::decode
