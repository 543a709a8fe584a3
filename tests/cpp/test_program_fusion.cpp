// Conv -> depthwise fusion in the native program runtime: a dense conv (pointwise, X3D's 1x3x3 stride-2 stem conv, a
// 3x3x3 one, a strided 1x1x1 one, an uneven 2x1x3 one with temporal stride 2) whose output only feeds the depthwise
// conv after it, run fused, gives bit for bit what the two separate steps give, over many shapes (depthwise kernels
// including X3D's temporal 5x1x1, strides 1 and 2, paddings 0..kernel, odd H/W, T = 1, 9 and 13 frames, batch 2, a
// residual on the depthwise conv, row sums read by a squeeze-excitation gate, every activation), on every ISA level
// the CPU runs, with 1, 2 and 3 threads; and both equal a direct double-precision computation of the two convs. Pairs
// the fusion must leave alone (the conv output read twice or a program output, a conv with a residual) are not fused;
// the default rule fuses a large downsampling pointwise pair and a large stem, and leaves small ones; the switch
// turns it off. (Also run under ASan/UBSan.)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../../csrc/runtime/program.h"
#include "../../kernels/cpu/dispatch.h"
#include "check.h"
#include "program_files.h"

using pyvideo::kernels::Activation;
using pyvideo::kernels::Isa;
using pyvideo::runtime::ConvGeometry;
using pyvideo::runtime::Program;
using pyvideo::runtime::Shape5;
using pyvideo::runtime::Tensor;

namespace {

const char* kFusedKind = "conv/pointwise>depthwise";
const char* kDenseFusedKind = "conv/dense>depthwise";

struct Case {
  int64_t ci, c;
  ConvGeometry pg, g;  // the producer conv's and the depthwise conv's
  Activation pw_act, dw_act;
  bool residual, sums;
};

int64_t extent(int64_t x, const ConvGeometry& g, int i) {
  return x + 2 * g.padding[i] < g.kernel[i] ? 0 : (x + 2 * g.padding[i] - g.kernel[i]) / g.stride[i] + 1;
}
Shape5 conv_shape(const Shape5& x, const ConvGeometry& g, int64_t c) {
  return {x.n, extent(x.t, g, 0), extent(x.h, g, 1), extent(x.w, g, 2), c};
}
int64_t taps(const ConvGeometry& g) { return g.kernel[0] * g.kernel[1] * g.kernel[2]; }

// A dense conv computed directly in double: in [N, T, H, W, x.c], weight [kt, kh, kw, x.c, co].
std::vector<double> dense_reference(const std::vector<float>& in, const Shape5& x, const ConvGeometry& g, int64_t co,
                                    const std::vector<float>& w, const std::vector<float>& b, Activation act) {
  const Shape5 y = conv_shape(x, g, co);
  std::vector<double> out(size_t(y.numel()));
  for (int64_t n = 0; n < y.n; ++n)
    for (int64_t ot = 0; ot < y.t; ++ot)
      for (int64_t oh = 0; oh < y.h; ++oh)
        for (int64_t ow = 0; ow < y.w; ++ow)
          for (int64_t c = 0; c < co; ++c) {
            double acc = b[size_t(c)];
            for (int64_t kt = 0; kt < g.kernel[0]; ++kt)
              for (int64_t kh = 0; kh < g.kernel[1]; ++kh)
                for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
                  const int64_t it = ot * g.stride[0] - g.padding[0] + kt;
                  const int64_t ih = oh * g.stride[1] - g.padding[1] + kh;
                  const int64_t iw = ow * g.stride[2] - g.padding[2] + kw;
                  if (it < 0 || it >= x.t || ih < 0 || ih >= x.h || iw < 0 || iw >= x.w) continue;
                  const float* xi = in.data() + (((n * x.t + it) * x.h + ih) * x.w + iw) * x.c;
                  const float* wi = w.data() + ((kt * g.kernel[1] + kh) * g.kernel[2] + kw) * x.c * co + c;
                  for (int64_t i = 0; i < x.c; ++i) acc += double(xi[i]) * wi[i * co];
                }
            out[size_t((((n * y.t + ot) * y.h + oh) * y.w + ow) * co + c)] = activate(acc, act);
          }
  return out;
}

// input -> [residual: a conv with the producer's kernel and padding and both strides] -> producer conv -> depthwise
// conv (+ residual) [-> SE gate]. The residual has the depthwise output's shape when the depthwise conv is "same".
struct Block {
  Case k;
  std::vector<float> pw_w, pw_b, dw_w, dw_b, res_w, res_b, fc0_w, fc0_b, fc1_w, fc1_b;

