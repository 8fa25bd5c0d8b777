// Tests of the fast convolution (conv2d.h), the weight-packed GEMM's micro-kernels (gemm.h)
// and the Conv fusions of the optimiser: each fast path against a direct reference written
// here from the operator's definition, on odd shapes (padding, strides, dilations, groups,
// channel counts that are no multiple of the vector width, batch > 1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "base/testing/test_util.h"
#include "engine/onnx/counting_allocator.h"
#include "engine/onnx/gemm.h"
#include "engine/onnx/plan.h"
#include "engine/onnx/qgemm.h"
#include "engine/onnx/session.h"
#include "engine/onnx/test_models.h"
#include "engine/onnx/thread_pool.h"

namespace outpost::engine::onnx {
namespace {

using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;
using testing::StringAttr;

std::vector<float> Random(size_t n, uint32_t seed) { return testing::RandomFloats(n, seed); }

// One 2-D convolution case (1-D when h == 0).
struct ConvCase {
  int64_t n, c, h, w, m, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group;
  std::string auto_pad = "NOTSET";
};

// y[n, m, oy, ox] from the definition.
std::vector<float> ReferenceConv(const ConvCase& k, const std::vector<float>& x,
                                 const std::vector<float>& w, const std::vector<float>& bias,
                                 int64_t oh, int64_t ow, int64_t pt, int64_t pl) {
  const int64_t h = k.h == 0 ? 1 : k.h;
  const int64_t cg = k.c / k.group, mg = k.m / k.group;
  std::vector<float> y(static_cast<size_t>(k.n * k.m * oh * ow));
  for (int64_t b = 0; b < k.n; ++b) {
    for (int64_t oc = 0; oc < k.m; ++oc) {
      const int64_t g = oc / mg;
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
          double s = bias.empty() ? 0.0 : bias[static_cast<size_t>(oc)];
          for (int64_t ic = 0; ic < cg; ++ic) {
            for (int64_t ky = 0; ky < k.kh; ++ky) {
              for (int64_t kx = 0; kx < k.kw; ++kx) {
                const int64_t iy = oy * k.sh - pt + ky * k.dh, ix = ox * k.sw - pl + kx * k.dw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= k.w) continue;
                s += static_cast<double>(
                         x[static_cast<size_t>(((b * k.c + g * cg + ic) * h + iy) * k.w + ix)]) *
                     w[static_cast<size_t>(((oc * cg + ic) * k.kh + ky) * k.kw + kx)];
              }
            }
          }
          y[static_cast<size_t>(((b * k.m + oc) * oh + oy) * ow + ox)] = static_cast<float>(s);
        }
      }
    }
  }
  return y;
}

