// candidates: what the Debian 12 kernel libraries achieve on the engine's convolution shapes.
//
// NOT PART OF THE BUILD. CMake never sees this file and the project never needs these
// packages; run.sh compiles it by hand with g++ against the installed libraries
// (libopenblas-dev 0.3.21, libdnnl-dev 2.6, libxnnpack-dev 2022-02, libpthreadpool-dev,
// libcpuinfo-dev). It exists to record the measurement behind the decision, in issue 17, to
// write the engine's own convolution kernels rather than put a library behind an adapter.
//
//   candidates [seconds-per-shape-per-library [repeats]]
//
// The shapes are onnx_conv_bench's (engine/onnx/conv_bench_main.cc): resnet18's stem, 3x3 and
// 1x1 convolutions and mobilenet_v2's pointwise and depthwise ones, batch 1, pad k / 2, one
// thread everywhere. Per shape and library: `repeats` timed rounds, each the fastest call of
// its share of the budget; the line prints the median round and the fastest, in GFLOP/s and
// as % of the one-core FMA peak this program measures the way onnx_conv_bench does.
//   openblas  im2col (NCHW, skipped for 1x1 stride 1) + cblas_sgemm per group; the
//             im2col share of the time is printed on its own
//   onednn    convolution_forward with every layout left to the library (format_tag::any);
//             inputs and weights reordered once outside the timing; execute() only
//   xnnpack   convolution2d_nhwc_f32 (depthwise flag for group == channels), setup once,
//             xnn_run_operator with a null pthreadpool (the calling thread only)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <cblas.h>
#include <immintrin.h>
#include <xnnpack.h>

#include "oneapi/dnnl/dnnl.hpp"

extern "C" void openblas_set_num_threads(int);

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  const char* name;
  int c, h, m, k, s, group;  // square input and kernel, pad k / 2
};

// The same list, in the same order, as onnx_conv_bench's kCases.
const Case kCases[] = {
    {"r18 stem 7x7/2", 3, 224, 64, 7, 2, 1},       {"r18 3x3 64@56", 64, 56, 64, 3, 1, 1},
    {"r18 3x3/2 64>128", 64, 56, 128, 3, 2, 1},    {"r18 3x3 128@28", 128, 28, 128, 3, 1, 1},
    {"r18 1x1/2 64>128", 64, 56, 128, 1, 2, 1},    {"r18 3x3/2 128>256", 128, 28, 256, 3, 2, 1},
    {"r18 3x3 256@14", 256, 14, 256, 3, 1, 1},     {"r18 3x3/2 256>512", 256, 14, 512, 3, 2, 1},
    {"r18 3x3 512@7", 512, 7, 512, 3, 1, 1},       {"mv2 1x1 32>16@112", 32, 112, 16, 1, 1, 1},
    {"mv2 1x1 16>96@112", 16, 112, 96, 1, 1, 1},   {"mv2 1x1 144>24@56", 144, 56, 24, 1, 1, 1},
    {"mv2 1x1 192>64@14", 192, 14, 64, 1, 1, 1},   {"mv2 1x1 960>320@7", 960, 7, 320, 1, 1, 1},
    {"mv2 dw3x3 32@112", 32, 112, 32, 3, 1, 32},   {"mv2 dw3x3/2 96@112", 96, 112, 96, 3, 2, 96},
    {"mv2 dw3x3 144@56", 144, 56, 144, 3, 1, 144}, {"mv2 dw3x3 384@14", 384, 14, 384, 3, 1, 384},
    {"mv2 dw3x3 960@7", 960, 7, 960, 3, 1, 960},
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The fastest call of fn within `budget` seconds (at least 3 calls).
template <typename Fn>
double Fastest(double budget, Fn&& fn) {
  double best = 1e30;
  const auto start = Clock::now();
  for (int n = 0; n < 3 || (Seconds(start, Clock::now()) < budget && n < 1000); ++n) {
    const auto a = Clock::now();
    fn();
    best = std::min(best, Seconds(a, Clock::now()));
  }
  return best;
}

struct Timing {
  double median = 0, fastest = 0;  // seconds per call
};

// `repeats` rounds of Fastest over budget / repeats each, after one warm-up call.
template <typename Fn>
Timing Rounds(double budget, int repeats, Fn&& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) t.push_back(Fastest(budget / repeats, fn));
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front()};
}

