// The kernel dispatch table: one function pointer per kernel, filled once from the CPU's features.
//
// Levels are ordered within an architecture: scalar < avx2 < avx512 on x86-64, scalar < neon on ARM64.
// Finer features (VNNI, dotprod, AMX) pick the int8 entries when the table is filled; PYVIDEO_VNNI=0 (read at every
// fill) leaves them out, so the kernels of CPUs without a byte dot-product instruction can be run and timed anywhere.
// The table is filled on first use from the environment variable PYVIDEO_ISA (scalar|avx2|avx512|neon, or unset
// for the best level this CPU supports). select_isa() refills it; it exists for tests and benchmarks.
#pragma once
#include <string>
#include <vector>

#include "conv3d/conv3d.h"
#include "dwconv3d/dwconv3d.h"
#include "int8/qconv3d.h"
#include "int8/qlinear.h"
#include "int8/quantize.h"
#include "layout/channels_last.h"

namespace pyvideo::kernels {

enum class Isa { scalar, avx2, avx512, neon };

const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // throws std::invalid_argument naming the valid choices

std::vector<Isa> compiled_isas();   // levels built into this library, for this architecture
std::vector<Isa> supported_isas();  // compiled levels the running CPU can execute
Isa best_isa();                     // the highest supported level

struct KernelTable {
  Isa isa = Isa::scalar;
  DwConv3dF32Fn dwconv3d_f32 = nullptr;
  Conv3dF32Fn conv3d_f32 = nullptr;
  // The same fp32 kernels' entries for fused steps: output rows into a rows-only buffer, depthwise over row pointers.
  Conv3dF32RowsFn conv3d_f32_rows = nullptr;
  DwConv3dF32LinesFn dwconv3d_f32_lines = nullptr;
  // int8: the dense conv uses the best dot-product instruction the CPU has (AVX512-VNNI at the avx512 level, else
  // AVX-VNNI; ARM dotprod), else the level's exact emulation of it (qconv3d_avx2, _avx512, _neon; scalar: the
  // reference); at the avx512 level with AMX-INT8 (and PYVIDEO_AMX not "0", read whenever the table is filled) the
  // pointwise convs where AMX pays go to AMX tiles, the rest to AVX512-VNNI. The depthwise conv uses the same
  // dot-product instruction, else the float-accumulating variant of the level (ARMv8.0 NEON: the dot emulated).
  // PYVIDEO_VNNI=0 leaves every byte dot and AMX out.
  QConv3dFn qconv3d = nullptr;
  const char* qconv3d_name = "scalar";
  QDwConv3dFn qdwconv3d = nullptr;
  QScaleFn qscale = nullptr;  // the level's float vectors (no integer dot products involved)
  QChannelSumsFn qchannel_sums = nullptr;  // likewise
  // Whether the int8 squeeze-excitation's apply pass should go by lookup table (qscale_table, qchannel_lookup) on
  // large volumes with a swish or sigmoid: where the level's vector exp is slow per element (scalar, NEON's 4 lanes,
  // AVX2's 8: 0.84 -> 0.41 ms on X3D-XS's 40x40 SE on a Zen 1 core), not with AVX-512's 16 lanes (the table measured
  // no faster there, twice: docs/notes/native_kernels.md).
  bool qscale_by_table = true;
  // float32 -> int8 span quantization and its range pass (the runtime's quantize and dynamic_quantize steps)
  QuantizeF32Fn quantize_f32 = nullptr;
  RangeF32Fn range_f32 = nullptr;
  ChannelsLastRowFn channels_last_row = nullptr;  // [C, W] planes' rows -> [W, C]
  QLinearDotFn qlinear_dot = nullptr;  // the int8 Linear step's dot products
};

// The active table. The first call fills it from PYVIDEO_ISA; an invalid or unsupported value throws
// std::invalid_argument (and every later call throws the same error until select_isa() succeeds).
const KernelTable& kernel_table();

// Refill the table for `isa`; throws std::invalid_argument if that level is not compiled in or the CPU lacks it.
void select_isa(Isa isa);

}  // namespace pyvideo::kernels