// Runs `g` once (twice: the second run reuses the plan) and returns output 0.
Tensor RunGraph(Graph g, std::vector<Tensor> inputs, size_t* steps = nullptr) {
  auto model = CompiledModel::Compile(std::move(g));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return Tensor();
  if (steps != nullptr) *steps = (*model)->steps().size();
  Session session(*model);
  std::vector<Tensor> out;
  Status st = session.Run(inputs, out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  st = session.Run(inputs, out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out.empty() ? Tensor() : std::move(out[0]);
}

void ExpectClose(const Tensor& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.element_count(), static_cast<int64_t>(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got.values<float>()[i], want[i], 1e-4f + 1e-4f * std::fabs(want[i]))
        << what << " element " << i;
  }
}

// The case with constant weights (the fast path) and with weights fed as an input (the
// generic path), both against the reference.
void CheckConv(const ConvCase& k) {
  const bool one_d = k.h == 0;
  const int64_t h = one_d ? 1 : k.h;
  const int64_t cg = k.c / k.group;
  std::vector<float> x = Random(static_cast<size_t>(k.n * k.c * h * k.w), 1);
  std::vector<float> w = Random(static_cast<size_t>(k.m * cg * k.kh * k.kw), 2);
  std::vector<float> bias = Random(static_cast<size_t>(k.m), 3);
  int64_t oh, ow, pt = k.pt, pl = k.pl;
  auto out_dim = [&](int64_t in, int64_t kk, int64_t s, int64_t d, int64_t& pb, int64_t pe) {
    const int64_t span = d * (kk - 1) + 1;
    if (k.auto_pad == "SAME_UPPER") {
      const int64_t o = (in + s - 1) / s;
      pb = std::max<int64_t>(0, (o - 1) * s + span - in) / 2;
      return o;
    }
    return (in + pb + pe - span) / s + 1;
  };
  oh = one_d ? 1 : out_dim(h, k.kh, k.sh, k.dh, pt, k.pb);
  ow = out_dim(k.w, k.kw, k.sw, k.dw, pl, k.pr);
  const std::vector<float> want = ReferenceConv(k, x, w, bias, oh, ow, pt, pl);

  std::vector<int64_t> xs = {k.n, k.c, h, k.w}, ws = {k.m, cg, k.kh, k.kw};
  std::vector<Attribute> attrs = {IntAttr("group", k.group)};
  if (one_d) {
    xs = {k.n, k.c, k.w};
    ws = {k.m, cg, k.kw};
    attrs.push_back(IntsAttr("strides", {k.sw}));
    attrs.push_back(IntsAttr("dilations", {k.dw}));
    if (k.auto_pad == "NOTSET") attrs.push_back(IntsAttr("pads", {k.pl, k.pr}));
  } else {
    attrs.push_back(IntsAttr("strides", {k.sh, k.sw}));
    attrs.push_back(IntsAttr("dilations", {k.dh, k.dw}));
    if (k.auto_pad == "NOTSET") attrs.push_back(IntsAttr("pads", {k.pt, k.pl, k.pb, k.pr}));
  }
  if (k.auto_pad != "NOTSET") attrs.push_back(StringAttr("auto_pad", k.auto_pad));
  for (bool constant : {true, false}) {
    GraphBuilder b;
    ValueId xi = b.Input("x", DataType::kFp32, xs);
    ValueId wi = constant ? b.Floats("w", ws, w) : b.Input("w", DataType::kFp32, ws);
    ValueId y = b.Op("Conv", {xi, wi, b.Floats("b", {k.m}, bias)}, {"y"}, attrs);
    b.Output(y);
    std::vector<Tensor> in;
    in.push_back(testing::FloatTensor(xs, x));
    if (!constant) in.push_back(testing::FloatTensor(ws, w));
    ExpectClose(RunGraph(b.graph(), std::move(in)), want, constant ? "fast" : "generic");
  }
}

TEST(OnnxConv, FastPathsMatchTheReferenceOnOddShapes) {
  // n, c, h, w, m, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group
  const ConvCase cases[] = {
      {2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},       // 3x3, batch 2
      {1, 17, 11, 10, 19, 3, 3, 2, 2, 2, 1, 1, 0, 2, 1, 1},   // strides, dilation, odd pads
      {2, 33, 5, 5, 37, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},     // pointwise, flattened
      {1, 9, 9, 7, 13, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1},      // pointwise with stride
      {2, 33, 1, 1, 37, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},     // pointwise on 1 x 1 (W^T path)
      {1, 16, 2, 3, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},     // pointwise on 6 positions
      {1, 64, 12, 12, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},   // K = 576: K blocks; 2 column blocks
      {1, 3, 23, 23, 70, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1},    // the stem
      {2, 12, 6, 8, 9, 3, 3, 1, 2, 1, 1, 1, 1, 0, 1, 3},      // groups
      {2, 13, 9, 11, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 13},   // depthwise 3x3
      {1, 13, 10, 11, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 13},  // depthwise stride 2
      {1, 6, 12, 13, 6, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 6},     // depthwise 5x5 stride 2
      {1, 5, 9, 9, 5, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 5},       // depthwise 5x5
      {1, 7, 8, 9, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 7},      // depthwise, multiplier 2
      {1, 4, 10, 10, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 4},     // depthwise, dilation 2
      {1, 4, 9, 10, 4, 7, 7, 1, 3, 1, 1, 3, 3, 0, 2, 4},      // depthwise 7x7, any stride
      {1, 4, 3, 3, 4, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 4},       // depthwise, padding > interior
      {2, 5, 0, 20, 6, 1, 3, 1, 2, 1, 1, 0, 1, 0, 1, 1},      // 1-D
      {2, 5, 0, 20, 5, 1, 3, 1, 1, 1, 2, 0, 2, 0, 2, 5},      // 1-D depthwise
  };
  for (const ConvCase& k : cases) {
    SCOPED_TRACE(::testing::Message() << "c=" << k.c << " m=" << k.m << " k=" << k.kh << "x" << k.kw
                                      << " s=" << k.sw << " group=" << k.group);
    CheckConv(k);
  }
  ConvCase same{1, 6, 9, 8, 7, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1};
  same.auto_pad = "SAME_UPPER";
  CheckConv(same);
}

// MaxPool (polyphase path) and AveragePool (clamped windows) against the definition, with
// uneven pads, strides and dilations, ceil_mode, and a NaN that must win its windows.
TEST(OnnxConv, PoolsMatchTheReference) {
  const int64_t n = 2, c = 3, h = 9, w = 11, kh = 3, kw = 2, sh = 2, sw = 3, dh = 1, dw = 2;
  const int64_t pt = 1, pl = 1, pb = 0, pr = 1;
  std::vector<float> x = Random(static_cast<size_t>(n * c * h * w), 18);
  x[40] = std::nanf("");
  for (bool max : {true, false}) {
    for (int64_t ceil : {0, 1}) {
      SCOPED_TRACE(::testing::Message() << (max ? "MaxPool" : "AveragePool") << " ceil " << ceil);
      auto out_dim = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t b, int64_t e) {
        const int64_t room = in + b + e - (d * (k - 1) + 1);
        int64_t o = (ceil ? (room + s - 1) / s : room / s) + 1;
        if (ceil && (o - 1) * s >= in + b) --o;
        return o;
      };
      const int64_t oh = out_dim(h, kh, sh, dh, pt, pb), ow = out_dim(w, kw, sw, dw, pl, pr);
      std::vector<float> want;
      for (int64_t p = 0; p < n * c; ++p) {
        for (int64_t oy = 0; oy < oh; ++oy) {
          for (int64_t ox = 0; ox < ow; ++ox) {
            float acc = max ? -INFINITY : 0.0f;
            int64_t count = 0;
            for (int64_t ky = 0; ky < kh; ++ky) {
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw;
                const bool in_pads = iy >= -pt && iy < h + pb && ix >= -pl && ix < w + pr;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                  count += in_pads;
                  continue;
                }
                const float v = x[static_cast<size_t>((p * h + iy) * w + ix)];
                acc = max ? ((v > acc || std::isnan(v)) ? v : acc) : acc + v;
                ++count;
              }
            }
            want.push_back(max ? acc : acc / static_cast<float>(count));
          }
        }
      }
      GraphBuilder b;
      ValueId xi = b.Input("x", DataType::kFp32, {n, c, h, w});
      b.Output(b.Op(max ? "MaxPool" : "AveragePool", {xi}, {"y"},
                    {IntsAttr("kernel_shape", {kh, kw}), IntsAttr("strides", {sh, sw}),
                     IntsAttr("dilations", {dh, dw}), IntsAttr("pads", {pt, pl, pb, pr}),
                     IntAttr("ceil_mode", ceil), IntAttr("count_include_pad", 1)}));
      std::vector<Tensor> in;
      in.push_back(testing::FloatTensor({n, c, h, w}, x));
      const Tensor got = RunGraph(b.graph(), std::move(in));
      ASSERT_EQ(got.element_count(), static_cast<int64_t>(want.size()));
      for (size_t i = 0; i < want.size(); ++i) {
        if (std::isnan(want[i])) {
          EXPECT_TRUE(std::isnan(got.values<float>()[i])) << i;
        } else {
          ASSERT_NEAR(got.values<float>()[i], want[i], 1e-5f) << i;
        }
      }
    }
  }
}

