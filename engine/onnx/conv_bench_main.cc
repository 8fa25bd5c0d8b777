// onnx_conv_bench: achieved GFLOP/s of the engine's convolutions on the layer shapes of
// resnet18 and mobilenet_v2 (batch 1, one thread), beside the machine's FMA peak.
//
//   onnx_conv_bench [seconds-per-case]
//   onnx_conv_bench --models DIR [seconds [threads]]
//                   (then: node engine/onnx/conv_bench_ort.js DIR [seconds [threads]])
//
// Per shape: the fast path with each micro-kernel this CPU runs (conv2d.h, called directly),
// and the generic path (im2col into scratch + GemmPacked, which Conv keeps for weights that
// are not constant) through a Session, in the same run. The peak is measured with a loop of independent FMAs (one core), and the
// nominal one is printed from /proc/cpuinfo's clock as 2 FMA units x 8 lanes x 2 flops.
// With --models it writes resnet18- and mobilenet_v2-shaped models (random weights, batch 1
// and 8) to DIR and prints the engine's p50 on each; conv_bench_ort.js times
// onnxruntime-node on the same files. Not a test: timings on a shared machine are noisy;
// compare ratios of one run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "engine/onnx/conv2d.h"
#include "engine/onnx/onnx_import.h"
#include "engine/onnx/plan.h"
#include "engine/onnx/qgemm.h"
#include "engine/onnx/session.h"
#include "engine/onnx/test_models.h"

namespace {

using outpost::engine::DataType;
using outpost::engine::Tensor;
using namespace outpost::engine::onnx;  // NOLINT: a tool's main file

using Clock = std::chrono::steady_clock;

struct Case {
  const char* name;
  int64_t c, h, m, k, s, group;  // square input and kernel, pad k / 2
};

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

// Seconds per call of fn over `budget` seconds (at least 3 calls).
template <typename Fn>
double Time(double budget, Fn&& fn) {
  fn();
  std::vector<double> t;
  const auto start = Clock::now();
  while (t.size() < 3 || (Seconds(start, Clock::now()) < budget && t.size() < 1000)) {
    const auto a = Clock::now();
    fn();
    t.push_back(Seconds(a, Clock::now()));
  }
  // The fastest call: on a shared machine the others measure the neighbours.
  return *std::min_element(t.begin(), t.end());
}

#if defined(__x86_64__) && defined(__GNUC__)
// 16 independent chains of 512-bit FMAs on zero registers (no denormals), in assembly so
// that nothing but the FMAs runs in the loop.
__attribute__((target("avx512f"), noinline)) float FmaLoop(int64_t iters, float seed) {
  __asm__ volatile(
      "vxorps %%zmm0, %%zmm0, %%zmm0\n\t"
      "vxorps %%zmm1, %%zmm1, %%zmm1\n\t" ::
          : "xmm0", "xmm1");
  for (int64_t it = 0; it < iters; ++it) {
    __asm__ volatile(
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm16\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm17\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm18\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm19\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm20\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm21\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm22\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm23\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm24\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm25\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm26\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm27\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm28\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm29\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm30\n\t"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm31\n\t" ::
            : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
              "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
  }
  return seed;
}

// The core's FMA throughput.
double FmaPeak(double budget) {
  const int64_t iters = 1 << 22;
  float sink = 0;
  const double secs = Time(budget, [&] { sink += FmaLoop(iters, 1e-3f); });
  if (sink == 12345.0f) std::puts("");
  return static_cast<double>(iters) * 16 * 16 * 2 / secs / 1e9;
}
#else
double FmaPeak(double) { return 0; }
#endif

double NominalPeak() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) == 0) {
      return std::atof(line.substr(line.find(':') + 1).c_str()) * 1e-3 * 2 * 8 * 2;
    }
  }
  return 0;
}

std::vector<float> Filled(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<int>(i % 17) - 8) * 0.01f;
  return v;
}

