// Tests of FoldQdq (optimizer.h): QDQ groups around Conv and MatMul compiled as QLinearConv
// and QLinearMatMul, and DequantizeLinear -> QuantizeLinear pairs dropped, each bit-exact
// against the same graph compiled without optimisation (power-of-two scales keep the float
// path exact, so that both round the same ties); the groups whose rewrite would not be exact
// stay as they are. Also QuantizeLinear and DequantizeLinear themselves on odd lengths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "base/testing/test_util.h"
#include "engine/onnx/counting_allocator.h"
#include "engine/onnx/plan.h"
#include "engine/onnx/session.h"
#include "engine/onnx/test_models.h"

namespace outpost::engine::onnx {
namespace {

using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;

template <typename T>
Tensor Bytes(DataType type, std::vector<int64_t> shape, uint32_t seed, int lo, int hi) {
  Tensor t(type, std::move(shape));
  uint32_t s = seed * 2654435761u + 7;
  for (T& v : t.values<T>()) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<T>(lo + static_cast<int>((s >> 8) % static_cast<uint32_t>(hi - lo + 1)));
  }
  return t;
}

template <typename T>
Tensor Scalar(DataType type, T v) {
  Tensor t(type, {});
  t.values<T>()[0] = v;
  return t;
}

// The plan's operators, in order.
std::vector<std::string> Ops(const CompiledModel& m) {
  std::vector<std::string> ops;
  for (const auto& s : m.steps())
    ops.push_back(m.graph().nodes[static_cast<size_t>(s.node)].op_type);
  return ops;
}

// Compiles `g` with and without optimisation, runs both twice on `in`, expects output 0
// equal byte for byte, no allocation on the optimised plan's warm run, and returns the
// optimised plan's operators.
std::vector<std::string> RunBoth(const Graph& g, const std::vector<Tensor>& in) {
  CompileOptions plain;
  plain.optimize = false;
  auto folded = CompiledModel::Compile(g);
  auto unfolded = CompiledModel::Compile(g, plain);
  EXPECT_TRUE(folded.ok() && unfolded.ok());
  if (!folded.ok() || !unfolded.ok()) return {};
  Session fast(*folded), slow(*unfolded);
  std::vector<Tensor> a, b;
  EXPECT_TRUE(fast.Run(in, a).ok());
  EXPECT_TRUE(slow.Run(in, b).ok());
  int64_t allocations = 0;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = fast.Run(in, a);
  }
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (testing::AllocationCountingAvailable()) {
    EXPECT_EQ(allocations, 0);
  }
  EXPECT_EQ(a[0].type(), b[0].type());
  EXPECT_EQ(a[0].shape(), b[0].shape());
  EXPECT_EQ(a[0].byte_size(), b[0].byte_size());
  for (size_t i = 0; i < a[0].byte_size() && i < b[0].byte_size(); ++i) {
    EXPECT_EQ(a[0].data()[i], b[0].data()[i]) << "byte " << i;
  }
  return Ops(**folded);
}

// x (UINT8, zero point 128, scale 1/4) -> DQ -> Conv 3x3 pad 1 stride `stride` with INT8
// weights (one power-of-two scale per output channel) and an INT32 bias -> [Relu] -> Q.
Graph QdqConv(bool relu, DataType out, int64_t out_zp, float bias_scale_factor = 1.0f,
              int64_t stride = 1, DataType in = DataType::kUint8) {
  GraphBuilder b;
  const int64_t m = 5, c = 3;
  ValueId x = b.Input("x", in, {-1, c, 7, 6});
  ValueId xs = b.Constant("xs", Scalar<float>(DataType::kFp32, 0.25f));
  ValueId xz = in == DataType::kUint8 ? b.Constant("xz", Scalar<uint8_t>(DataType::kUint8, 128))
                                      : b.Constant("xz", Scalar<int8_t>(DataType::kInt8, -5));
  ValueId w = b.Constant("w", Bytes<int8_t>(DataType::kInt8, {m, c, 3, 3}, 2, -127, 127));
  ValueId ws = b.Floats("ws", {m}, {0.125f, 0.0625f, 0.25f, 0.5f, 0.03125f});
  ValueId wz = b.Constant("wz", Tensor(DataType::kInt8, {m}));
  ValueId bias = b.Constant("bias", Bytes<int32_t>(DataType::kInt32, {m}, 3, -300, 300));
  std::vector<float> bscale{0.03125f, 0.015625f, 0.0625f, 0.125f, 0.0078125f};
  for (float& s : bscale) s *= bias_scale_factor;
  ValueId bs = b.Floats("bs", {m}, bscale);
  ValueId bz = b.Constant("bz", Tensor(DataType::kInt32, {m}));
  ValueId dx = b.Op("DequantizeLinear", {x, xs, xz}, {"dx"});
  ValueId dw = b.Op("DequantizeLinear", {w, ws, wz}, {"dw"}, {IntAttr("axis", 0)});
  ValueId db = b.Op("DequantizeLinear", {bias, bs, bz}, {"db"}, {IntAttr("axis", 0)});
  ValueId y = b.Op("Conv", {dx, dw, db}, {"y"},
                   {IntsAttr("kernel_shape", {3, 3}), IntsAttr("pads", {1, 1, 1, 1}),
                    IntsAttr("strides", {stride, stride})});
  if (relu) y = b.Op("Relu", {y}, {"r"});
  ValueId ys = b.Constant("ys", Scalar<float>(DataType::kFp32, 0.5f));
  ValueId yz =
      out == DataType::kUint8
          ? b.Constant("yz", Scalar<uint8_t>(DataType::kUint8, static_cast<uint8_t>(out_zp)))
          : b.Constant("yz", Scalar<int8_t>(DataType::kInt8, static_cast<int8_t>(out_zp)));
  b.Output(b.Op("QuantizeLinear", {y, ys, yz}, {"q"}));
  return b.graph();
}

