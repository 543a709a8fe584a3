#include "tensor.h"

#include <algorithm>
#include <stdexcept>

#include "dlpack_abi.h"

namespace py = pybind11;

namespace pyvideo::python {
namespace {

constexpr const char* kCapsuleName = "dltensor";

dlpack::DataType to_dl(DType d) {
  switch (d) {
    case DType::uint8: return {dlpack::kUInt, 8, 1};
    case DType::int8: return {dlpack::kInt, 8, 1};
    case DType::int32: return {dlpack::kInt, 32, 1};
    case DType::float32: return {dlpack::kFloat, 32, 1};
  }
  return {dlpack::kFloat, 32, 1};
}

std::string describe(const dlpack::DataType& t) {
  const char* kind = t.code == dlpack::kFloat ? "float" : t.code == dlpack::kUInt ? "uint" : t.code == dlpack::kInt ? "int" : "other";
  return std::string(kind) + std::to_string(t.bits) + (t.lanes != 1 ? "x" + std::to_string(t.lanes) : "");
}


struct Owned {
  dlpack::ManagedTensor managed{};
  std::shared_ptr<void> owner;
  std::vector<int64_t> shape;
};

void delete_owned(dlpack::ManagedTensor* self) { delete static_cast<Owned*>(self->manager_ctx); }

// Runs when the capsule object dies; if nobody adopted the tensor, we still own it.
void capsule_destructor(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, kCapsuleName)) {
    auto* managed = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
    if (managed && managed->deleter) managed->deleter(managed);
  }
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::uint8: return "uint8";
    case DType::int8: return "int8";
    case DType::int32: return "int32";
    case DType::float32: return "float32";
  }
  return "unknown";
}

int64_t TensorArg::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TensorArg tensor_arg(py::handle obj, const char* name, DType dtype, int ndim) {
  const std::string arg = std::string("argument '") + name + "'";
  TensorArg out;
  // A capsule is taken as is (torch.utils.dlpack.to_dlpack makes one ~10x faster than Tensor.__dlpack__, which
  // matters for ops called ~100 times per clip); it is only read, never consumed, like __dlpack__'s.
  if (PyCapsule_CheckExact(obj.ptr())) {
    out.capsule = py::reinterpret_borrow<py::object>(obj);
    if (!PyCapsule_IsValid(out.capsule.ptr(), kCapsuleName))
      throw std::invalid_argument(arg + " is a capsule but not an unused DLPack tensor capsule");
  } else {
    if (!py::hasattr(obj, "__dlpack__"))
      throw std::invalid_argument(arg + " must be a tensor (an object supporting __dlpack__), got " +
                                  std::string(py::str(py::type::of(obj).attr("__name__"))));
    out.capsule = obj.attr("__dlpack__")();
    if (!PyCapsule_IsValid(out.capsule.ptr(), kCapsuleName))
      throw std::invalid_argument(arg + ": __dlpack__ did not return a DLPack capsule");
  }
  auto* managed = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(out.capsule.ptr(), kCapsuleName));
  const dlpack::Tensor& t = managed->dl_tensor;
  if (t.device.device_type != dlpack::kCPU)
    throw std::invalid_argument(arg + " must be on the CPU (DLPack device type " + std::to_string(t.device.device_type) + ")");
  const auto want = to_dl(dtype);
  if (t.dtype.code != want.code || t.dtype.bits != want.bits || t.dtype.lanes != want.lanes)
    throw std::invalid_argument(arg + " must have dtype " + dtype_name(dtype) + ", got " + describe(t.dtype));
  if (ndim >= 0 && t.ndim != ndim)
    throw std::invalid_argument(arg + " must have " + std::to_string(ndim) + " dimensions, got " + std::to_string(t.ndim));
  out.shape.assign(t.shape, t.shape + t.ndim);
  // An empty tensor holds nothing to read, and torch calls it contiguous whatever its strides (.contiguous() returns
  // an empty permuted view as it is), so only non-empty ones are checked.
  const bool empty = std::find(out.shape.begin(), out.shape.end(), int64_t{0}) != out.shape.end();
  if (t.strides && !empty) {
    int64_t expected = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      if (t.shape[i] != 1 && t.strides[i] != expected)
        throw std::invalid_argument(arg + " must be C-contiguous (call .contiguous() or use the documented layout)");
      expected *= t.shape[i];
    }
  }
  out.dtype = dtype;
  out.data = static_cast<char*>(t.data) + t.byte_offset;
  return out;
}

TensorArg optional_tensor_arg(py::handle obj, const char* name, DType dtype, int ndim) {
  if (obj.is_none()) return {};
  return tensor_arg(obj, name, dtype, ndim);
}

py::capsule make_capsule(std::shared_ptr<void> owner, void* data, std::vector<int64_t> shape, DType dtype) {
  auto* owned = new Owned;
  owned->owner = std::move(owner);
  owned->shape = std::move(shape);
  auto& t = owned->managed.dl_tensor;
  t.data = data;
  t.device = {dlpack::kCPU, 0};
  t.ndim = static_cast<int32_t>(owned->shape.size());
  t.dtype = to_dl(dtype);
  t.shape = owned->shape.data();
  t.strides = nullptr;
  t.byte_offset = 0;
  owned->managed.manager_ctx = owned;
  owned->managed.deleter = delete_owned;
  PyObject* capsule = PyCapsule_New(&owned->managed, kCapsuleName, capsule_destructor);
  if (!capsule) {
    delete owned;
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(capsule);
}

}  // namespace pyvideo::python