TEST(OnnxConv, EveryMicroKernelMatchesTheReference) {
  const int64_t m = 29, k = 37, n = 45;
  const std::vector<float> a = Random(static_cast<size_t>(m * k), 4);
  const std::vector<float> b = Random(static_cast<size_t>(k * n), 5);
  const std::vector<float> bias = Random(static_cast<size_t>(m), 6);
  for (const GemmArch* arch : AvailableGemmArchs()) {
    SCOPED_TRACE(arch->name);
    std::vector<float> packed(PackedASize(*arch, m, k));
    PackA(*arch, a.data(), k, m, k, nullptr, packed.data());
    const int64_t nr = arch->nr;
    const int64_t panels = (n + nr - 1) / nr;
    std::vector<float> c(static_cast<size_t>(m * n), 0.0f);
    // Two K blocks (the second accumulates), B packed into panels of nr per block.
    for (int64_t k0 : {int64_t{0}, int64_t{20}}) {
      const int64_t kc = k0 == 0 ? 20 : k - 20;
      std::vector<float> bp(static_cast<size_t>(panels * kc * nr), 0.0f);
      for (int64_t kk = 0; kk < kc; ++kk) {
        for (int64_t j = 0; j < n; ++j) {
          bp[static_cast<size_t>((j / nr) * kc * nr + kk * nr + j % nr)] =
              b[static_cast<size_t>((k0 + kk) * n + j)];
        }
      }
      GemmBlockArgs args;
      args.m = m;
      args.n = n;
      args.kc = kc;
      args.a = packed.data() + k0 * arch->mr;
      args.a_strip = arch->mr * k;
      args.b = bp.data();
      args.c = c.data();
      args.ldc = n;
      args.bias = bias.data();
      args.accumulate = k0 > 0;
      arch->block(args);
    }
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = bias[static_cast<size_t>(i)];
        for (int64_t kk = 0; kk < k; ++kk) {
          s += static_cast<double>(a[static_cast<size_t>(i * k + kk)]) *
               b[static_cast<size_t>(kk * n + j)];
        }
        ASSERT_NEAR(c[static_cast<size_t>(i * n + j)], s, 1e-4) << i << "," << j;
      }
    }
  }
}