  Block(const Case& kase, std::mt19937& rng) : k(kase) {
    pw_w = random_floats(size_t(taps(k.pg) * k.ci * k.c), rng, 0.5f);
    pw_b = random_floats(size_t(k.c), rng);
    dw_w = random_floats(size_t(taps(k.g) * k.c), rng, 0.5f);
    dw_b = random_floats(size_t(k.c), rng);
    res_w = random_floats(size_t(taps(k.pg) * k.ci * k.c), rng, 0.5f);
    res_b = random_floats(size_t(k.c), rng);
    fc0_w = random_floats(size_t(4 * k.c), rng);
    fc0_b = random_floats(4, rng);
    fc1_w = random_floats(size_t(4 * k.c), rng);
    fc1_b = random_floats(size_t(k.c), rng);
  }

  ConvGeometry residual_geometry() const {
    ConvGeometry r = k.pg;
    for (int i = 0; i < 3; ++i) r.stride[i] *= k.g.stride[i];
    return r;
  }

  // Whether both convs (and the residual) fit an input of these sizes.
  bool fits(const Shape5& x) const {
    const Shape5 mid = conv_shape(x, k.pg, k.c), y = conv_shape(mid, k.g, k.c);
    return mid.numel() > 0 && y.numel() > 0 && (!k.residual || conv_shape(x, residual_geometry(), k.c) == y);
  }

  std::unique_ptr<Program> build() const {
    auto p = std::make_unique<Program>();
    const int32_t x = p->set_input(k.ci);
    const int32_t res = k.residual ? p->conv(x, false, residual_geometry(), k.c, res_w, res_b, -1, Activation::identity)
                                   : -1;
    const int32_t mid = p->conv(x, false, k.pg, k.c, pw_w, pw_b, -1, k.pw_act);
    const int32_t y = p->conv(mid, true, k.g, k.c, dw_w, dw_b, res, k.dw_act);
    std::vector<int32_t> outputs{y};
    if (k.sums) outputs.push_back(p->squeeze_excitation_gate(y, 4, fc0_w, fc0_b, fc1_w, fc1_b, Activation::relu));
    p->set_outputs(outputs, std::vector<Program::Layout>(outputs.size(), Program::Layout::nthwc));
    return p;
  }

  // The block's conv output computed directly, in double.
  std::vector<double> reference(const std::vector<float>& in, const Shape5& x) const {
    const Shape5 m = conv_shape(x, k.pg, k.c), y = conv_shape(m, k.g, k.c);
    const std::vector<double> mid = dense_reference(in, x, k.pg, k.c, pw_w, pw_b, k.pw_act);
    const std::vector<double> res = k.residual ? dense_reference(in, x, residual_geometry(), k.c, res_w, res_b,
                                                                 Activation::identity)
                                               : std::vector<double>();
    const auto& g = k.g;
    const int64_t C = k.c;
    std::vector<double> out(size_t(y.numel()));
    for (int64_t n = 0; n < y.n; ++n)
      for (int64_t ot = 0; ot < y.t; ++ot)
        for (int64_t oh = 0; oh < y.h; ++oh)
          for (int64_t ow = 0; ow < y.w; ++ow)
            for (int64_t c = 0; c < C; ++c) {
              const int64_t o = (((n * y.t + ot) * y.h + oh) * y.w + ow) * C + c;
              double acc = dw_b[size_t(c)];
              for (int64_t kt = 0; kt < g.kernel[0]; ++kt)
                for (int64_t kh = 0; kh < g.kernel[1]; ++kh)
                  for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
                    const int64_t it = ot * g.stride[0] - g.padding[0] + kt;
                    const int64_t ih = oh * g.stride[1] - g.padding[1] + kh;
                    const int64_t iw = ow * g.stride[2] - g.padding[2] + kw;
                    if (it < 0 || it >= m.t || ih < 0 || ih >= m.h || iw < 0 || iw >= m.w) continue;
                    acc += mid[size_t((((n * m.t + it) * m.h + ih) * m.w + iw) * C + c)] *
                           dw_w[size_t(((kt * g.kernel[1] + kh) * g.kernel[2] + kw) * C + c)];
                  }
              if (k.residual) acc += res[size_t(o)];
              out[size_t(o)] = activate(acc, k.dw_act);
            }
    return out;
  }
};