// The generic path: a Conv whose weights are a graph input.
double GenericSeconds(const Case& c, int64_t oh, double budget) {
  testing::GraphBuilder b;
  const std::vector<int64_t> xs{1, c.c, c.h, c.h}, ws{c.m, c.c / c.group, c.k, c.k};
  ValueId x = b.Input("x", DataType::kFp32, xs);
  ValueId w = b.Input("w", DataType::kFp32, ws);
  const int64_t p = c.k / 2;
  b.Output(b.Op("Conv", {x, w}, {"y"},
                {testing::IntsAttr("strides", {c.s, c.s}), testing::IntsAttr("pads", {p, p, p, p}),
                 testing::IntAttr("group", c.group)}));
  auto model = CompiledModel::Compile(b.graph());
  if (!model.ok()) return 0;
  Session session(*model);
  std::vector<Tensor> in;
  in.push_back(testing::FloatTensor(xs, Filled(static_cast<size_t>(c.c * c.h * c.h))));
  in.push_back(
      testing::FloatTensor(ws, Filled(static_cast<size_t>(c.m * c.c / c.group * c.k * c.k))));
  std::vector<Tensor> out;
  (void)oh;
  return Time(budget, [&] { (void)session.Run(in, out); });
}

// ---- whole models: resnet18 and mobilenet_v2 shaped, random weights ----

// Builds a CNN layer by layer (NCHW FLOAT, batch `n`, 3 x 224 x 224 input).
class NetBuilder {
 public:
  explicit NetBuilder(int64_t n) : b_(13) { x_ = b_.Input("x", DataType::kFp32, {n, 3, 224, 224}); }
  ValueId x() const { return x_; }

  // Conv (bias) + activation ("Relu", "Clip6" or "").
  ValueId Conv(ValueId in, int64_t c, int64_t m, int64_t k, int64_t s, int64_t group,
               const std::string& act) {
    const std::string id = std::to_string(next_++);
    const int64_t p = k / 2;
    // He-uniform weights, so that activations keep their scale through the layers.
    std::vector<float> w(static_cast<size_t>(m * (c / group) * k * k));
    const float bound = std::sqrt(6.0f / static_cast<float>(c / group * k * k));
    for (float& v : w) {
      seed_ = seed_ * 1664525u + 1013904223u;
      v = (static_cast<float>(seed_ >> 8) / 8388608.0f - 1.0f) * bound;
    }
    ValueId y = b_.Op("Conv",
                      {in, b_.Floats("w" + id, {m, c / group, k, k}, w),
                       b_.Floats("b" + id, {m}, Filled(static_cast<size_t>(m)))},
                      {"conv" + id},
                      {testing::IntsAttr("strides", {s, s}),
                       testing::IntsAttr("pads", {p, p, p, p}), testing::IntAttr("group", group)});
    if (act == "Relu") return b_.Op("Relu", {y}, {"relu" + id});
    if (act == "Clip6") {
      return b_.Op("Clip", {y, b_.Floats("lo" + id, {}, {0.0f}), b_.Floats("hi" + id, {}, {6.0f})},
                   {"clip" + id});
    }
    return y;
  }
  ValueId Op(const std::string& op, std::vector<ValueId> in, std::vector<Attribute> attrs = {}) {
    return b_.Op(op, std::move(in), {op + std::to_string(next_++)}, std::move(attrs));
  }
  // GlobalAveragePool, Flatten, Gemm to 1000 classes.
  Graph Head(ValueId in, int64_t c) {
    ValueId y = Op("GlobalAveragePool", {in});
    y = Op("Flatten", {y});
    y = b_.Op("Gemm",
              {y, b_.Floats("fc_w", {1000, c}, Filled(static_cast<size_t>(1000 * c))),
               b_.Floats("fc_b", {1000}, Filled(1000))},
              {"logits"}, {testing::IntAttr("transB", 1)});
    b_.Output(y);
    ValueInfo& info = b_.graph().values[static_cast<size_t>(y)].info;
    info.has_type = true;
    info.type = DataType::kFp32;
    return b_.graph();
  }

 private:
  testing::GraphBuilder b_;
  ValueId x_;
  int next_ = 0;
  uint32_t seed_ = 1;
};