// x -> Conv -> BatchNormalization -> Add(x) -> Relu, and Conv -> HardSwish, Conv -> Clip.
TEST(OnnxConv, BatchNormResidualAndActivationsFuseIntoTheConv) {
  const int64_t c = 6, h = 5, w = 7;
  const std::vector<float> x = Random(static_cast<size_t>(c * h * w), 7);
  const std::vector<float> wt = Random(static_cast<size_t>(c * c * 9), 8);
  std::vector<float> scale = Random(static_cast<size_t>(c), 9), shift = Random(c, 10),
                     mean = Random(c, 11), var = Random(c, 12);
  for (float& v : var) v = std::fabs(v) + 0.5f;
  const ConvCase k{1, c, h, w, c, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const std::vector<float> conv = ReferenceConv(k, x, wt, {}, h, w, 1, 1);
  std::vector<float> want(conv.size()), hswish(conv.size()), clip(conv.size());
  for (size_t i = 0; i < conv.size(); ++i) {
    const size_t ch = i / static_cast<size_t>(h * w);
    float v = (conv[i] - mean[ch]) / std::sqrt(var[ch] + 1e-5f) * scale[ch] + shift[ch];
    want[i] = std::max(0.0f, v + x[i]);
    hswish[i] = conv[i] * std::clamp(conv[i] / 6.0f + 0.5f, 0.0f, 1.0f);
    clip[i] = std::clamp(conv[i], -0.5f, 0.25f);
  }
  const std::vector<int64_t> xs = {1, c, h, w};
  auto input = [&] {
    std::vector<Tensor> in;
    in.push_back(testing::FloatTensor(xs, x));
    return in;
  };
  const std::vector<Attribute> pads = {IntsAttr("pads", {1, 1, 1, 1})};
  {
    GraphBuilder b;
    ValueId xi = b.Input("x", DataType::kFp32, xs);
    ValueId y = b.Op("Conv", {xi, b.Floats("w", {c, c, 3, 3}, wt)}, {"conv"}, pads);
    y = b.Op("BatchNormalization",
             {y, b.Floats("s", {c}, scale), b.Floats("bb", {c}, shift), b.Floats("mu", {c}, mean),
              b.Floats("var", {c}, var)},
             {"bn"});
    y = b.Op("Add", {xi, y}, {"sum"});
    b.Output(b.Op("Relu", {y}, {"y"}));
    size_t steps = 0;
    ExpectClose(RunGraph(b.graph(), input(), &steps), want, "conv+bn+add+relu");
    EXPECT_EQ(steps, 1u);
  }
  {
    GraphBuilder b;
    ValueId xi = b.Input("x", DataType::kFp32, xs);
    ValueId y = b.Op("Conv", {xi, b.Floats("w", {c, c, 3, 3}, wt)}, {"conv"}, pads);
    b.Output(b.Op("HardSwish", {y}, {"y"}));
    size_t steps = 0;
    ExpectClose(RunGraph(b.graph(), input(), &steps), hswish, "conv+hardswish");
    EXPECT_EQ(steps, 1u);
  }
  {
    GraphBuilder b;
    ValueId xi = b.Input("x", DataType::kFp32, xs);
    ValueId y = b.Op("Conv", {xi, b.Floats("w", {c, c, 3, 3}, wt)}, {"conv"}, pads);
    b.Output(b.Op("Clip", {y, b.Floats("lo", {}, {-0.5f}), b.Floats("hi", {}, {0.25f})}, {"y"}));
    size_t steps = 0;
    ExpectClose(RunGraph(b.graph(), input(), &steps), clip, "conv+clip");
    EXPECT_EQ(steps, 1u);
  }
}

// A residual whose producer runs after the Conv, or an Add that broadcasts, is not fused;
// the model still computes the same values.
TEST(OnnxConv, AddsThatCannotFuseStayAddNodes) {
  const int64_t c = 4, h = 3, w = 5;
  const std::vector<float> x = Random(static_cast<size_t>(c * h * w), 13);
  const std::vector<float> wt = Random(static_cast<size_t>(c * c), 14);
  const ConvCase k{1, c, h, w, c, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1};
  const std::vector<float> conv = ReferenceConv(k, x, wt, {}, h, w, 0, 0);
  std::vector<float> want(conv.size());
  for (size_t i = 0; i < conv.size(); ++i) want[i] = conv[i] + 0.5f;
  GraphBuilder b;
  ValueId xi = b.Input("x", DataType::kFp32, {1, c, h, w});
  ValueId y = b.Op("Conv", {xi, b.Floats("w", {c, c, 1, 1}, wt)}, {"conv"});
  b.Output(b.Op("Add", {y, b.Floats("half", {1}, {0.5f})}, {"y"}));
  std::vector<Tensor> in;
  in.push_back(testing::FloatTensor({1, c, h, w}, x));
  size_t steps = 0;
  ExpectClose(RunGraph(b.graph(), std::move(in), &steps), want, "conv+add(constant)");
  EXPECT_EQ(steps, 2u);
}

TEST(OnnxConv, FusedConvRunAllocatesNothingAfterWarmUp) {
  const int64_t c = 8, h = 9, w = 9;
  GraphBuilder b;
  ValueId xi = b.Input("x", DataType::kFp32, {2, c, h, w});
  ValueId y = b.Op("Conv", {xi, b.Floats("w", {c, c, 3, 3}, Random(c * c * 9, 15))}, {"conv"},
                   {IntsAttr("pads", {1, 1, 1, 1})});
  y = b.Op("Add", {y, xi}, {"sum"});
  y = b.Op("Relu", {y}, {"r"});
  y = b.Op("Conv", {y, b.Floats("dw", {c, 1, 3, 3}, Random(c * 9, 16))}, {"dwc"},
           {IntsAttr("pads", {1, 1, 1, 1}), IntAttr("group", c)});
  b.Output(b.Op("Sigmoid", {y}, {"y"}));
  auto model = CompiledModel::Compile(b.graph());
  OUTPOST_ASSERT_OK(model.status());
  EXPECT_EQ((*model)->steps().size(), 2u);
  Session session(*model);
  std::vector<Tensor> in;
  in.push_back(testing::FloatTensor({2, c, h, w}, Random(2 * c * h * w, 17)));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(session.Run(in, out));
  if (!testing::AllocationCountingAvailable()) {
    GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  }
  int64_t allocations = 0;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = session.Run(in, out);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_EQ(allocations, 0);
}

// The UINT8 x INT8 GEMM (VNNI and portable) and MatMulInteger / QLinearMatMul on it, with
// zero points, against sums written out here.
TEST(OnnxConv, IntegerGemmMatchesTheReference) {
  const int64_t m = 7, n = 37, k = 45;
  std::vector<uint8_t> a(static_cast<size_t>(m * k));
  std::vector<int8_t> b(static_cast<size_t>(k * n));
  uint32_t seed = 5;
  for (uint8_t& v : a) v = static_cast<uint8_t>((seed = seed * 1664525u + 1013904223u) >> 24);
  for (int8_t& v : b) v = static_cast<int8_t>((seed = seed * 1664525u + 1013904223u) >> 24);
  a[0] = 255;
  b[0] = -128;
  std::vector<std::byte> scratch(QGemmScratchBytes(m, n, k) + 64);
  void* aligned = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  for (bool vnni : {true, false}) {
    SCOPED_TRACE(vnni && QGemmHasVnni() ? "vnni" : "portable");
    std::vector<int32_t> c(static_cast<size_t>(m * n));
    QGemmU8S8(m, n, k, a.data(), b.data(), c.data(), n, aligned, vnni);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        int64_t s = 0;
        for (int64_t p = 0; p < k; ++p) {
          s += int64_t{a[static_cast<size_t>(i * k + p)]} * b[static_cast<size_t>(p * n + j)];
        }
        ASSERT_EQ(c[static_cast<size_t>(i * n + j)], s) << i << "," << j;
      }
    }
  }
  // MatMulInteger with a per-row A zero point and a scalar B zero point, batch 2 of A.
  Tensor at(DataType::kUint8, {2, m, k}), bt(DataType::kInt8, {k, n});
  for (int64_t i = 0; i < 2 * m * k; ++i)
    at.values<uint8_t>()[static_cast<size_t>(i)] =
        a[static_cast<size_t>(i % (m * k))] ^ static_cast<uint8_t>(i / (m * k));
  std::copy(b.begin(), b.end(), bt.values<int8_t>().begin());
  Tensor azp(DataType::kUint8, {m}), bzp(DataType::kInt8, {});
  for (int64_t i = 0; i < m; ++i)
    azp.values<uint8_t>()[static_cast<size_t>(i)] = static_cast<uint8_t>(120 + i);
  bzp.values<int8_t>()[0] = -3;
  for (bool constant_b : {true, false}) {
    SCOPED_TRACE(constant_b ? "B packed at compile time" : "B packed per run");
    GraphBuilder g;
    ValueId ai = g.Input("a", DataType::kUint8, {2, m, k});
    ValueId bi = constant_b ? g.Constant("b", bt) : g.Input("b", DataType::kInt8, {k, n});
    ValueId y =
        g.Op("MatMulInteger", {ai, bi, g.Constant("azp", azp), g.Constant("bzp", bzp)}, {"y"});
    g.Output(y);
    std::vector<Tensor> in;
    in.push_back(at);
    if (!constant_b) in.push_back(bt);
    const Tensor got = RunGraph(g.graph(), std::move(in));
    ASSERT_EQ(got.element_count(), 2 * m * n);
    for (int64_t bb = 0; bb < 2; ++bb) {
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          int64_t s = 0;
          for (int64_t p = 0; p < k; ++p) {
            s += (int64_t{at.values<uint8_t>()[static_cast<size_t>((bb * m + i) * k + p)]} -
                  (120 + i)) *
                 (int64_t{b[static_cast<size_t>(p * n + j)]} + 3);
          }
          ASSERT_EQ(got.values<int32_t>()[static_cast<size_t>((bb * m + i) * n + j)], s);
        }
      }
    }
  }
  // QLinearMatMul, INT8 B and INT8 output: requantised with round-half-to-even, saturated.
  GraphBuilder q;
  Tensor a2(DataType::kUint8, {m, k});
  std::copy(a.begin(), a.end(), a2.values<uint8_t>().begin());
  Tensor azp1(DataType::kUint8, {}), yzp(DataType::kInt8, {});
  azp1.values<uint8_t>()[0] = 128;
  yzp.values<int8_t>()[0] = 5;
  ValueId qa = q.Input("a", DataType::kUint8, {m, k});
  q.Output(q.Op("QLinearMatMul",
                {qa, q.Floats("sa", {}, {0.02f}), q.Constant("za", azp1), q.Constant("b", bt),
                 q.Floats("sb", {}, {0.01f}), q.Constant("zb", bzp), q.Floats("sy", {}, {0.05f}),
                 q.Constant("zy", yzp)},
                {"y"}));
  std::vector<Tensor> qin;
  qin.push_back(a2);
  const Tensor qy = RunGraph(q.graph(), std::move(qin));
  ASSERT_EQ(qy.type(), DataType::kInt8);
  const double scale = double{0.02f} * double{0.01f} / double{0.05f};
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      int64_t s = 0;
      for (int64_t p = 0; p < k; ++p) {
        s += (int64_t{a[static_cast<size_t>(i * k + p)]} - 128) *
             (int64_t{b[static_cast<size_t>(p * n + j)]} + 3);
      }
      const double want =
          std::clamp(std::nearbyint(static_cast<double>(s) * scale) + 5, -128.0, 127.0);
      ASSERT_EQ(qy.values<int8_t>()[static_cast<size_t>(i * n + j)], static_cast<int8_t>(want))
          << i << "," << j;
    }
  }
}