bool same_bits(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i].shape == b[i].shape) || a[i].storage->size() != b[i].storage->size()) return false;
    if (std::memcmp(a[i].data(), b[i].data(), a[i].storage->size()) != 0) return false;
  }
  return true;
}

int fused_steps(const Program& p) {
  int n = 0;
  for (const auto& s : p.last_profile()) n += s.kind.find(">depthwise") != std::string::npos;
  return n;
}

int reported = 0;

// Producer convs: pointwise (X3D's expansion convs), X3D's stem (1x3x3, stride (1,2,2), padding (0,1,1)), a 3x3x3
// "same" conv, a strided 1x1x1 conv and an uneven 2x1x3 one (stride (2,1,1), padding (1,0,1)).
const ConvGeometry kProducers[] = {
    {{1, 1, 1}, {1, 1, 1}, {0, 0, 0}}, {{1, 3, 3}, {1, 2, 2}, {0, 1, 1}}, {{3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
    {{1, 1, 1}, {1, 2, 2}, {0, 0, 0}}, {{2, 1, 3}, {2, 1, 1}, {1, 0, 1}}};

void fused_equals_separate_steps() {
  std::mt19937 rng(2024);
  const Activation acts[] = {Activation::relu, Activation::identity, Activation::swish, Activation::hswish,
                             Activation::sigmoid};
  // Depthwise kernels; the dense producers take the first three (X3D's temporal 5x1x1 among them).
  const int kernels[][3] = {{5, 1, 1}, {3, 3, 3}, {1, 3, 3}, {3, 1, 1}, {1, 5, 5}, {2, 2, 2}};
  // N x T x H x W: T = 1, odd sizes, 9 and 13 frames, batch 2; the dense producers take two of them in turn.
  const Shape5 sizes[] = {{1, 4, 9, 11, 0}, {2, 3, 7, 6, 0},  {1, 1, 5, 5, 0},
                          {1, 13, 4, 9, 0}, {2, 9, 10, 3, 0}, {1, 3, 21, 18, 0}};
  int config = 0, compared = 0;
  for (Isa isa : pyvideo::kernels::supported_isas()) {
    pyvideo::kernels::select_isa(isa);
    for (const ConvGeometry& producer : kProducers) {
      const bool pointwise = taps(producer) == 1 && producer.stride[1] == 1;
      for (size_t kernel_index = 0; kernel_index < (pointwise ? 6u : 3u); ++kernel_index)
        for (int stride = 1; stride <= 2; ++stride)
          for (int pad_mix = 0; pad_mix < 3; ++pad_mix) {
            const int* kernel = kernels[kernel_index];
            Case k;
            k.ci = 3 + config % (pointwise ? 5 : 3) * 7;  // 3 .. 31 input channels (3 .. 17 for the dense ones)
            k.c = config % 3 == 0 ? 17 : config % 3 == 1 ? 8 : 54;
            k.pg = producer;
            for (int i = 0; i < 3; ++i) {
              k.g.kernel[i] = kernel[i];
              k.g.stride[i] = i == 0 ? 1 + (config % 4 == 3) : stride;
              // "same" padding, none, or the kernel size (lines reading no input row at all)
              k.g.padding[i] = pad_mix == 0 ? kernel[i] / 2 : pad_mix == 1 ? 0 : kernel[i];
            }
            const bool same_padding = pad_mix == 0 && kernel[0] % 2 && kernel[1] % 2 && kernel[2] % 2;
            k.pw_act = acts[config % 5];
            k.dw_act = acts[(config / 5 + 1) % 5];
            k.residual = same_padding && config % 2 == 0;
            k.sums = config % 3 != 1;
            const Block block(k, rng);
            const auto program = block.build();
            program->set_profiling(true);
            for (size_t size_index = 0; size_index < std::size(sizes); ++size_index) {
              if (pointwise ? size_index == 5 : (size_index + size_t(config)) % 3 != 0) continue;
              const Shape5 shape{sizes[size_index].n, sizes[size_index].t, sizes[size_index].h, sizes[size_index].w,
                                 k.ci};
              if (!block.fits(shape)) continue;
              const auto in = random_floats(size_t(shape.numel()), rng);
              program->set_fuse_pointwise_depthwise(false);
              const auto want = program->run(in.data(), shape, 1);
              const bool unfused = fused_steps(*program) == 0;
              CHECK(unfused);
              // The separate steps against the direct computation (the fused ones then by equality).
              const auto direct = block.reference(in, shape);
              const float* w = static_cast<const float*>(want[0].data());
              double err = 0, scale = 1e-3;
              for (size_t i = 0; i < direct.size(); ++i) {
                err = std::max(err, std::fabs(w[i] - direct[i]));
                scale = std::max(scale, std::fabs(direct[i]));
              }
              CHECK(want[0].shape.numel() == int64_t(direct.size()) && err <= 1e-4 * scale);
              program->set_fuse_pointwise_depthwise(true, true);
              for (int threads : {1, 2, 3}) {
                const auto got = program->run(in.data(), shape, threads);
                const bool same = same_bits(got, want), fused = fused_steps(*program) == 1;
                CHECK(same);
                CHECK(fused);
                if ((!same || !fused) && reported++ < 10)
                  std::fprintf(stderr,
                               "  isa=%s N=%ld T=%ld H=%ld W=%ld Ci=%ld C=%ld producer k=%ldx%ldx%ld s=%ldx%ldx%ld "
                               "p=%ldx%ldx%ld depthwise k=%ldx%ldx%ld s=%ldx%ldx%ld p=%ldx%ldx%ld residual=%d "
                               "sums=%d threads=%d\n",
                               pyvideo::kernels::isa_name(isa), long(shape.n), long(shape.t), long(shape.h),
                               long(shape.w), long(k.ci), long(k.c), long(k.pg.kernel[0]), long(k.pg.kernel[1]),
                               long(k.pg.kernel[2]), long(k.pg.stride[0]), long(k.pg.stride[1]),
                               long(k.pg.stride[2]), long(k.pg.padding[0]), long(k.pg.padding[1]),
                               long(k.pg.padding[2]), long(k.g.kernel[0]), long(k.g.kernel[1]), long(k.g.kernel[2]),
                               long(k.g.stride[0]), long(k.g.stride[1]), long(k.g.stride[2]), long(k.g.padding[0]),
                               long(k.g.padding[1]), long(k.g.padding[2]), int(k.residual), int(k.sums), threads);
              }
              ++compared;
            }
            ++config;
          }
    }
  }
  pyvideo::kernels::select_isa(pyvideo::kernels::best_isa());
  std::printf("%d fused blocks, %d runs compared\n", config, compared);
}

// Pairs that must not be fused, and the default rule.
void what_is_fused() {
  std::mt19937 rng(5);
  Case k{16, 24, ConvGeometry{}, ConvGeometry{}, Activation::relu, Activation::identity, false, false};
  for (int i = 0; i < 3; ++i) k.g.kernel[i] = 3, k.g.padding[i] = 1;
  k.g.stride[1] = k.g.stride[2] = 2;
  const Block block(k, rng);
  const Shape5 shape{1, 2, 9, 9, 16};
  const auto in = random_floats(size_t(shape.numel()), rng);
  auto run_fused_steps = [&](Program& p, const Shape5& s, const std::vector<float>& x) {
    p.set_profiling(true);
    p.set_fuse_pointwise_depthwise(false);
    const auto want = p.run(x.data(), s, 2);
    p.set_fuse_pointwise_depthwise(true, true);
    const auto got = p.run(x.data(), s, 2);
    CHECK(same_bits(got, want));
    return fused_steps(p);
  };
  {  // the pointwise output also read by a pool
    Program p;
    const int32_t x = p.set_input(16);
    const int32_t mid = p.conv(x, false, ConvGeometry{}, 24, block.pw_w, block.pw_b, -1, Activation::relu);
    const int32_t y = p.conv(mid, true, k.g, 24, block.dw_w, block.dw_b, -1, Activation::identity);
    p.set_outputs({y, p.global_avg_pool(mid)}, {Program::Layout::nthwc, Program::Layout::nthwc});
    CHECK(run_fused_steps(p, shape, in) == 0);
  }
  {  // the pointwise output is a program output
    Program p;
    const int32_t x = p.set_input(16);
    const int32_t mid = p.conv(x, false, ConvGeometry{}, 24, block.pw_w, block.pw_b, -1, Activation::relu);
    const int32_t y = p.conv(mid, true, k.g, 24, block.dw_w, block.dw_b, -1, Activation::identity);
    p.set_outputs({y, mid}, {Program::Layout::nthwc, Program::Layout::nthwc});
    CHECK(run_fused_steps(p, shape, in) == 0);
  }
  {  // a conv with a residual is not fused; the depthwise conv must read the conv's output
    Program p;
    const int32_t x = p.set_input(16);
    const int32_t res = p.conv(x, false, ConvGeometry{}, 24, block.res_w, block.res_b, -1, Activation::identity);
    const int32_t mid = p.conv(x, false, ConvGeometry{}, 24, block.pw_w, block.pw_b, res, Activation::relu);
    const int32_t y = p.conv(mid, true, k.g, 24, block.dw_w, block.dw_b, -1, Activation::identity);
    const int32_t mid2 = p.conv(y, false, ConvGeometry{}, 24, random_floats(24 * 24, rng), block.res_b, -1, Activation::relu);
    const int32_t z = p.conv(x, true, ConvGeometry{}, 16, std::vector<float>(16, 1.0f), std::vector<float>(16, 0.0f),
                             -1, Activation::identity);  // reads the input, not mid2
    p.set_outputs({mid2, z}, {Program::Layout::nthwc, Program::Layout::nthwc});
    CHECK(run_fused_steps(p, shape, in) == 0);
  }
  // The default rule: a stride-2 pair whose pointwise output is large (here 2 x 4 x 64 x 64 x 24 floats = 3.1 MB)
  // is fused, the same pair on a small input is not; off is off.
  const auto p = block.build();
  p->set_profiling(true);
  const Shape5 big{2, 4, 64, 64, 16};
  const auto big_in = random_floats(size_t(big.numel()), rng);
  CHECK(p->fuse_pointwise_depthwise());
  const auto fused = p->run(big_in.data(), big, 2);
  CHECK(fused_steps(*p) == 1);
  p->run(in.data(), shape, 2);
  CHECK(fused_steps(*p) == 0);
  p->set_fuse_pointwise_depthwise(false);
  CHECK(!p->fuse_pointwise_depthwise());
  const auto separate = p->run(big_in.data(), big, 2);
  CHECK(fused_steps(*p) == 0);
  CHECK(same_bits(fused, separate));
  // The fused step's profile entry: both convs' MACs, the pointwise input and the depthwise output shapes.
  p->set_fuse_pointwise_depthwise(true, true);
  p->run(in.data(), shape, 1);
  const auto profile = p->last_profile();
  CHECK(profile.size() == 1 && profile[0].kind == kFusedKind);
  const int64_t mid_positions = 2 * 9 * 9, out_positions = 2 * 5 * 5;
  CHECK(profile[0].macs == mid_positions * 16 * 24 + out_positions * 24 * 27);
  CHECK(profile[0].input == shape && profile[0].output == (Shape5{1, 2, 5, 5, 24}));
}

// X3D's stem: a 1x3x3 stride-(1,2,2) conv of the RGB input (3 -> 24 channels, no activation) and the temporal 5x1x1
// depthwise conv. The default rule fuses it once the conv output reaches 2 MB (8 x 64 x 64 x 24 floats = 3.1 MB from
// 8 x 128 x 128 frames), not at 4 x 64 x 64 (0.4 MB); the fused step's profile entry.
void dense_default_rule() {
  std::mt19937 rng(9);
  Case k{3, 24, ConvGeometry{{1, 3, 3}, {1, 2, 2}, {0, 1, 1}}, ConvGeometry{{5, 1, 1}, {1, 1, 1}, {2, 0, 0}},
         Activation::identity, Activation::relu, false, false};
  const Block block(k, rng);
  const auto p = block.build();
  p->set_profiling(true);
  const Shape5 big{1, 8, 128, 128, 3}, small{1, 4, 64, 64, 3};
  const auto big_in = random_floats(size_t(big.numel()), rng), small_in = random_floats(size_t(small.numel()), rng);
  for (int threads : {1, 2}) {
    const auto fused = p->run(big_in.data(), big, threads);
    const auto profile = p->last_profile();
    CHECK(profile.size() == 1 && profile[0].kind == kDenseFusedKind);
    const int64_t mid_positions = 8 * 64 * 64;
    CHECK(profile[0].macs == mid_positions * 24 * 27 + mid_positions * 24 * 5);
    CHECK(profile[0].input == big && profile[0].output == (Shape5{1, 8, 64, 64, 24}));
    p->set_fuse_pointwise_depthwise(false);
    CHECK(same_bits(fused, p->run(big_in.data(), big, threads)) && fused_steps(*p) == 0);
    p->set_fuse_pointwise_depthwise(true);
  }
  p->run(small_in.data(), small, 1);
  CHECK(fused_steps(*p) == 0);
}

}  // namespace

int main() {
  fused_equals_separate_steps();
  what_is_fused();
  dense_default_rule();
  return check::finish("test_program_fusion");
}