Graph Resnet18(int64_t n) {
  NetBuilder b(n);
  ValueId y = b.Conv(b.x(), 3, 64, 7, 2, 1, "Relu");
  y = b.Op("MaxPool", {y},
           {testing::IntsAttr("kernel_shape", {3, 3}), testing::IntsAttr("strides", {2, 2}),
            testing::IntsAttr("pads", {1, 1, 1, 1})});
  int64_t c = 64;
  for (int64_t m : {64, 128, 256, 512}) {
    for (int blk = 0; blk < 2; ++blk) {
      const int64_t s = (blk == 0 && m != 64) ? 2 : 1;
      ValueId skip = s == 2 ? b.Conv(y, c, m, 1, 2, 1, "") : y;
      ValueId t = b.Conv(y, c, m, 3, s, 1, "Relu");
      t = b.Conv(t, m, m, 3, 1, 1, "");
      y = b.Op("Relu", {b.Op("Add", {t, skip})});
      c = m;
    }
  }
  return b.Head(y, 512);
}

Graph MobilenetV2(int64_t n) {
  NetBuilder b(n);
  ValueId y = b.Conv(b.x(), 3, 32, 3, 2, 1, "Clip6");
  int64_t c = 32;
  // expansion t, channels, repeats, first stride
  const int64_t cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  for (const auto& row : cfg) {
    for (int64_t i = 0; i < row[2]; ++i) {
      const int64_t s = i == 0 ? row[3] : 1, hidden = c * row[0];
      ValueId t = row[0] == 1 ? y : b.Conv(y, c, hidden, 1, 1, 1, "Clip6");
      t = b.Conv(t, hidden, hidden, 3, s, hidden, "Clip6");
      t = b.Conv(t, hidden, row[1], 1, 1, 1, "");
      y = (s == 1 && c == row[1]) ? b.Op("Add", {y, t}) : t;
      c = row[1];
    }
  }
  y = b.Conv(y, c, 1280, 1, 1, 1, "Clip6");
  return b.Head(y, 1280);
}