// ConvInteger with UINT8 x and INT8 w (the integer GEMM path): groups, strides, dilations,
// uneven pads, batch 2, per-channel w zero points, against the definition.
TEST(OnnxConv, IntegerConvMatchesTheReference) {
  const int64_t n = 2, c = 4, h = 7, w = 6, m = 6, kh = 3, kw = 3, group = 2;
  const int64_t sh = 2, sw = 1, dh = 1, dw = 2, pt = 1, pl = 0, pb = 1, pr = 2;
  const int64_t oh = (h + pt + pb - (dh * (kh - 1) + 1)) / sh + 1;
  const int64_t ow = (w + pl + pr - (dw * (kw - 1) + 1)) / sw + 1;
  Tensor x(DataType::kUint8, {n, c, h, w}), wt(DataType::kInt8, {m, c / group, kh, kw});
  uint32_t seed = 9;
  for (uint8_t& v : x.values<uint8_t>())
    v = static_cast<uint8_t>((seed = seed * 1664525u + 1013904223u) >> 24);
  for (int8_t& v : wt.values<int8_t>())
    v = static_cast<int8_t>((seed = seed * 1664525u + 1013904223u) >> 24);
  Tensor xzp(DataType::kUint8, {}), wzp(DataType::kInt8, {m});
  xzp.values<uint8_t>()[0] = 7;
  for (int64_t i = 0; i < m; ++i)
    wzp.values<int8_t>()[static_cast<size_t>(i)] = static_cast<int8_t>(i - 3);
  GraphBuilder b;
  ValueId xi = b.Input("x", DataType::kUint8, {n, c, h, w});
  b.Output(b.Op("ConvInteger",
                {xi, b.Constant("w", wt), b.Constant("xz", xzp), b.Constant("wz", wzp)}, {"y"},
                {IntsAttr("strides", {sh, sw}), IntsAttr("dilations", {dh, dw}),
                 IntsAttr("pads", {pt, pl, pb, pr}), IntAttr("group", group)}));
  std::vector<Tensor> in;
  in.push_back(x);
  const Tensor got = RunGraph(b.graph(), std::move(in));
  ASSERT_EQ(got.element_count(), n * m * oh * ow);
  const int64_t cg = c / group, mg = m / group;
  for (int64_t bb = 0; bb < n; ++bb) {
    for (int64_t oc = 0; oc < m; ++oc) {
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
          int64_t s = 0;
          for (int64_t ic = 0; ic < cg; ++ic) {
            for (int64_t ky = 0; ky < kh; ++ky) {
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                const int64_t xv = x.values<uint8_t>()[static_cast<size_t>(
                    ((bb * c + oc / mg * cg + ic) * h + iy) * w + ix)];
                const int64_t wv =
                    wt.values<int8_t>()[static_cast<size_t>(((oc * cg + ic) * kh + ky) * kw + kx)];
                s += (xv - 7) * (wv - (oc - 3));
              }
            }
          }
          ASSERT_EQ(got.values<int32_t>()[static_cast<size_t>(((bb * m + oc) * oh + oy) * ow + ox)],
                    s)
              << bb << "," << oc << "," << oy << "," << ox;
        }
      }
    }
  }
}