// One core's FMA throughput: 16 independent 512-bit FMA chains on zero registers.
__attribute__((noinline)) void FmaLoop(long iters) {
  __asm__ volatile("vxorps %%zmm0, %%zmm0, %%zmm0\n\tvxorps %%zmm1, %%zmm1, %%zmm1" ::
                       : "xmm0", "xmm1");
  for (long i = 0; i < iters; ++i) {
    __asm__ volatile(
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm16\n\tvfmadd231ps %%zmm0, %%zmm1, %%zmm17\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm18\n\tvfmadd231ps %%zmm0, %%zmm1, %%zmm19\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm20\n\tvfmadd231ps %%zmm0, %%zmm1, %%zmm21\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm22\n\tvfmadd231ps %%zmm0, %%zmm1, %%zmm23\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm24\n\tvfmadd231ps %%zmm0, %%zmm1, %%zmm25\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm26\n\tvfmadd231ps %%zmm0, %%zmm1, %%zmm27\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm28\n\tvfmadd231ps %%zmm0, %%zmm1, %%zmm29\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm30\n\tvfmadd231ps %%zmm0, %%zmm1, %%zmm31" ::
            : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
              "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
  }
}

double FmaPeak(double budget) {
  const long iters = 1 << 22;
  return static_cast<double>(iters) * 16 * 16 * 2 / Fastest(budget, [&] { FmaLoop(iters); }) /
         1e9;
}

std::vector<float> Filled(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<int>(i % 17) - 8) * 0.01f;
  return v;
}

int OutSize(const Case& c) { return (c.h + 2 * (c.k / 2) - c.k) / c.s + 1; }

double Flops(const Case& c) {
  const double o = OutSize(c);
  return 2.0 * c.m * (c.c / c.group) * c.k * c.k * o * o;
}

// im2col of one group: rows (ci, ky, kx), columns the output pixels; zero outside the input.
void Im2col(const Case& c, const float* x, float* col) {
  const int o = OutSize(c), p = c.k / 2, cg = c.c / c.group;
  for (int ci = 0; ci < cg; ++ci) {
    for (int ky = 0; ky < c.k; ++ky) {
      for (int kx = 0; kx < c.k; ++kx) {
        float* row = col + ((ci * c.k + ky) * c.k + kx) * o * o;
        for (int oy = 0; oy < o; ++oy) {
          const int iy = oy * c.s - p + ky;
          for (int ox = 0; ox < o; ++ox) {
            const int ix = ox * c.s - p + kx;
            const bool in = iy >= 0 && iy < c.h && ix >= 0 && ix < c.h;
            row[oy * o + ox] = in ? x[(ci * c.h + iy) * c.h + ix] : 0.0f;
          }
        }
      }
    }
  }
}

struct BlasTiming {
  Timing total, im2col;
};

// OpenBLAS: per group, im2col into `col` then W[m/g, c/g*k*k] x col -> y[m/g, o*o].
BlasTiming OpenBlas(const Case& c, double budget, int repeats) {
  const int o = OutSize(c), cg = c.c / c.group, mg = c.m / c.group, kk = cg * c.k * c.k;
  const std::vector<float> x = Filled(static_cast<size_t>(c.c) * c.h * c.h);
  const std::vector<float> w = Filled(static_cast<size_t>(c.m) * kk);
  std::vector<float> col(static_cast<size_t>(kk) * o * o);
  std::vector<float> y(static_cast<size_t>(c.m) * o * o);
  const bool direct = c.k == 1 && c.s == 1;  // the input is already the column matrix
  auto columns = [&](int g) {
    const float* xg = x.data() + static_cast<size_t>(g) * cg * c.h * c.h;
    if (direct) return xg;
    Im2col(c, xg, col.data());
    return static_cast<const float*>(col.data());
  };
  auto run = [&] {
    for (int g = 0; g < c.group; ++g) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mg, o * o, kk, 1.0f,
                  w.data() + static_cast<size_t>(g) * mg * kk, kk, columns(g), o * o, 0.0f,
                  y.data() + static_cast<size_t>(g) * mg * o * o, o * o);
    }
  };
  BlasTiming t;
  t.total = Rounds(budget, repeats, run);
  if (!direct) {
    t.im2col = Rounds(budget / 2, repeats, [&] {
      for (int g = 0; g < c.group; ++g) columns(g);
    });
  }
  return t;
}

