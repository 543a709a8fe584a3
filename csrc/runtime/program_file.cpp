// Program model files.
//
// Layout (all little-endian):
//   "PYVPROG\0"  u32 version (10)  u32 input_count  i64 input_channels[input_count]  u32 step_count
//             (versions 1-6: one input, i64 input_channels only)
//   per step: u32 kind  i32 input  i32 residual  u8 depthwise  i64 kernel[3] stride[3] padding[3]
//             i64 out_channels  i64 hidden  i32 activation  i32 hidden_activation
//             (f32 scale, i32 zero_point) for input, residual and output  u8 has_output_q
//             i32 input_gate  i32 input_activation      (version 2: a conv's fused squeeze-excitation gate; -1 and 0
//                                                        for every other step)
//             arrays, each u64 count then the values: weight, bias, fc0_weight, fc0_bias, fc1_weight, fc1_bias,
//             dequant_scale (f32); qweight (i8); weight_sum, qbias (i32);
//             version 3: out_scales (f32), out_zero_points (i32): an int8 squeeze-excitation's (from version 9 also
//             an int8 conv's) per-channel output quantization (C values each, or both empty: per tensor); empty for
//             every other step
//             version 5: weight_scale (f32): a quantized conv / linear step's per-channel weight scales when its
//             input is dynamic (then `bias` holds its real-valued bias, and dequant_scale / qbias are empty); empty
//             for every other step
//   u32 output_count  (i32 value, u8 layout)[output_count]
//   u32 crc32 of every byte before it (version 10; the CRC-32 of zlib and PNG)
// A step's output value is implied (values are numbered in step order after the inputs, values 0 .. inputs - 1).
// Version 4 adds the avg_pool and quantized_avg_pool step kinds (their window in the geometry fields) and nothing
// else. Version 5 adds the dynamic_quantize step kind (its output is a dynamic value: that needs no field, it follows
// from the step kind) and the weight_scale array. Version 6 adds the max_pool step kind (its window, padding included,
// in the geometry fields) and nothing else. Version 7 adds several inputs (the header's input count and channels) and the
// concat and quantized_concat step kinds (the second input in the residual field; quantized_concat's qparams in the
// input, residual and output fields). Version 8 lets a max_pool step read an int8 value (it then pools the codes and
// outputs int8 in the same qparams; the layout is unchanged). Version 9 lets a quantized_conv step carry per-channel
// output qparams (out_scales / out_zero_points; the layout is unchanged). Version 10 adds the checksum: a flipped bit or
// a cut anywhere in the file (weights included, which no field check can judge) is refused before anything is read.
// Version 1 files (before the squeeze_excitation_gate
// step kind and the input gate fields), version 2 files (before per-channel outputs), version 3 to 8 files are still
// read.
#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "program.h"
#include "program_impl.h"