// threads = 2: the same values as one thread (each block and channel is computed by one
// thread the same way), and still no allocation per run after warm-up.
TEST(OnnxConv, TwoThreadsGiveTheSameValuesAndAllocateNothing) {
  const int64_t n = 2, c = 12, h = 19, w = 17;
  GraphBuilder b;
  ValueId xi = b.Input("x", DataType::kFp32, {n, c, h, w});
  ValueId y = b.Op("Conv", {xi, b.Floats("w", {c, c, 3, 3}, Random(c * c * 9, 19))}, {"conv"},
                   {IntsAttr("pads", {1, 1, 1, 1})});
  y = b.Op("Add", {y, xi}, {"sum"});
  y = b.Op("Relu", {y}, {"r"});
  y = b.Op("Conv", {y, b.Floats("dw", {c, 1, 3, 3}, Random(c * 9, 20))}, {"dwc"},
           {IntsAttr("pads", {1, 1, 1, 1}), IntsAttr("strides", {2, 2}), IntAttr("group", c)});
  y = b.Op("Conv", {y, b.Floats("pw", {7, c, 1, 1}, Random(7 * c, 21))}, {"pwc"});
  b.Output(b.Op("MaxPool", {y}, {"y"}, {IntsAttr("kernel_shape", {2, 2})}));
  std::vector<Tensor> in;
  in.push_back(testing::FloatTensor({n, c, h, w}, Random(n * c * h * w, 22)));
  CompileOptions one, two;
  two.threads = 2;
  auto m1 = CompiledModel::Compile(b.graph(), one);
  auto m2 = CompiledModel::Compile(b.graph(), two);
  OUTPOST_ASSERT_OK(m1.status());
  OUTPOST_ASSERT_OK(m2.status());
  EXPECT_EQ((*m1)->intra_op_pool(), nullptr);
  ASSERT_NE((*m2)->intra_op_pool(), nullptr);
  Session s1(*m1), s2(*m2);
  std::vector<Tensor> o1, o2;
  OUTPOST_ASSERT_OK(s1.Run(in, o1));
  OUTPOST_ASSERT_OK(s2.Run(in, o2));
  ASSERT_EQ(o1[0].element_count(), o2[0].element_count());
  for (int64_t i = 0; i < o1[0].element_count(); ++i) {
    ASSERT_EQ(o1[0].values<float>()[static_cast<size_t>(i)],
              o2[0].values<float>()[static_cast<size_t>(i)])
        << i;
  }
  if (!testing::AllocationCountingAvailable()) {
    GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  }
  int64_t allocations = 0;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = s2.Run(in, o2);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_EQ(allocations, 0);
}

}  // namespace
}  // namespace outpost::engine::onnx
