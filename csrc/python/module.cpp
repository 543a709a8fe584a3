#include "module.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace pyvideo::python {
namespace {

std::vector<std::pair<std::string, BindingInit>>& registry() {
  static std::vector<std::pair<std::string, BindingInit>> groups;
  return groups;
}

}  // namespace

bool register_bindings(const char* name, BindingInit init) {
  registry().emplace_back(name, init);
  return true;
}

}  // namespace pyvideo::python

PYBIND11_MODULE(_C, m) {
  m.doc() = "pyvideo native layer (libvideo) bindings";
  auto groups = pyvideo::python::registry();
  // Static-initialisation order across files is unspecified; sort so the module is built the same way every time.
  std::sort(groups.begin(), groups.end());
  for (const auto& [name, init] : groups) init(m);
}