namespace pyvideo::runtime {

namespace {

constexpr char kMagic[8] = {'P', 'Y', 'V', 'P', 'R', 'O', 'G', '\0'};
constexpr uint32_t kVersion = 10;
constexpr uint32_t kChecksumVersion = 10;  // the first version that ends in a checksum

// CRC-32 (reflected polynomial 0xEDB88320, as zlib's crc32), eight bytes a step ("slicing by 8": table k holds the
// CRC of a byte followed by k zero bytes; little-endian words, as model files are): 5.4-7.5 ms for a 12 MB fp32
// X3D-XS file, where a byte a step took 50 ms, most of that file's 60 ms load (Zen 4, one-off timing).
uint32_t crc32(const char* data, size_t n) {
  static const auto t = [] {
    std::array<std::array<uint32_t, 256>, 8> tables{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      tables[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int k = 1; k < 8; ++k) tables[k][i] = (tables[k - 1][i] >> 8) ^ tables[0][tables[k - 1][i] & 0xFFu];
    return tables;
  }();
  uint32_t c = 0xFFFFFFFFu;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, data + i, 4);
    std::memcpy(&hi, data + i + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][hi & 0xFFu] ^
        t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
  }
  for (; i < n; ++i) c = t[0][(c ^ uint8_t(data[i])) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// The last step kind a file of `version` may hold.
Kind last_kind(uint32_t version) {
  if (version == 1) return Kind::qlinear;
  if (version <= 3) return Kind::squeeze_excitation_gate;
  if (version == 4) return Kind::qavg_pool;
  if (version == 5) return Kind::dynamic_quantize;
  if (version == 6) return Kind::max_pool;
  return kLastKind;
}

static_assert(sizeof(float) == 4, "model files store IEEE float32");

bool little_endian() {
  const uint32_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

class Writer {
 public:
  template <class T>
  void put(T value) {
    const auto* p = reinterpret_cast<const char*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  template <class T, class Allocator>
  void array(const std::vector<T, Allocator>& values) {
    put<uint64_t>(values.size());
    if (values.empty()) return;
    const auto* p = reinterpret_cast<const char*>(values.data());
    bytes_.insert(bytes_.end(), p, p + values.size() * sizeof(T));
  }
  void raw(const char* p, size_t n) { bytes_.insert(bytes_.end(), p, p + n); }
  const std::vector<char>& bytes() const { return bytes_; }

 private:
  std::vector<char> bytes_;
};

class Reader {
 public:
  Reader(std::vector<char> bytes, std::string path) : bytes_(std::move(bytes)), path_(std::move(path)) {}
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  template <class T>
  std::vector<T> array(const char* what) {
    const uint64_t count = get<uint64_t>(what);
    if (count > (bytes_.size() - at_) / sizeof(T)) fail(std::string("truncated ") + what + " array");
    std::vector<T> values(static_cast<size_t>(count));
    if (count) std::memcpy(values.data(), bytes_.data() + at_, size_t(count) * sizeof(T));
    at_ += size_t(count) * sizeof(T);
    return values;
  }
  void expect_magic() {
    need(sizeof(kMagic), "header");
    if (std::memcmp(bytes_.data(), kMagic, sizeof(kMagic)) != 0) fail("not a pyvideo program file (bad magic)");
    at_ += sizeof(kMagic);
  }
  bool at_end() const { return at_ == bytes_.size(); }
  // The file's last 4 bytes against the CRC-32 of all before them; then the reader ends before them.
  void verify_checksum() {
    if (bytes_.size() < at_ + 4) fail("truncated (while reading the checksum)");
    const size_t body = bytes_.size() - 4;
    uint32_t stored;
    std::memcpy(&stored, bytes_.data() + body, 4);
    if (stored != crc32(bytes_.data(), body))
      fail("checksum mismatch: the file is truncated or corrupt (or was changed after it was written)");
    bytes_.resize(body);
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument("program file " + path_ + ": " + why);
  }

 private:
  void need(size_t n, const char* what) const {
    if (bytes_.size() - at_ < n) fail(std::string("truncated (while reading ") + what + ")");
  }
  std::vector<char> bytes_;
  std::string path_;
  size_t at_ = 0;
};

void put_quant(Writer& w, const QuantParams& q) {
  w.put<float>(q.scale);
  w.put<int32_t>(q.zero_point);
}

QuantParams get_quant(Reader& r) {
  QuantParams q;
  q.scale = r.get<float>("scale");
  q.zero_point = r.get<int32_t>("zero point");
  return q;
}

kernels::Activation get_activation(Reader& r) {
  const int32_t code = r.get<int32_t>("activation");
  if (code < 0 || code > int32_t(kernels::Activation::sigmoid)) r.fail("unknown activation code " + std::to_string(code));
  return kernels::Activation(code);
}

}  // namespace

void Program::save(const std::string& path) const {
  if (!little_endian()) throw std::runtime_error("program files are written on little-endian machines only");
  const Impl& p = *impl_;
  if (p.values.empty() || p.outputs.empty()) throw std::invalid_argument("program: nothing to save (no input or outputs)");
  Writer w;
  w.raw(kMagic, sizeof(kMagic));
  w.put<uint32_t>(kVersion);
  w.put<uint32_t>(uint32_t(p.input_channels.size()));
  for (const int64_t channels : p.input_channels) w.put<int64_t>(channels);
  w.put<uint32_t>(uint32_t(p.steps.size()));
  for (const Step& s : p.steps) {
    w.put<uint32_t>(uint32_t(s.kind));
    w.put<int32_t>(s.input);
    w.put<int32_t>(s.kind == Kind::concat || s.kind == Kind::qconcat ? s.second : s.residual);
    w.put<uint8_t>(s.depthwise ? 1 : 0);
    for (const int64_t* dims : {s.g.kernel, s.g.stride, s.g.padding})
      for (int i = 0; i < 3; ++i) w.put<int64_t>(dims[i]);
    w.put<int64_t>(s.out_channels);
    w.put<int64_t>(s.hidden);
    w.put<int32_t>(int32_t(s.act));
    w.put<int32_t>(int32_t(s.hidden_act));
    put_quant(w, s.in);
    put_quant(w, s.residual_q);
    put_quant(w, s.out);
    w.put<uint8_t>(s.has_output_q ? 1 : 0);
    w.put<int32_t>(s.input_gate);
    w.put<int32_t>(int32_t(s.input_act));
    w.array(s.weight);
    for (const auto* a : {&s.bias, &s.fc0_weight, &s.fc0_bias, &s.fc1_weight, &s.fc1_bias, &s.dequant_scale})
      w.array(*a);
    w.array(s.qweight);
    w.array(s.weight_sum);
    w.array(s.qbias);
    w.array(s.out_requant.scales);
    w.array(s.out_requant.integer_zero_points());
    w.array(s.weight_scale);
  }
  w.put<uint32_t>(uint32_t(p.outputs.size()));
  for (size_t i = 0; i < p.outputs.size(); ++i) {
    w.put<int32_t>(p.outputs[i]);
    w.put<uint8_t>(uint8_t(p.layouts[i]));
  }
  w.put<uint32_t>(crc32(w.bytes().data(), w.bytes().size()));
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) throw std::invalid_argument("cannot open " + path + " for writing");
  file.write(w.bytes().data(), std::streamsize(w.bytes().size()));
  if (!file) throw std::runtime_error("failed to write " + path);
}

std::unique_ptr<Program> Program::load(const std::string& path) {
  if (!little_endian()) throw std::runtime_error("program files are read on little-endian machines only");
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::invalid_argument("cannot open program file " + path);
  std::vector<char> bytes;
  try {  // a directory opens, and reading it throws std::ios_base::failure ("Is a directory")
    bytes.assign(std::istreambuf_iterator<char>(file), {});
  } catch (const std::exception& e) {
    throw std::invalid_argument("cannot read program file " + path + ": " + e.what());
  }
  if (file.bad()) throw std::invalid_argument("cannot read program file " + path);
  Reader r(std::move(bytes), path);
  r.expect_magic();
  const uint32_t version = r.get<uint32_t>("version");
  if (version < 1 || version > kVersion)
    r.fail("format version " + std::to_string(version) + " is not supported (this library reads versions 1 to " +
           std::to_string(kVersion) + ")");
  if (version >= kChecksumVersion) r.verify_checksum();
  auto program = std::make_unique<Program>();
  try {
    const uint32_t inputs = version >= 7 ? r.get<uint32_t>("input count") : 1;
    if (inputs < 1 || inputs > 64) r.fail("input count " + std::to_string(inputs) + " is not in [1, 64]");
    for (uint32_t k = 0; k < inputs; ++k) program->add_input(r.get<int64_t>("input channels"));
    const uint32_t steps = r.get<uint32_t>("step count");
    for (uint32_t i = 0; i < steps; ++i) {
      const uint32_t kind = r.get<uint32_t>("step kind");
      if (kind > uint32_t(last_kind(version)))
        r.fail("unknown step kind " + std::to_string(kind) + " for format version " + std::to_string(version));
      const int32_t input = r.get<int32_t>("step input"), residual = r.get<int32_t>("step residual");
      const bool depthwise = r.get<uint8_t>("depthwise flag") != 0;
      ConvGeometry g;
      for (int64_t* dims : {g.kernel, g.stride, g.padding})
        for (int d = 0; d < 3; ++d) dims[d] = r.get<int64_t>("geometry");
      const int64_t out_channels = r.get<int64_t>("output channels"), hidden = r.get<int64_t>("hidden width");
      const kernels::Activation act = get_activation(r), hidden_act = get_activation(r);
      const QuantParams in = get_quant(r), residual_q = get_quant(r), out = get_quant(r);
      const bool has_output_q = r.get<uint8_t>("output quantization flag") != 0;
      int32_t input_gate = -1;
      kernels::Activation input_act = kernels::Activation::identity;
      if (version >= 2) {
        input_gate = r.get<int32_t>("input gate");
        input_act = get_activation(r);
        if (Kind(kind) != Kind::conv && (input_gate != -1 || input_act != kernels::Activation::identity))
          r.fail("step " + std::to_string(i) + " (" + kind_name(Kind(kind)) + ") has an input gate; only convs take one");
      }
      auto weight = r.array<float>("weight"), bias = r.array<float>("bias");
      auto fc0_weight = r.array<float>("fc0 weight"), fc0_bias = r.array<float>("fc0 bias");
      auto fc1_weight = r.array<float>("fc1 weight"), fc1_bias = r.array<float>("fc1 bias");
      auto dequant_scale = r.array<float>("dequant scale");
      auto qweight = r.array<int8_t>("int8 weight");
      auto weight_sum = r.array<int32_t>("weight sums"), qbias = r.array<int32_t>("int32 bias");
      std::vector<float> out_scales;
      std::vector<int32_t> out_zero_points;
      if (version >= 3) {
        out_scales = r.array<float>("per-channel output scales");
        out_zero_points = r.array<int32_t>("per-channel output zero points");
        const bool takes_them = Kind(kind) == Kind::qsqueeze_excitation || (version >= 9 && Kind(kind) == Kind::qconv);
        if (!takes_them && (!out_scales.empty() || !out_zero_points.empty()))
          r.fail("step " + std::to_string(i) + " (" + kind_name(Kind(kind)) + ") has per-channel output quantization; " +
                 (version >= 9 ? "only int8 squeeze-excitation and conv steps take it"
                               : "only int8 squeeze-excitation steps take it before format version 9"));
      }
      std::vector<float> weight_scale;
      if (version >= 5) {
        weight_scale = r.array<float>("weight scales");
        if (Kind(kind) != Kind::qconv && Kind(kind) != Kind::qlinear && !weight_scale.empty())
          r.fail("step " + std::to_string(i) + " (" + kind_name(Kind(kind)) +
                 ") has weight scales; only quantized conv and linear steps take them");
      }
      switch (Kind(kind)) {  // the builders validate every size, id and parameter again
        case Kind::conv:
          program->conv(input, depthwise, g, out_channels, std::move(weight), std::move(bias), residual, act,
                        input_gate, input_act);
          break;
        case Kind::squeeze_excitation:
          program->squeeze_excitation(input, hidden, std::move(fc0_weight), std::move(fc0_bias), std::move(fc1_weight),
                                      std::move(fc1_bias), hidden_act, act);
          break;
        case Kind::squeeze_excitation_gate:
          program->squeeze_excitation_gate(input, hidden, std::move(fc0_weight), std::move(fc0_bias),
                                           std::move(fc1_weight), std::move(fc1_bias), hidden_act);
          break;
        case Kind::global_avg_pool: program->global_avg_pool(input); break;
        case Kind::quantize: program->quantize(input, out); break;
        case Kind::qconv:
          program->quantized_conv(input, depthwise, g, out_channels, std::move(qweight), std::move(weight_sum),
                                  std::move(qbias), std::move(dequant_scale), in, residual, residual_q, act, out,
                                  has_output_q, std::move(weight_scale), std::move(bias), std::move(out_scales),
                                  std::move(out_zero_points));
          break;
        case Kind::qsqueeze_excitation:
          program->quantized_squeeze_excitation(input, hidden, std::move(fc0_weight), std::move(fc0_bias),
                                                std::move(fc1_weight), std::move(fc1_bias), hidden_act, act, in, out,
                                                std::move(out_scales), std::move(out_zero_points), has_output_q);
          break;
        case Kind::qglobal_avg_pool: program->quantized_global_avg_pool(input, in, has_output_q, out); break;
        case Kind::avg_pool: program->avg_pool(input, g); break;
        case Kind::qavg_pool: program->quantized_avg_pool(input, g, in, has_output_q, out); break;
        case Kind::qlinear:
          program->quantized_linear(input, out_channels, std::move(qweight), std::move(qbias), std::move(dequant_scale),
                                    in, act, std::move(weight_scale), std::move(bias));
          break;
        case Kind::dynamic_quantize: program->dynamic_quantize(input, out.scale); break;
        case Kind::max_pool:
          if (version < 8 && program->impl_->value(input, "pool input").dtype == DType::int8)
            r.fail("an int8 max_pool step needs format version 8");
          program->max_pool(input, g);
          break;
        case Kind::concat: program->concat(input, residual); break;
        case Kind::qconcat: program->quantized_concat(input, residual, in, residual_q, has_output_q, out); break;
      }
    }
    const uint32_t count = r.get<uint32_t>("output count");
    std::vector<int32_t> outputs;
    std::vector<Layout> layouts;
    for (uint32_t i = 0; i < count && !r.at_end(); ++i) {
      outputs.push_back(r.get<int32_t>("output id"));
      layouts.push_back(Layout(r.get<uint8_t>("output layout")));
    }
    if (outputs.size() != count) r.fail("truncated (while reading the outputs)");
    program->set_outputs(std::move(outputs), std::move(layouts));
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    if (what.rfind("program file ", 0) == 0) throw;
    r.fail(what);  // a builder rejected the content: same message, with the file named
  }
  if (!r.at_end()) r.fail("unexpected data after the outputs");
  return program;
}

}  // namespace pyvideo::runtime