std::vector<Tensor> ConvInput() {
  std::vector<Tensor> in;
  in.push_back(Bytes<uint8_t>(DataType::kUint8, {2, 3, 7, 6}, 1, 0, 255));
  return in;
}

TEST(OnnxQdq, ConvReluQuantizeFoldsIntoQLinearConvBitExact) {
  EXPECT_EQ(RunBoth(QdqConv(true, DataType::kUint8, 0), ConvInput()),
            std::vector<std::string>{"QLinearConv"});
  EXPECT_EQ(RunBoth(QdqConv(true, DataType::kInt8, -128, 1.0f, 2), ConvInput()),
            std::vector<std::string>{"QLinearConv"});
}

TEST(OnnxQdq, ConvOverInt8ActivationsFoldsBitExact) {
  std::vector<Tensor> in;
  in.push_back(Bytes<int8_t>(DataType::kInt8, {2, 3, 7, 6}, 8, -128, 127));
  EXPECT_EQ(RunBoth(QdqConv(true, DataType::kInt8, -128, 1.0f, 1, DataType::kInt8), in),
            std::vector<std::string>{"QLinearConv"});
  EXPECT_EQ(RunBoth(QdqConv(false, DataType::kUint8, 3, 1.0f, 2, DataType::kInt8), in),
            std::vector<std::string>{"QLinearConv"});
}

TEST(OnnxQdq, ConvQuantizeWithoutReluFoldsAndSaturatesBitExact) {
  EXPECT_EQ(RunBoth(QdqConv(false, DataType::kInt8, -3), ConvInput()),
            std::vector<std::string>{"QLinearConv"});
  EXPECT_EQ(RunBoth(QdqConv(false, DataType::kUint8, 100), ConvInput()),
            std::vector<std::string>{"QLinearConv"});
}

TEST(OnnxQdq, ReluAboveTheLowestZeroPointAndAForeignBiasScaleStayAsWritten) {
  // A Relu before a zero point of 100 clips above saturation: not folded.
  const std::vector<std::string> relu = RunBoth(QdqConv(true, DataType::kUint8, 100), ConvInput());
  EXPECT_EQ(std::count(relu.begin(), relu.end(), "QLinearConv"), 0);
  EXPECT_EQ(std::count(relu.begin(), relu.end(), "QuantizeLinear"), 1);
  // A bias at twice x_scale * w_scale is not QLinearConv's bias: not folded.
  const std::vector<std::string> bias =
      RunBoth(QdqConv(false, DataType::kUint8, 0, 2.0f), ConvInput());
  EXPECT_EQ(std::count(bias.begin(), bias.end(), "QLinearConv"), 0);
  EXPECT_EQ(std::count(bias.begin(), bias.end(), "QuantizeLinear"), 1);
}