// Writes the models to `dir` and prints our fastest run for each (batch 1 and 8, one
// thread and `threads`).
int Models(const std::string& dir, double budget, int threads) {
  for (int64_t n : {1, 8}) {
    for (const char* name : {"resnet18", "mobilenet_v2"}) {
      for (int t : {1, threads}) {
        if (t == threads && threads == 1) continue;
        Graph g = std::string(name) == "resnet18" ? Resnet18(n) : MobilenetV2(n);
        auto bytes = ExportModel(g);
        const std::string path = dir + "/" + name + "_b" + std::to_string(n) + ".onnx";
        std::ofstream(path, std::ios::binary) << *bytes;
        CompileOptions options;
        options.threads = t;
        auto model = CompiledModel::Compile(g, options);
        if (!model.ok()) {
          std::fprintf(stderr, "%s: %s\n", name, model.status().ToString().c_str());
          return 1;
        }
        Session session(*model);
        std::vector<Tensor> in;
        in.push_back(
            testing::FloatTensor({n, 3, 224, 224}, Filled(static_cast<size_t>(n * 3 * 224 * 224))));
        std::vector<Tensor> out;
        const double secs = Time(budget, [&] { (void)session.Run(in, out); });
        std::printf("ours %s_b%lld_t%d %.0f us (fastest run; %zu steps; logit0 %g)\n", name,
                    static_cast<long long>(n), t, secs * 1e6, (*model)->steps().size(),
                    out.empty() ? 0.0 : static_cast<double>(out[0].values<float>()[0]));
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::strcmp(argv[1], "--models") == 0) {
    return Models(argv[2], argc > 3 ? std::atof(argv[3]) : 1.0, argc > 4 ? std::atoi(argv[4]) : 1);
  }
  const double budget = argc > 1 ? std::atof(argv[1]) : 0.3;
  const double peak = FmaPeak(budget);
  std::printf("peak: measured %.1f GFLOP/s (one core, 512-bit FMA loop); nominal %.1f\n", peak,
              NominalPeak());
  const auto archs = AvailableGemmArchs();
  std::printf("%-22s %8s", "layer", "MFLOP");
  for (const GemmArch* a : archs) std::printf(" %10s %5s", a->name, "%pk");
  std::printf(" %10s %7s\n", "generic", "speedup");
  for (const Case& c : kCases) {
    Conv2dGeom g;
    g.c = c.c;
    g.h = g.w = c.h;
    g.m = c.m;
    g.kh = g.kw = c.k;
    g.sh = g.sw = c.s;
    g.pt = g.pl = c.k / 2;
    g.group = c.group;
    g.oh = g.ow = (c.h + 2 * (c.k / 2) - c.k) / c.s + 1;
    const double flops = 2.0 * static_cast<double>(c.m * (c.c / c.group) * c.k * c.k * g.oh * g.ow);
    std::printf("%-22s %8.1f", c.name, flops / 1e6);
    const std::vector<float> x = Filled(static_cast<size_t>(c.c * c.h * c.h));
    const std::vector<float> w = Filled(static_cast<size_t>(c.m * (c.c / c.group) * c.k * c.k));
    const std::vector<float> bias = Filled(static_cast<size_t>(c.m));
    std::vector<float> y(static_cast<size_t>(c.m * g.oh * g.ow));
    double best = 1e30;
    for (const GemmArch* a : archs) {
      Conv2dWeights weights(*a, g, w.data(), bias.data());
      std::vector<float> scratch(weights.ScratchFloats(g));
      const double secs = Time(budget, [&] {
        weights.Forward(g, x.data(), nullptr, ActParams(), y.data(), scratch.data());
      });
      best = std::min(best, secs);
      const double gf = flops / secs / 1e9;
      std::printf(" %10.1f %5.0f", gf, peak > 0 ? 100 * gf / peak : 0.0);
    }
    const double generic = GenericSeconds(c, g.oh, budget);
    std::printf(" %10.1f %6.1fx\n", flops / generic / 1e9, generic / best);
  }
  {
    // resnet18's max pool: 64 planes 112 x 112, 3 x 3 stride 2 pad 1.
    Conv2dGeom g;
    g.h = g.w = 112;
    g.kh = g.kw = 3;
    g.sh = g.sw = 2;
    g.pt = g.pl = g.pb = g.pr = 1;
    g.oh = g.ow = 56;
    const std::vector<float> x = Filled(64 * 112 * 112);
    std::vector<float> y(64 * 56 * 56), scratch(MaxPool2dScratchFloats(g));
    const double secs = Time(budget, [&] { MaxPool2d(g, 64, x.data(), scratch.data(), y.data()); });
    std::printf("%-22s %8.1f us\n", "r18 maxpool 3x3/2", secs * 1e6);
  }
  {
    // The integer GEMM (MatMulInteger's UINT8 x INT8) beside the float one, 64 x 1024 x 1024,
    // weights packed once in both.
    const int64_t m = 64, n = 1024, k = 1024;
    std::vector<uint8_t> a(static_cast<size_t>(m * k), 3);
    std::vector<int8_t> b(static_cast<size_t>(k * n), -2);
    std::vector<int32_t> c(static_cast<size_t>(m * n));
    std::vector<float> scratch(QGemmScratchBytes(m, n, k) / sizeof(float) + 16);
    std::vector<int8_t> packed_b(QGemmPackedBBytes(n, k));
    QGemmPackB(n, k, b.data(), packed_b.data());
    const double ops = 2.0 * m * n * k;
    for (bool vnni : {true, false}) {
      const double secs = Time(budget, [&] {
        QGemmU8S8Packed(m, n, k, a.data(), packed_b.data(), c.data(), n, scratch.data(), vnni);
      });
      std::printf("%-22s %8.1f GOP/s\n",
                  vnni && QGemmHasVnni() ? "int8 gemm vnni" : "int8 gemm portable",
                  ops / secs / 1e9);
    }
    const std::vector<float> af = Filled(static_cast<size_t>(m * k)),
                             bf = Filled(static_cast<size_t>(k * n));
    std::vector<float> packed(PackedSize(k, n)), cf(static_cast<size_t>(m * n));
    PackB(bf.data(), n, false, k, n, packed.data());
    const double secs = Time(budget, [&] {
      GemmPacked(m, n, k, af.data(), k, 1, packed.data(), cf.data(), n, 1.0f, false, nullptr);
    });
    std::printf("%-22s %8.1f GFLOP/s (weights packed once)\n", "float gemm", ops / secs / 1e9);
  }
  return 0;
}
