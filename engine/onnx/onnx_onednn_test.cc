// The oneDNN adapter (onednn_conv.h): convolutions of every kind the engine's fast path
// takes (plain, strided, padded, dilated, grouped, depthwise, 1-D, each fused epilogue, a
// residual Add, a folded BatchNormalization) run through oneDNN and through the engine's own
// kernels (CompileOptions::onednn off) on the same model, at batch 1 and 8 on one and two
// threads, and must agree.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/testing/test_util.h"
#include "engine/onnx/kernels_conv.h"
#include "engine/onnx/plan.h"
#include "engine/onnx/session.h"
#include "engine/onnx/test_models.h"

namespace outpost::engine::onnx {
namespace {

using testing::FloatAttr;
using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;

std::vector<float> Random(size_t n, uint32_t seed) { return testing::RandomFloats(n, seed); }

struct Case {
  std::string name;
  int64_t c, h, w, m, k;  // h == 0: 1-D
  int64_t stride = 1, pad = 0, dilation = 1, group = 1;
  std::string epilogue;  // "", an activation's op type, "bn", "residual", "bn+residual+relu"
};

// Conv (+ the epilogue's nodes) as a graph with input x of batch n.
Graph Build(const Case& t, int64_t n) {
  GraphBuilder b;
  const bool one_d = t.h == 0;
  std::vector<int64_t> xs = {n, t.c, t.h, t.w}, ws = {t.m, t.c / t.group, t.k, t.k};
  if (one_d) {
    xs = {n, t.c, t.w};
    ws = {t.m, t.c / t.group, t.k};
  }
  const int64_t dims = one_d ? 1 : 2;
  ValueId x = b.Input("x", DataType::kFp32, xs);
  int64_t wn = 1;
  for (int64_t d : ws) wn *= d;
  std::vector<Attribute> attrs = {IntsAttr("strides", std::vector<int64_t>(dims, t.stride)),
                                  IntsAttr("pads", std::vector<int64_t>(2 * dims, t.pad)),
                                  IntsAttr("dilations", std::vector<int64_t>(dims, t.dilation)),
                                  IntAttr("group", t.group)};
  ValueId y = b.Op("Conv",
                   {x, b.Floats("w", ws, Random(static_cast<size_t>(wn), 3)),
                    b.Floats("b", {t.m}, Random(static_cast<size_t>(t.m), 4))},
                   {"conv"}, attrs);
  const std::string& e = t.epilogue;
  if (e == "bn" || e == "bn+residual+relu") {
    std::vector<float> var = Random(static_cast<size_t>(t.m), 5);
    for (float& v : var) v = std::fabs(v) + 0.5f;
    y = b.Op("BatchNormalization",
             {y, b.Floats("s", {t.m}, Random(static_cast<size_t>(t.m), 6)),
              b.Floats("sh", {t.m}, Random(static_cast<size_t>(t.m), 7)),
              b.Floats("mu", {t.m}, Random(static_cast<size_t>(t.m), 8)), b.Floats("var", {t.m}, var)},
             {"bn"});
  }
  if (e == "residual" || e == "bn+residual+relu") y = b.Op("Add", {y, x}, {"sum"});
  if (e == "bn+residual+relu") y = b.Op("Relu", {y}, {"relu"});
  if (e == "Relu" || e == "Sigmoid" || e == "Tanh" || e == "HardSwish") {
    y = b.Op(e, {y}, {"act"});
  } else if (e == "LeakyRelu") {
    y = b.Op(e, {y}, {"act"}, {FloatAttr("alpha", 0.1f)});
  } else if (e == "HardSigmoid") {
    y = b.Op(e, {y}, {"act"}, {FloatAttr("alpha", 0.3f), FloatAttr("beta", 0.4f)});
  } else if (e == "Clip") {
    y = b.Op(e, {y, b.Floats("lo", {}, {-0.5f}), b.Floats("hi", {}, {0.75f})}, {"act"});
  } else if (e == "SiLU") {
    ValueId s = b.Op("Sigmoid", {y}, {"sig"});
    y = b.Op("Mul", {y, s}, {"act"});
  }
  b.Output(y);
  return std::move(b.graph());
}

std::vector<Case> Cases() {
  return {
      {"plain", 16, 10, 12, 32, 3, 1, 1},
      {"unpadded", 8, 9, 9, 24, 3},
      {"strided", 16, 15, 13, 32, 3, 2, 1},
      {"padded5x5", 8, 11, 11, 16, 5, 1, 2},
      {"dilated", 8, 12, 12, 16, 3, 1, 2, 2},
      {"pointwise", 64, 7, 7, 96, 1},
      {"pointwise_strided", 32, 8, 8, 64, 1, 2},
      {"stem7x7", 3, 32, 32, 16, 7, 2, 3},
      {"grouped", 32, 8, 8, 32, 3, 1, 1, 1, 4},
      {"depthwise", 32, 14, 14, 32, 3, 1, 1, 1, 32},
      {"depthwise_strided", 24, 15, 15, 24, 3, 2, 1, 1, 24},
      {"depthwise5x5", 16, 12, 12, 16, 5, 1, 2, 1, 16},
      {"one_d", 8, 0, 40, 16, 3, 1, 1},
      {"relu", 16, 9, 9, 16, 3, 1, 1, 1, 1, "Relu"},
      {"leaky_relu", 16, 9, 9, 16, 3, 1, 1, 1, 1, "LeakyRelu"},
      {"clip", 16, 9, 9, 16, 3, 1, 1, 1, 1, "Clip"},
      {"hard_sigmoid", 16, 9, 9, 16, 1, 1, 0, 1, 1, "HardSigmoid"},
      {"hard_swish", 16, 9, 9, 16, 3, 1, 1, 1, 16, "HardSwish"},
      {"sigmoid", 16, 9, 9, 16, 3, 1, 1, 1, 1, "Sigmoid"},
      {"tanh", 16, 9, 9, 16, 3, 1, 1, 1, 1, "Tanh"},
      {"silu", 16, 9, 9, 16, 3, 1, 1, 1, 1, "SiLU"},
      {"batch_norm", 16, 9, 9, 16, 3, 1, 1, 1, 1, "bn"},
      {"residual", 16, 9, 9, 16, 3, 1, 1, 1, 1, "residual"},
      {"bn_residual_relu", 32, 8, 8, 32, 3, 1, 1, 1, 1, "bn+residual+relu"},
      {"depthwise_residual", 16, 8, 8, 16, 3, 1, 1, 1, 16, "residual"},
  };
}

class OnnxOnednn : public ::testing::TestWithParam<Case> {};

TEST_P(OnnxOnednn, MatchesTheEngineKernels) {
  const Case& t = GetParam();
  for (int64_t n : {1, 8}) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE("batch " + std::to_string(n) + ", " + std::to_string(threads) + " thread(s)");
      CompileOptions ours, dnn;
      ours.threads = dnn.threads = threads;
      ours.onednn = false;
      dnn.onednn = true;
      auto m_ours = CompiledModel::Compile(Build(t, n), ours);
      auto m_dnn = CompiledModel::Compile(Build(t, n), dnn);
      OUTPOST_ASSERT_OK(m_ours.status());
      OUTPOST_ASSERT_OK(m_dnn.status());
      // Everything fused into the one Conv.
      ASSERT_EQ((*m_dnn)->steps().size(), 1u);
      const std::vector<int64_t> xs =
          t.h == 0 ? std::vector<int64_t>{n, t.c, t.w} : std::vector<int64_t>{n, t.c, t.h, t.w};
      std::vector<Tensor> in;
      in.push_back(testing::FloatTensor(
          xs, Random(static_cast<size_t>(n * t.c * std::max<int64_t>(t.h, 1) * t.w), 9)));
      Session s_ours(*m_ours), s_dnn(*m_dnn);
      std::vector<Tensor> want, got;
      OUTPOST_ASSERT_OK(s_ours.Run(in, want));
      OUTPOST_ASSERT_OK(s_dnn.Run(in, got));
      EXPECT_EQ(OnednnConvShapes(*(*m_dnn)->steps()[0].kernel), 1) << "oneDNN did not take it";
      EXPECT_EQ(OnednnConvShapes(*(*m_ours)->steps()[0].kernel), 0);
      auto expect_match = [&](const Tensor& out) {
        ASSERT_EQ(want[0].shape(), out.shape());
        const std::span<const float> w = want[0].values<float>(), g = out.values<float>();
        for (size_t i = 0; i < w.size(); ++i) {
          ASSERT_NEAR(g[i], w[i], 1e-4f + 1e-4f * std::fabs(w[i])) << "element " << i;
        }
      };
      expect_match(got[0]);
      // A second run reuses the primitive and the plan's scratch.
      OUTPOST_ASSERT_OK(s_dnn.Run(in, got));
      expect_match(got[0]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, OnnxOnednn, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& p) { return p.param.name; });

}  // namespace
}  // namespace outpost::engine::onnx