TEST(OnnxQdq, MatMulQuantizeFoldsIntoQLinearMatMulBitExact) {
  GraphBuilder b;
  ValueId a = b.Input("a", DataType::kUint8, {-1, 9});
  ValueId as = b.Constant("as", Scalar<float>(DataType::kFp32, 0.125f));
  ValueId az = b.Constant("az", Scalar<uint8_t>(DataType::kUint8, 120));
  ValueId w = b.Constant("w", Bytes<int8_t>(DataType::kInt8, {9, 6}, 4, -128, 127));
  ValueId ws = b.Constant("ws", Scalar<float>(DataType::kFp32, 0.0625f));
  ValueId wz = b.Constant("wz", Scalar<int8_t>(DataType::kInt8, 3));
  ValueId y = b.Op("MatMul",
                   {b.Op("DequantizeLinear", {a, as, az}, {"da"}),
                    b.Op("DequantizeLinear", {w, ws, wz}, {"dw"})},
                   {"y"});
  ValueId ys = b.Constant("ys", Scalar<float>(DataType::kFp32, 0.25f));
  ValueId yz = b.Constant("yz", Scalar<int8_t>(DataType::kInt8, 5));
  b.Output(b.Op("QuantizeLinear", {y, ys, yz}, {"q"}));
  std::vector<Tensor> in;
  in.push_back(Bytes<uint8_t>(DataType::kUint8, {4, 9}, 5, 0, 255));
  EXPECT_EQ(RunBoth(b.graph(), in), std::vector<std::string>{"QLinearMatMul"});
}

// x -> DQ(s, z) -> Q(s, z) -> DQ(s2, z2): the pair in the middle cancels; with another
// scale it stays.
Graph DqQ(float second_scale) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kUint8, {-1, 37});
  ValueId s = b.Constant("s", Scalar<float>(DataType::kFp32, 0.1f));
  ValueId s2 = b.Constant("s2", Scalar<float>(DataType::kFp32, second_scale));
  ValueId z = b.Constant("z", Scalar<uint8_t>(DataType::kUint8, 7));
  ValueId d = b.Op("DequantizeLinear", {x, s, z}, {"d"});
  ValueId q = b.Op("QuantizeLinear", {d, s2, z}, {"q"});
  b.Output(b.Op("DequantizeLinear", {q, s, z}, {"out"}));
  return b.graph();
}

TEST(OnnxQdq, DequantizeThenQuantizeWithTheSameParametersCancels) {
  std::vector<Tensor> in;
  in.push_back(Bytes<uint8_t>(DataType::kUint8, {3, 37}, 6, 0, 255));
  EXPECT_EQ(RunBoth(DqQ(0.1f), in), std::vector<std::string>{"DequantizeLinear"});
  EXPECT_EQ(RunBoth(DqQ(0.3f), in),
            (std::vector<std::string>{"DequantizeLinear", "QuantizeLinear", "DequantizeLinear"}));
}

// QuantizeLinear of FLOAT per tensor and per axis against the definition: x / scale in
// float, rounded half to even, plus the zero point, saturated; ties and NaN included.
TEST(OnnxQdq, QuantizeLinearRoundsTiesToEvenAndSaturatesPerTensorAndPerAxis) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {2, 3, 11});
  ValueId s = b.Floats("s", {3}, {0.5f, 0.1f, 3.0f});
  ValueId z = b.Constant("z", Bytes<int8_t>(DataType::kInt8, {3}, 9, -5, 5));
  b.Output(b.Op("QuantizeLinear", {x, s, z}, {"q"}, {IntAttr("axis", 1)}));
  Tensor t(DataType::kFp32, {2, 3, 11});
  auto v = t.values<float>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = (static_cast<float>(i) - 33.0f) * 0.75f;
  v[3] = 1e9f;
  v[4] = -1e9f;
  v[5] = std::nanf("");
  std::vector<Tensor> in;
  in.push_back(std::move(t));
  auto model = CompiledModel::Compile(b.graph());
  ASSERT_TRUE(model.ok());
  Session session(*model);
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(session.Run(in, out));
  const float scales[3] = {0.5f, 0.1f, 3.0f};
  const auto zp = (*model)->constant((*model)->graph().nodes[0].inputs[2])->values<int8_t>();
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t ch = (i / 11) % 3;
    const float q = std::nearbyint(v[i] / scales[ch]);
    const float want =
        std::isnan(q) ? 0.0f : std::clamp(q + static_cast<float>(zp[ch]), -128.0f, 127.0f);
    EXPECT_EQ(out[0].values<int8_t>()[i], static_cast<int8_t>(want)) << "element " << i;
  }
}

}  // namespace
}  // namespace outpost::engine::onnx