// oneDNN: convolution_forward, layouts chosen by the library, execute() timed.
Timing OneDnn(const Case& c, double budget, int repeats) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::dim o = OutSize(c), p = c.k / 2, g = c.group;
  const memory::dims src{1, c.c, c.h, c.h}, dst{1, c.m, o, o}, bias{c.m};
  const memory::dims wts = g == 1 ? memory::dims{c.m, c.c, c.k, c.k}
                                  : memory::dims{g, c.m / g, c.c / g, c.k, c.k};
  const tag wtag = g == 1 ? tag::oihw : tag::goihw;
  convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct,
                              memory::desc(src, dt::f32, tag::any),
                              memory::desc(wts, dt::f32, tag::any),
                              memory::desc(bias, dt::f32, tag::x),
                              memory::desc(dst, dt::f32, tag::any), {c.s, c.s}, {p, p}, {p, p});
  convolution_forward::primitive_desc pd(d, eng);
  std::vector<float> x = Filled(static_cast<size_t>(c.c) * c.h * c.h);
  std::vector<float> w = Filled(static_cast<size_t>(c.m) * (c.c / g) * c.k * c.k);
  std::vector<float> b = Filled(static_cast<size_t>(c.m));
  memory x_user({src, dt::f32, tag::nchw}, eng, x.data());
  memory w_user({wts, dt::f32, wtag}, eng, w.data());
  memory b_mem({bias, dt::f32, tag::x}, eng, b.data());
  memory x_mem(pd.src_desc(), eng), w_mem(pd.weights_desc(), eng), y_mem(pd.dst_desc(), eng);
  reorder(x_user, x_mem).execute(strm, x_user, x_mem);
  reorder(w_user, w_mem).execute(strm, w_user, w_mem);
  strm.wait();
  convolution_forward conv(pd);
  const std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x_mem},
                                             {DNNL_ARG_WEIGHTS, w_mem},
                                             {DNNL_ARG_BIAS, b_mem},
                                             {DNNL_ARG_DST, y_mem}};
  return Rounds(budget, repeats, [&] {
    conv.execute(strm, args);
    strm.wait();
  });
}

// XNNPACK: NHWC convolution operator, run on the calling thread.
Timing Xnnpack(const Case& c, double budget, int repeats) {
  const int o = OutSize(c), p = c.k / 2;
  const bool dw = c.group == c.c && c.group > 1;
  const size_t cg = c.c / c.group, mg = c.m / c.group;
  const std::vector<float> x = Filled(static_cast<size_t>(c.c) * c.h * c.h);
  const std::vector<float> w = Filled(static_cast<size_t>(c.m) * cg * c.k * c.k);
  const std::vector<float> b = Filled(static_cast<size_t>(c.m));
  std::vector<float> y(static_cast<size_t>(c.m) * o * o);
  xnn_operator_t op = nullptr;
  if (xnn_create_convolution2d_nhwc_f32(p, p, p, p, c.k, c.k, c.s, c.s, 1, 1, c.group, cg, mg,
                                        c.c, c.m, w.data(), b.data(), -INFINITY, INFINITY,
                                        dw ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0,
                                        &op) != xnn_status_success ||
      xnn_setup_convolution2d_nhwc_f32(op, 1, c.h, c.h, x.data(), y.data(), nullptr) !=
          xnn_status_success) {
    std::fprintf(stderr, "xnnpack refused %s\n", c.name);
    return {};
  }
  const Timing t = Rounds(budget, repeats, [&] { xnn_run_operator(op, nullptr); });
  xnn_delete_operator(op);
  return t;
}

double Gf(const Case& c, double secs) { return secs > 0 ? Flops(c) / secs / 1e9 : 0; }

}  // namespace

int main(int argc, char** argv) {
  const double budget = argc > 1 ? std::atof(argv[1]) : 0.6;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  openblas_set_num_threads(1);
  // oneDNN (OpenMP) and OpenBLAS also read OMP_NUM_THREADS=1 / OPENBLAS_NUM_THREADS=1 (run.sh).
  if (xnn_initialize(nullptr) != xnn_status_success) return 1;
  const double peak = FmaPeak(0.3);
  std::printf("peak: measured %.1f GFLOP/s (one core, 512-bit FMA loop)\n", peak);
  std::printf("# GFLOP/s median of %d rounds (fastest round in brackets), %% of peak of the median\n",
              repeats);
  std::printf("%-20s %7s | %17s %5s %8s | %17s %5s | %17s %5s\n", "layer", "MFLOP",
              "openblas", "%pk", "im2col%", "onednn", "%pk", "xnnpack", "%pk");
  for (const Case& c : kCases) {
    const BlasTiming bl = OpenBlas(c, budget, repeats);
    const Timing dn = OneDnn(c, budget, repeats);
    const Timing xn = Xnnpack(c, budget, repeats);
    std::printf("%-20s %7.1f |", c.name, Flops(c) / 1e6);
    std::printf(" %7.1f (%7.1f) %5.0f %7.0f%% |", Gf(c, bl.total.median), Gf(c, bl.total.fastest),
                100 * Gf(c, bl.total.median) / peak, 100 * bl.im2col.median / bl.total.median);
    const Timing lib[2] = {dn, xn};
    for (int i = 0; i < 2; ++i) {
      std::printf(" %7.1f (%7.1f) %5.0f %s", Gf(c, lib[i].median), Gf(c, lib[i].fastest),
                  100 * Gf(c, lib[i].median) / peak, i == 0 ? "|" : "");
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
