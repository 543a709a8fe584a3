// Zero-copy tensor interop through DLPack (https://dmlc.github.io/dlpack/latest/).
//
// Into native code: tensor_arg() asks the Python object for __dlpack__() (torch tensors, NumPy arrays, ...), or takes
// a DLPack capsule passed directly (torch.utils.dlpack.to_dlpack: much cheaper per call), and reads the DLTensor in place: no copy, the native side reads and writes the caller's storage. The capsule is kept
// alive for the duration of the call and is never consumed, so the producer keeps ownership.
// Out of native code: make_capsule() wraps a native buffer in a DLPack capsule that torch.from_dlpack() adopts
// without copying; the buffer is freed when the tensor that adopted it dies.
//
// Native functions take C-contiguous CPU tensors of one dtype; anything else is a ValueError naming the argument.
// (The Python layer decides where a layout change is needed and documents the copy.)
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pyvideo::python {

enum class DType { uint8, int8, int32, float32 };

const char* dtype_name(DType dtype);

struct TensorArg {
  void* data = nullptr;
  DType dtype = DType::float32;
  std::vector<int64_t> shape;
  pybind11::object capsule;  // keeps the producer's buffer alive while we use it

  int64_t numel() const;
  template <class T>
  T* ptr() const { return static_cast<T*>(data); }
};

// Reads `obj` (anything with __dlpack__, or an unused DLPack capsule) as a C-contiguous CPU tensor of `dtype` with `ndim` dimensions
// (ndim < 0: any). Throws std::invalid_argument mentioning `name` otherwise.
TensorArg tensor_arg(pybind11::handle obj, const char* name, DType dtype, int ndim = -1);

// Same, but None gives an empty TensorArg (data == nullptr).
TensorArg optional_tensor_arg(pybind11::handle obj, const char* name, DType dtype, int ndim = -1);

// A DLPack capsule over `data` (C-contiguous, `shape`), owned by `owner`.
pybind11::capsule make_capsule(std::shared_ptr<void> owner, void* data, std::vector<int64_t> shape, DType dtype);

}  // namespace pyvideo::python
