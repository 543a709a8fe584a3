// Registration of binding groups into the extension module pyvideo._C.
//
// Each csrc/python/*.cpp file adds its functions with
//     PYVIDEO_BINDINGS(group_name) { m.def(...); }
// and module.cpp runs every registered group when Python imports pyvideo._C. Files stay independent of each other.
#pragma once
#include <pybind11/pybind11.h>

namespace pyvideo::python {

using BindingInit = void (*)(pybind11::module_&);
bool register_bindings(const char* name, BindingInit init);

}  // namespace pyvideo::python

#define PYVIDEO_BINDINGS(name)                                                                          \
  static void pyvideo_bind_##name(pybind11::module_& m);                                                \
  [[maybe_unused]] static const bool pyvideo_registered_##name =                                        \
      ::pyvideo::python::register_bindings(#name, &pyvideo_bind_##name);                               \
  static void pyvideo_bind_##name(pybind11::module_& m)
